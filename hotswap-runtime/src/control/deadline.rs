//! Reading one line and writing one answer on a Unix stream, each within a total deadline
//! however slowly the other side goes (a per-call timeout alone would let a peer that sends
//! one byte at a time hold the connection for ever).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The time left until `deadline`, or `TimedOut` when there is none.
fn remaining(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() { Err(ErrorKind::TimedOut.into()) } else { Ok(left) }
}

/// Whether `e` is a timeout (the socket's, or the deadline's).
pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Writes all of `bytes` by `deadline`; a timeout is an error `is_timeout` recognises.
pub(crate) fn write_all_by(mut stream: &UnixStream, mut bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted || (is_timeout(&e) && Instant::now() < deadline) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads up to the first newline (excluded) or the end of the stream, by `deadline` in total
/// and at most `max` bytes. `None` when the stream ended before any byte.
pub(crate) fn read_line_by(mut stream: &UnixStream, deadline: Instant, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut chunk) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Ok(Some(line)),
            Ok(n) => {
                line.extend_from_slice(&chunk[..n]);
                if let Some(end) = line.iter().position(|&b| b == b'\n') {
                    line.truncate(end);
                    return Ok(Some(line));
                }
                if line.len() > max {
                    return Err(std::io::Error::new(ErrorKind::InvalidData, format!("longer than {} KiB", max / 1024)));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted || (is_timeout(&e) && Instant::now() < deadline) => {}
            Err(e) => return Err(e),
        }
    }
}
