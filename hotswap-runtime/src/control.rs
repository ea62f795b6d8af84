//! The control socket: a Unix socket on which a running host accepts reload requests.
//!
//! Protocol: the client sends one JSON line ([`ControlRequest`]) and reads one JSON line
//! ([`ControlResponse`]). The socket file is created with mode 0600 in a folder only its owner
//! can write, and a request from another user id is refused.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::manager::{PluginManager, PluginReport};

/// A request to the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Reload the plugin folder.
    Reload,
    /// Report the generation serving now.
    Status,
}

/// The host's answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ControlResponse {
    /// The reload was done; this generation now serves.
    Accepted {
        /// Generation number.
        generation: u64,
        /// Its plugins.
        plugins: Vec<PluginReport>,
        /// Time the reload took, in milliseconds (cargo excluded).
        total_ms: f64,
    },
    /// The reload was refused; the previous generation keeps serving.
    Refused {
        /// Why.
        reason: String,
    },
    /// Answer to [`ControlRequest::Status`].
    Serving {
        /// Generation number, if anything is loaded.
        generation: Option<u64>,
        /// Its plugins.
        plugins: Vec<ServingPlugin>,
    },
}

/// One plugin of the serving generation, as [`ControlResponse::Serving`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServingPlugin {
    /// Plugin name.
    pub name: String,
    /// Version stamp.
    pub version: String,
    /// SHA-256 of its library file, so an operator can compare what two hosts run.
    pub sha256: String,
}

/// Errors of the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing listens on the socket.
    #[error(
        "no host is listening on {path} ({source}); start the host first, or pass the socket it uses (--socket or HOTSWAP_SOCKET)"
    )]
    NoHost {
        /// The socket path.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// Another host already listens there.
    #[error("another process is already listening on {0}")]
    InUse(PathBuf),
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
    /// The answer could not be parsed.
    #[error("invalid answer from the host: {0}")]
    Protocol(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlError {
    let context = context.into();
    move |source| ControlError::Io { context, source }
}

/// The socket path used when none is given: `$HOTSWAP_SOCKET`, else
/// `$XDG_RUNTIME_DIR/hotswap/control.sock`, else `/tmp/hotswap-<uid>/control.sock`.
pub fn default_socket_path() -> PathBuf {
    if let Some(path) = std::env::var_os("HOTSWAP_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(dir).join("hotswap").join("control.sock");
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("hotswap-{uid}")).join("control.sock")
}

/// A running control listener. Dropping it stops the listener and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Listens on `path` and serves requests with `manager` on a background thread.
    pub fn start(manager: PluginManager, path: impl AsRef<Path>) -> Result<ControlServer, ControlError> {
        let path = path.as_ref().to_path_buf();
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        prepare_folder(&dir)?;
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(ControlError::InUse(path));
            }
            // A stale socket from a host that died.
            std::fs::remove_file(&path).map_err(io(format!("removing stale socket {}", path.display())))?;
        }
        let listener = UnixListener::bind(&path).map_err(io(format!("binding {}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(format!("chmod 0600 {}", path.display())))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("hotswap-control".into())
                .spawn(move || serve(listener, manager, stop))
                .map_err(io("starting the control thread"))?
        };
        tracing::info!(socket = %path.display(), "control socket listening");
        Ok(ControlServer { path, stop, thread: Some(thread) })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn prepare_folder(dir: &Path) -> Result<(), ControlError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(format!("creating {}", dir.display())))?;
    }
    let meta = std::fs::metadata(dir).map_err(io(format!("reading {}", dir.display())))?;
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let sticky = meta.mode() & 0o1000 != 0;
    if meta.uid() != uid && !(meta.uid() == 0 && sticky) {
        return Err(ControlError::UnsafeFolder {
            path: dir.to_path_buf(),
            reason: format!("owned by uid {}, not by us ({uid})", meta.uid()),
        });
    }
    if meta.mode() & 0o022 != 0 && !sticky {
        return Err(ControlError::UnsafeFolder {
            path: dir.to_path_buf(),
            reason: format!(
                "writable by group or others (mode {:o}); run `chmod go-w {}`",
                meta.mode() & 0o7777,
                dir.display()
            ),
        });
    }
    Ok(())
}

fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is a live socket.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 { Ok(cred.uid) } else { Err(std::io::Error::last_os_error()) }
}

fn serve(listener: UnixListener, manager: PluginManager, stop: Arc<AtomicBool>) {
    // SAFETY: getuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::getuid() };
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                continue;
            }
        };
        let response = match peer_uid(&stream) {
            Ok(uid) if uid == own_uid => handle(&mut stream, &manager),
            Ok(uid) => {
                tracing::warn!(peer_uid = uid, "control request from another user refused");
                // Read (and ignore) the request before answering: closing a socket with unread
                // data would reset the connection and the client would never see why.
                let _ = read_request_line(&stream, Duration::from_secs(2));
                Some(ControlResponse::Refused { reason: format!("requests from uid {uid} are not accepted") })
            }
            Err(e) => Some(ControlResponse::Refused { reason: format!("cannot check peer credentials: {e}") }),
        };
        if let Some(response) = response {
            let mut line = serde_json::to_string(&response).expect("responses serialize");
            line.push('\n');
            let _ = stream.write_all(line.as_bytes());
        }
    }
}

/// Reads one request line (at most 64 KiB), waiting at most `timeout`.
fn read_request_line(stream: &UnixStream, timeout: Duration) -> std::io::Result<String> {
    stream.set_read_timeout(Some(timeout))?;
    let mut line = String::new();
    std::io::Read::take(BufReader::new(stream), 64 * 1024).read_line(&mut line)?;
    Ok(line)
}

fn handle(stream: &mut UnixStream, manager: &PluginManager) -> Option<ControlResponse> {
    let line = read_request_line(stream, Duration::from_secs(10)).ok()?;
    if line.trim().is_empty() {
        return None;
    }
    let request: ControlRequest = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            return Some(ControlResponse::Refused { reason: format!("invalid request: {e}") });
        }
    };
    Some(match request {
        ControlRequest::Reload => match manager.reload() {
            Ok(report) => ControlResponse::Accepted {
                generation: report.generation,
                plugins: report.plugins,
                total_ms: report.total_ms,
            },
            Err(e) => ControlResponse::Refused { reason: e.to_string() },
        },
        ControlRequest::Status => {
            let current = manager.current();
            ControlResponse::Serving {
                generation: current.as_ref().map(|g| g.number()),
                plugins: current
                    .map(|g| {
                        g.plugins()
                            .iter()
                            .map(|p| ServingPlugin {
                                name: p.name().to_string(),
                                version: p.version().to_string(),
                                sha256: p.sha256().to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        }
    })
}

/// Sends `request` to the host listening on `path` and returns its answer.
pub fn send_request(path: &Path, request: &ControlRequest, timeout: Duration) -> Result<ControlResponse, ControlError> {
    let mut stream =
        UnixStream::connect(path).map_err(|source| ControlError::NoHost { path: path.to_path_buf(), source })?;
    stream.set_read_timeout(Some(timeout)).map_err(io("setting a timeout"))?;
    let mut line = serde_json::to_string(request).expect("requests serialize");
    line.push('\n');
    if let Err(e) = stream.write_all(line.as_bytes()) {
        // A host that refuses a peer may answer and close before reading; its answer is still
        // waiting in the socket, so only give up if there is none.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(io(format!("writing to {}", path.display()))(e));
        }
    }
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(io(format!("reading the answer from {}", path.display())))?;
    if answer.trim().is_empty() {
        return Err(ControlError::Protocol("the host closed the connection without answering".into()));
    }
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(format!("{e}: {answer}")))
}
