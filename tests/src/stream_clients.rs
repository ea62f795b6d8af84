//! Clients of long-lived answers over loopback, for the service load test (`tests/service.rs`):
//! a server-sent-event stream read to its end, event by event, and a WebSocket (tokio-tungstenite)
//! that sends a text and waits for the echo. Each failure says what broke.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The longest a client waits for the next event, echo or close.
const PATIENCE: Duration = Duration::from_secs(20);

/// Opens `GET path` on a new connection and reads the event stream to its end: the `data` of
/// each event, in order. An error status, a connection cut before the stream's end or a pause
/// longer than 20 s fails, naming what happened after how many events.
pub async fn sse(addr: SocketAddr, path: &str) -> Result<Vec<String>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let request =
        hyper::Request::get(path).header(hyper::header::HOST, "localhost").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()));
    }
    let mut body = response.into_body();
    let mut buffer = String::new();
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .map_err(|_| format!("no event within {PATIENCE:?} after {} events", events.len()))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| format!("stream cut after {} events: {e}", events.len()))?;
        let Ok(data) = frame.into_data() else { continue };
        buffer.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data = event.lines().filter_map(|line| line.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
            events.push(data);
        }
    }
    if !buffer.trim().is_empty() {
        return Err(format!("stream ended inside an event: {buffer:?}"));
    }
    Ok(events)
}

/// A WebSocket client.
#[derive(Debug)]
pub struct WebSocket {
    socket: tokio_tungstenite::WebSocketStream<TcpStream>,
}

impl WebSocket {
    /// Opens a WebSocket to `path`.
    pub async fn open(addr: SocketAddr, path: &str) -> Result<WebSocket, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let (socket, _) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream)
            .await
            .map_err(|e| format!("WebSocket handshake: {e}"))?;
        Ok(WebSocket { socket })
    }

    /// Sends `text` and returns the next text message.
    pub async fn echo(&mut self, text: &str) -> Result<String, String> {
        self.socket.send(Message::Text(text.into())).await.map_err(|e| format!("send: {e}"))?;
        loop {
            let next = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .map_err(|_| format!("no answer within {PATIENCE:?}"))?;
            match next {
                Some(Ok(Message::Text(answer))) => return Ok(answer.as_str().to_string()),
                Some(Ok(Message::Close(frame))) => return Err(format!("closed by the server: {frame:?}")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("socket broke: {e}")),
                None => return Err("socket dropped".into()),
            }
        }
    }

    /// Closes the socket and waits for the server's close (the end of a clean close).
    pub async fn close(mut self) -> Result<(), String> {
        self.socket.close(None).await.map_err(|e| format!("close: {e}"))?;
        loop {
            let next = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .map_err(|_| format!("no close within {PATIENCE:?}"))?;
            match next {
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => continue,
                Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => return Ok(()),
                Some(Err(e)) => return Err(format!("close: {e}")),
            }
        }
    }
}
