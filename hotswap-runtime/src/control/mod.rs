//! The control socket: a Unix socket on which a running host accepts reload and status
//! requests.
//!
//! Protocol: the client sends one JSON line ([`ControlRequest`]) and reads one JSON line
//! ([`ControlResponse`]). The socket file is created with mode 0600 in a folder only its owner
//! can write (checked without following links), a request from another user id is refused,
//! and the client trusts only an answer from a process of its own user (or root).
//!
//! Files: [`protocol`](self::protocol) (the messages), `server` (threads and deadlines),
//! `client` ([`send_request`]), `deadline` (reads and writes within a total
//! deadline), `socket_file` (folder and file checks), `reload_call` (the
//! single place a reload is started from here and from signals), `upgrade_call` (host
//! upgrades: the `upgrade_host` answer, accepting on a shared socket).

mod client;
mod deadline;
mod protocol;
pub(crate) mod reload_call;
mod server;
mod socket_file;
mod upgrade_call;

use std::path::PathBuf;
use std::time::Duration;

pub use client::send_request;
pub use protocol::{ControlRequest, ControlResponse, IgnoredAnswer, PluginAnswer, ReloadInProgress, StageTime};
pub use server::{ControlConfig, ControlServer};

/// Errors of the control socket. Each message includes its cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Nothing listens on the socket.
    #[error(
        "no host is listening on {path} ({source}); start the host first, or pass the socket it uses (--socket or {var})",
        var = hotswap_abi::env::SOCKET
    )]
    NoHost {
        /// The socket path.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The socket is there but this user may not connect to it.
    #[error(
        "a host's control socket is at {path}, but this user (uid {uid}) may not use it ({source}); run the command as the host's user"
    )]
    Forbidden {
        /// The socket path.
        path: PathBuf,
        /// This process's user id.
        uid: u32,
        /// The connect error.
        source: std::io::Error,
    },
    /// The process answering runs as another user: its answer is not trusted.
    #[error(
        "the process answering on {path} runs as uid {peer_uid}, not as this user ({uid}) or root; its answer is not trusted (another user may have replaced the socket or its folder)"
    )]
    Untrusted {
        /// The socket path.
        path: PathBuf,
        /// The user id of the process that answered.
        peer_uid: u32,
        /// This process's user id.
        uid: u32,
    },
    /// The host accepted the connection but did not answer in time.
    #[error(
        "no answer from the host on {path} within {} s; the host may be stuck in a reload",
        waited.as_secs_f64()
    )]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// How long the client waited.
        waited: Duration,
    },
    /// Another host already listens there.
    #[error("another process is already listening on {0}")]
    InUse(PathBuf),
    /// Something other than a socket is at the socket path: it is left alone.
    #[error(
        "{path} is {what}, not a socket; refusing to replace it (pass another path with --socket or {var}, or remove it yourself)",
        var = hotswap_abi::env::SOCKET
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What is there (`a regular file`, `a folder`, `a symbolic link`).
        what: &'static str,
    },
    /// The folder of the socket is not safe.
    #[error("unsafe socket folder {path}: {reason}")]
    UnsafeFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Any other I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The answer could not be parsed (or the request not encoded).
    #[error("invalid answer from the host: {message}")]
    Protocol {
        /// What was wrong; for an answer that does not parse, the JSON error and the answer.
        message: String,
        /// The JSON error, when there is one.
        source: Option<serde_json::Error>,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlError {
    let context = context.into();
    move |source| ControlError::Io { context, source }
}

/// The socket path used when none is given: `$HOTSWAP_SOCKET`, else
/// `$XDG_RUNTIME_DIR/hotswap/control.sock`, else `/tmp/hotswap-<uid>/control.sock`.
pub fn default_socket_path() -> PathBuf {
    if let Some(path) = std::env::var_os(hotswap_abi::env::SOCKET).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(dir).join("hotswap").join("control.sock");
    }
    let uid = socket_file::own_uid();
    std::env::temp_dir().join(format!("hotswap-{uid}")).join("control.sock")
}
