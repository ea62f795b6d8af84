//! The service demo's boundary types, shared by its host and plugins.
//!
//! Everything here crosses between host and plugins, so its `TypeId` must be the same on
//! both sides: host and plugins build this crate (and tokio, which it uses) with the same
//! profile and features. A mismatch is refused, never misread: the plugins check the
//! extension in `on_init`, and `hotswap_tokio` checks each call's argument and result.

#![warn(missing_docs, missing_debug_implementations)]

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One HTTP request as the host hands it to a plugin handler.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The path, e.g. `/hello`.
    pub path: String,
    /// The query parameters, in order, percent-decoding not applied.
    pub query: Vec<(String, String)>,
    /// The host's number of the connection the request came on (from 1).
    pub connection: u64,
    /// The number of this request on its connection (from 1): state the host keeps per
    /// connection, across reloads.
    pub request_on_connection: u64,
}

impl Request {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Plain-text body.
    pub body: String,
}

impl Response {
    /// A 200 with `body`.
    pub fn ok(body: impl Into<String>) -> Self {
        Response { status: 200, body: body.into() }
    }

    /// An error status with `body`.
    pub fn error(status: u16, body: impl Into<String>) -> Self {
        Response { status, body: body.into() }
    }
}

/// What plugin `svc_greeting` exports to the plugins that import it.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// The greeting word of this build ("Hello" in v1).
    pub word: String,
}

/// The host's extension, made fresh for every generation: the backend it owns.
#[derive(Debug)]
pub struct ServiceExt {
    /// The host's price backend; the same one for every generation.
    pub backend: std::sync::Arc<Backend>,
}

/// A client of the host's price backend: a line protocol over loopback TCP
/// (`PRICE <item>\n` answered by `<cents>\n` or `NONE\n`), over a pool of kept-open
/// connections owned by the host. Plugin code calls it, so it runs on the host's runtime
/// only inside a future made by `hotswap_tokio::serve`.
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    idle: Mutex<Vec<TcpStream>>,
    connects: AtomicU64,
}

impl Backend {
    /// A client of the backend listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Backend { addr, idle: Mutex::new(Vec::new()), connects: AtomicU64::new(0) }
    }

    /// The price of `item` in cents, or `None` if the backend does not know it.
    pub async fn price(&self, item: &str) -> io::Result<Option<u64>> {
        if item.is_empty() || item.contains(char::is_whitespace) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an item is one word"));
        }
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let stream = match pooled {
            Some(stream) => stream,
            None => {
                self.connects.fetch_add(1, Ordering::Relaxed);
                TcpStream::connect(self.addr).await?
            }
        };
        let mut stream = BufReader::new(stream);
        stream.get_mut().write_all(format!("PRICE {item}\n").as_bytes()).await?;
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the backend closed the connection"));
        }
        // Only a connection that answered in full goes back to the pool.
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(stream.into_inner());
        match line.trim() {
            "NONE" => Ok(None),
            cents => cents
                .parse()
                .map(Some)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad backend answer {cents:?}"))),
        }
    }

    /// Connections opened to the backend so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }
}
