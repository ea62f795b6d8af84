//! Real clients over loopback: HTTP/1.1 (hyper's client connection), server-sent events
//! read frame by frame, WebSockets (tokio-tungstenite).

use std::net::SocketAddr;

use axum::body::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn send(addr: SocketAddr, path: &str) -> hyper::Response<Incoming> {
    request(addr, "GET", path, "").await
}

async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> hyper::Response<Incoming> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    sender.send_request(request).await.expect("response")
}

/// `method path` with a JSON `body`: status, the `x-served-by` header and the body text.
pub async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let response = request(addr, method, path, body).await;
    let status = response.status().as_u16();
    let by = response.headers().get("x-served-by").map(|v| v.to_str().unwrap_or("?").to_string()).unwrap_or_default();
    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, by, String::from_utf8_lossy(&body).into_owned())
}

/// The close frame (code and reason) the server sends next, skipping other messages.
pub async fn closed(socket: &mut Socket) -> String {
    let close = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return format!("{} {}", u16::from(frame.code), frame.reason),
                Some(Ok(Message::Close(None))) => return "closed without a frame".into(),
                Some(Ok(_)) => continue,
                other => return format!("no close frame: {other:?}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), close)
        .await
        .unwrap_or_else(|_| "no close frame within 10 s".into())
}

/// `GET path`: status and body text.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = send(addr, path).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `GET path` on a connection with a small receive buffer: once the answer's head arrived,
/// awaits `meanwhile` before reading the body; the body's length and whether it was whole.
pub async fn get_slowly(
    addr: SocketAddr,
    path: &str,
    meanwhile: impl std::future::Future<Output = ()>,
) -> (usize, bool) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::get(path).header("host", addr.to_string()).body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.expect("response");
    meanwhile.await;
    match response.into_body().collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            let whole = body.iter().enumerate().all(|(i, b)| *b == b'a' + (i % 26) as u8);
            (body.len(), whole)
        }
        Err(_) => (0, false),
    }
}

/// A stream of server-sent events being received.
pub struct Events {
    body: Incoming,
    buffer: String,
}

/// What reading the next event gave.
#[derive(Debug, PartialEq)]
pub enum Next {
    Event(String),
    End,
    /// The connection broke before the body ended.
    Cut,
}

/// Opens `GET path` and returns its status and event stream.
pub async fn events(addr: SocketAddr, path: &str) -> (u16, Events) {
    let response = send(addr, path).await;
    (response.status().as_u16(), Events { body: response.into_body(), buffer: String::new() })
}

impl Events {
    /// The `data` of the next event.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
                return Next::Event(data);
            }
            match self.body.frame().await {
                None => return Next::End,
                Some(Err(_)) => return Next::Cut,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
    }
}

/// Opens a WebSocket at `path`.
pub async fn websocket(addr: SocketAddr, path: &str) -> Socket {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (socket, _) =
        tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream).await.expect("ws handshake");
    socket
}

/// Sends `text` and returns the answer.
pub async fn ask(socket: &mut Socket, text: &str) -> String {
    socket.send(Message::text(text)).await.expect("ws send");
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(answer))) => return answer.to_string(),
            Some(Ok(_)) => continue,
            other => return format!("no answer: {other:?}"),
        }
    }
}
