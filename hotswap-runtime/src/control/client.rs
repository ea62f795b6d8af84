//! The asking side: connect, check who answers, send one line, read one line, all within one
//! deadline.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::deadline::{is_timeout, read_line_by, write_all_by};
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
    let mut line = serde_json::to_string(request)
        .map_err(|e| ControlError::Protocol { message: e.to_string(), source: Some(e) })?;
    line.push('\n');
    match write_all_by(&stream, line.as_bytes(), deadline) {
        Ok(()) => {}
        Err(e) if is_timeout(&e) => return Err(timed_out()),
        // A host that refuses a peer may answer and close before reading; its answer is still
        // waiting in the socket, so only give up if there is none.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(io(format!("writing to {}", path.display()))(e)),
    }
    let answer = match read_line_by(&stream, deadline, MAX_ANSWER) {
        Ok(answer) => String::from_utf8_lossy(&answer.unwrap_or_default()).into_owned(),
        Err(e) if is_timeout(&e) => return Err(timed_out()),
        Err(e) => return Err(io(format!("reading the answer from {}", path.display()))(e)),
    };
    if answer.trim().is_empty() {
        let message = "the host closed the connection without answering".into();
        return Err(ControlError::Protocol { message, source: None });
    }
    serde_json::from_str(&answer)
        .map_err(|e| ControlError::Protocol { message: format!("{e}: {answer}"), source: Some(e) })
}
