//! An HTTP/1.1 client that keeps its connection open and, as every client must, opens a new one
//! after an answer that says `Connection: close`: the load generator of host upgrades
//! (`tests/host_upgrade.rs`, `bin/upgrade-bench.rs`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One answer, and which host process answered it on which connection.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
    /// The host's `x-served-by` header (its pid; 0 when absent).
    pub served_by: u32,
    /// The host's `x-host-build` header.
    pub build: String,
    /// Which of this client's connections the answer came on (1 for its first; a port number
    /// would not do: the kernel may give a later connection the port of a closed one).
    pub connection: u64,
    /// That connection's local port.
    pub port: u16,
    /// Whether the answer said `Connection: close` (the next request opens a new connection).
    pub closed: bool,
    /// From sending the request to the end of its body.
    pub latency: Duration,
}

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be opened (refused, reset while connecting).
    Connect(String),
    /// The request was sent (or sending failed) on an open connection, and no answer came.
    Request(String),
}

struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    port: u16,
    number: u64,
}

/// A keep-alive client of one server address.
#[derive(Default)]
pub struct KeepAliveClient {
    addr: Option<SocketAddr>,
    connection: Option<Connection>,
    /// Connections opened so far.
    pub connects: u64,
}

impl std::fmt::Debug for KeepAliveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAliveClient").field("addr", &self.addr).field("connects", &self.connects).finish()
    }
}

impl KeepAliveClient {
    /// A client of `addr`; it connects on its first request.
    pub fn new(addr: SocketAddr) -> Self {
        KeepAliveClient { addr: Some(addr), connection: None, connects: 0 }
    }

    async fn connect(&mut self) -> Result<(), Failure> {
        let addr = self.addr.expect("a client made with KeepAliveClient::new");
        let stream = TcpStream::connect(addr).await.map_err(|e| Failure::Connect(e.to_string()))?;
        stream.set_nodelay(true).map_err(|e| Failure::Connect(e.to_string()))?;
        let port = stream.local_addr().map_err(|e| Failure::Connect(e.to_string()))?.port();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Connect(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.connects += 1;
        self.connection = Some(Connection { sender, port, number: self.connects });
        Ok(())
    }

    /// `GET path`, on the open connection or (first, or after `Connection: close`) a new one.
    pub async fn get(&mut self, path: &str) -> Result<Answer, Failure> {
        if self.connection.is_none() {
            self.connect().await?;
        }
        let connection = self.connection.as_mut().expect("connected above");
        let (port, number) = (connection.port, connection.number);
        let failed = |what: &str, e: &dyn std::fmt::Display| Failure::Request(format!("{what} on port {port}: {e}"));
        let sent = Instant::now();
        let result = async {
            connection.sender.ready().await.map_err(|e| failed("connection not ready", &e))?;
            let request = hyper::Request::get(path)
                .header(hyper::header::HOST, "localhost")
                .body(Empty::new())
                .map_err(|e| failed("bad request", &e))?;
            let response = connection.sender.send_request(request).await.map_err(|e| failed("request", &e))?;
            let header =
                |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let served_by = header("x-served-by").parse().unwrap_or(0);
            let build = header("x-host-build");
            let closed = header("connection").eq_ignore_ascii_case("close");
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| failed("body", &e))?.to_bytes();
            let body = String::from_utf8_lossy(&body).into_owned();
            Ok(Answer { status, body, served_by, build, connection: number, port, closed, latency: sent.elapsed() })
        }
        .await;
        match &result {
            Ok(answer) if !answer.closed => {}
            // Closed by the server, or broken: the next request opens a new connection.
            _ => self.connection = None,
        }
        result
    }
}
