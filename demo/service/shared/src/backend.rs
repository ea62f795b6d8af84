//! The client of the host's price backend: host-owned, reached by plugin handlers through
//! [`crate::AppState`].

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A client of the host's price backend: a line protocol over loopback TCP
/// (`PRICE <item>\n` answered by `<cents>\n` or `NONE\n`), over a pool of kept-open
/// connections owned by the host. Plugin handlers call it on the process's one runtime.
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
