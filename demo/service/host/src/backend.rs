//! The host's price backend: a line protocol over loopback TCP, served by a task of the host.
//! Plugins reach it through `service_shared::Backend` (a pool of client connections the host
//! owns and hands to every generation's router in `AppState`).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the backend knows: item and price in cents.
pub const PRICES: &[(&str, u64)] = &[("apple", 40), ("pear", 55), ("fig", 120)];

/// Starts the backend on a free loopback port, on the current runtime; where it listens.
pub async fn start() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream));
        }
    });
    Ok(addr)
}

async fn answer(stream: TcpStream) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let item = line.trim().strip_prefix("PRICE ").unwrap_or("");
        let answer = match PRICES.iter().find(|(name, _)| *name == item) {
            Some((_, cents)) => format!("{cents}\n"),
            None => "NONE\n".to_string(),
        };
        stream.get_mut().write_all(answer.as_bytes()).await?;
    }
}
