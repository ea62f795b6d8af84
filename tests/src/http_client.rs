//! A keep-alive HTTP/1.1 client over one loopback connection, for the service demo's load
//! test and benchmark (hyper's low-level client: one connection, never reopened).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One keep-alive connection.
#[derive(Debug)]
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    /// Set by the connection task when the connection ends with an error (e.g. a reset).
    pub broken: Arc<Mutex<Option<String>>>,
}

impl Client {
    /// Opens a connection to `addr` (on the current tokio runtime).
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connecting to the service");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1.1 handshake");
        let broken = Arc::new(Mutex::new(None));
        let noted = Arc::clone(&broken);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                *noted.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            }
        });
        Client { sender, broken }
    }

    /// Sends `GET path` on the connection; the status and body, or what failed.
    pub async fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        self.sender.ready().await.map_err(|e| format!("connection not ready: {e}"))?;
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, "localhost")
            .body(Empty::new())
            .map_err(|e| format!("bad request {path}: {e}"))?;
        let response = self.sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| format!("body failed: {e}"))?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// The error the connection ended with, if it did.
    pub fn broken(&self) -> Option<String> {
        self.broken.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
