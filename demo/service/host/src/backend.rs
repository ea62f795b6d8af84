//! The host's price backend: a line protocol over loopback TCP, served by a task of the host.
//! Plugins reach it through `service_shared::Backend` (a pool of client connections the host
//! owns and hands to every generation in its extension).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the backend knows: item and price in cents.
pub const PRICES: &[(&str, u64)] = &[("apple", 40), ("pear", 55), ("fig", 120)];

/// A running backend.
pub struct BackendServer {
    /// Where it listens.
    pub addr: SocketAddr,
    queries: Arc<AtomicU64>,
}

impl BackendServer {
    /// Starts the backend on a free loopback port, on the current runtime.
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let queries = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&queries);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&counted)));
            }
        });
        Ok(BackendServer { addr, queries })
    }

    /// Queries answered so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

async fn answer(stream: TcpStream, queries: Arc<AtomicU64>) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        queries.fetch_add(1, Ordering::Relaxed);
        let item = line.trim().strip_prefix("PRICE ").unwrap_or("");
        let answer = match PRICES.iter().find(|(name, _)| *name == item) {
            Some((_, cents)) => format!("{cents}\n"),
            None => "NONE\n".to_string(),
        };
        stream.get_mut().write_all(answer.as_bytes()).await?;
    }
}
