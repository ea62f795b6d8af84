//! The asking side: connect, check who answers, send one line, read one line, all within one
//! deadline.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::server::trusted_uid;
use super::socket_file::own_uid;
use super::{ControlError, ControlRequest, ControlResponse, io};

/// The longest answer read.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Sends `request` to the host listening on `path` and returns its answer, waiting at most
/// `timeout` in all.
///
/// Before sending anything it checks, with `SO_PEERCRED`, that the process answering runs as
/// this user or as root ([`ControlError::Untrusted`] otherwise): another local user who
/// replaced the socket or its folder gets neither the request nor trust in an answer.
pub fn send_request(path: &Path, request: &ControlRequest, timeout: Duration) -> Result<ControlResponse, ControlError> {
    let deadline = Instant::now() + timeout;
    let stream = UnixStream::connect(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::PermissionDenied => {
            ControlError::Forbidden { path: path.to_path_buf(), uid: own_uid(), source }
        }
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotADirectory => {
            ControlError::NoHost { path: path.to_path_buf(), source }
        }
        _ => io(format!("connecting to {}", path.display()))(source),
    })?;
    let cred = rustix::net::sockopt::socket_peercred(&stream)
        .map_err(|e| io(format!("reading the credentials of the host on {}", path.display()))(e.into()))?;
    if !trusted_uid(cred.uid.as_raw()) {
        return Err(ControlError::Untrusted { path: path.to_path_buf(), peer_uid: cred.uid.as_raw(), uid: own_uid() });
    }
    let timed_out = || ControlError::Timeout { path: path.to_path_buf(), waited: timeout };
    let mut line = serde_json::to_string(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push('\n');
    match write_all_by(&stream, line.as_bytes(), deadline) {
        Ok(()) => {}
        Err(e) if is_timeout(&e) => return Err(timed_out()),
        // A host that refuses a peer may answer and close before reading; its answer is still
        // waiting in the socket, so only give up if there is none.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(io(format!("writing to {}", path.display()))(e)),
    }
    let answer = match read_line_by(&stream, deadline) {
        Ok(answer) => answer,
        Err(e) if is_timeout(&e) => return Err(timed_out()),
        Err(e) => return Err(io(format!("reading the answer from {}", path.display()))(e)),
    };
    if answer.trim().is_empty() {
        return Err(ControlError::Protocol("the host closed the connection without answering".into()));
    }
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(format!("{e}: {answer}")))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

fn remaining(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() { Err(std::io::ErrorKind::TimedOut.into()) } else { Ok(left) }
}

fn write_all_by(mut stream: &UnixStream, mut bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        match stream.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads up to the first newline (or the end), by `deadline` in total.
fn read_line_by(mut stream: &UnixStream, deadline: Instant) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                line.extend_from_slice(&chunk[..n]);
                if let Some(end) = line.iter().position(|&b| b == b'\n') {
                    line.truncate(end);
                    break;
                }
                if line.len() > MAX_ANSWER {
                    return Err(std::io::Error::other("the answer is longer than 16 MiB"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}
