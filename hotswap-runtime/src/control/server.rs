//! The listening side: one thread accepts, each connection is served on a thread of its own
//! (at most [`ControlConfig::max_connections`] at once), and every read and write has a total
//! deadline, so an idle, trickling or stuck client costs one thread for a bounded time and
//! never delays anyone else.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::deadline::{is_timeout, read_line_by, write_all_by};
use super::reload_call::{ReloadOutcome, reload_progress, run_reload};
use super::socket_file::{FileIdentity, clear_socket_path, own_uid, prepare_folder};
use super::upgrade_call::{self, Turn};
use super::{ControlError, ControlRequest, ControlResponse, ReloadInProgress, io};
use crate::handoff::{CONTROL_NAME, Handoff};
use crate::manager::{PluginManager, Probation, ProbationEnd, ProbationError};

/// The longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// Limits of a [`ControlServer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ControlConfig {
    /// Connections served at once; one more is answered `busy` at once and closed. Default 16.
    pub max_connections: usize,
    /// Total time a client has to send its request line, however it trickles. Default 5 s.
    pub request_deadline: Duration,
    /// Total time to write an answer to a client that does not read it. Default 5 s.
    pub answer_deadline: Duration,
    /// This host's side of host upgrades: the control socket is taken from the previous host
    /// (or systemd) when it passed one, is passed on to the next, stops accepting once a new
    /// host took over, and `upgrade_host` requests are served. Default none (`upgrade_host`
    /// is refused).
    pub handoff: Option<Handoff>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            max_connections: 16,
            request_deadline: Duration::from_secs(5),
            answer_deadline: Duration::from_secs(5),
            handoff: None,
        }
    }
}

impl ControlConfig {
    /// Sets [`ControlConfig::max_connections`] (at least 1).
    pub fn max_connections(mut self, count: usize) -> Self {
        self.max_connections = count.max(1);
        self
    }

    /// Sets [`ControlConfig::request_deadline`].
    pub fn request_deadline(mut self, deadline: Duration) -> Self {
        self.request_deadline = deadline;
        self
    }

    /// Sets [`ControlConfig::answer_deadline`].
    pub fn answer_deadline(mut self, deadline: Duration) -> Self {
        self.answer_deadline = deadline;
        self
    }

    /// Sets [`ControlConfig::handoff`].
    pub fn handoff(mut self, handoff: Handoff) -> Self {
        self.handoff = Some(handoff);
        self
    }
}

/// A running control listener. Dropping it stops the listener and removes the socket file
/// (only if it is still the one it bound, and not once a new host took it over:
/// [`ControlConfig::handoff`]); it returns at once, even while a reload it started
/// is stuck in a plugin's hook: that connection's thread is left to finish on its own.
///
/// # Examples
///
/// A host that reloads when `cargo hotswap reload` (or [`send_request`](crate::send_request))
/// asks it to:
///
/// ```no_run
/// use hotswap_runtime::{ControlServer, PluginManager, default_socket_path};
///
/// let manager = PluginManager::builder("plugins").build()?;
/// manager.load_plugins()?;
/// // Keep the server alive as long as the host should answer; dropping it stops listening.
/// let control = ControlServer::start(manager.clone(), default_socket_path())?;
/// println!("control socket: {}", control.path().display());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ControlServer {
    path: PathBuf,
    identity: Option<FileIdentity>,
    shared: Arc<Shared>,
    listener: Arc<UnixListener>,
    acceptor_done: Mutex<Receiver<()>>,
}

/// What the acceptor and the connection threads share.
struct Shared {
    manager: PluginManager,
    config: ControlConfig,
    stop: AtomicBool,
    active: AtomicUsize,
    gate: ReloadGate,
}

impl ControlServer {
    /// Listens on `path` with the default [`ControlConfig`] and serves requests with
    /// `manager` on background threads.
    ///
    /// The socket's folder is created (mode `0700`) if missing and refused if it is unsafe
    /// ([`ControlError::UnsafeFolder`]); the socket is made `0600`, and only clients running as
    /// the host's user (or root) are served.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use hotswap_runtime::{ControlConfig, ControlServer, PluginManager};
    ///
    /// let manager = PluginManager::builder("plugins").build()?;
    /// manager.load_plugins()?;
    /// let control = ControlServer::start(manager.clone(), "/run/user/1000/myhost/control.sock")?;
    /// # drop(control);
    /// // Or with other limits:
    /// let config = ControlConfig::default().max_connections(4).request_deadline(Duration::from_secs(2));
    /// let control = ControlServer::start_with(manager, "/run/user/1000/myhost/control.sock", config)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(manager: PluginManager, path: impl AsRef<Path>) -> Result<ControlServer, ControlError> {
        Self::start_with(manager, path, ControlConfig::default())
    }

    /// [`ControlServer::start`] with other limits.
    pub fn start_with(
        manager: PluginManager,
        path: impl AsRef<Path>,
        config: ControlConfig,
    ) -> Result<ControlServer, ControlError> {
        let path = path.as_ref().to_path_buf();
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        prepare_folder(&dir)?;
        let inherited = config.handoff.as_ref().and_then(|h| h.inherited_unix_listener(CONTROL_NAME, &path));
        let listener = match inherited {
            // The previous host's socket, file and all: requests queued on it while the hosts
            // changed over are answered by this one.
            Some(listener) => listener,
            None => {
                clear_socket_path(&path)?;
                let listener = UnixListener::bind(&path).map_err(io(format!("binding {}", path.display())))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(format!("chmod 0600 {}", path.display())))?;
                listener
            }
        };
        let identity = FileIdentity::of(&path);
        if let Some(handoff) = &config.handoff {
            handoff.share(CONTROL_NAME, &listener).map_err(|e| ControlError::Io {
                context: format!("keeping {} for a host upgrade", path.display()),
                source: std::io::Error::other(e),
            })?;
        }
        let listener = Arc::new(listener);
        let shared = Arc::new(Shared {
            manager,
            config,
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            gate: ReloadGate::default(),
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        {
            let (listener, shared) = (Arc::clone(&listener), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("hotswap-control".into())
                .spawn(move || accept_loop(&listener, &shared, done_tx))
                .map_err(io("starting the control thread"))?;
        }
        tracing::info!(socket = %path.display(), "control socket listening");
        Ok(ControlServer { path, identity, shared, listener, acceptor_done: Mutex::new(done_rx) })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("path", &self.path)
            .field("config", &self.shared.config)
            .field("active_connections", &self.shared.active.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let handoff = self.shared.config.handoff.as_ref();
        if handoff.is_none() {
            // Wakes the accept call (it fails with EINVAL); the acceptor then exits. Never on
            // a socket that another host may share: shutdown acts on the socket, not on this
            // process's descriptor (the acceptor polls, and sees `stop` within its period).
            let _ = rustix::net::shutdown(&*self.listener, rustix::net::Shutdown::Both);
        }
        // The acceptor never blocks on anything but accept or its poll, so this is short; the
        // bound is there so that a drop can never hang. Connection threads are not waited for.
        let done = self.acceptor_done.lock().unwrap_or_else(|e| e.into_inner());
        let _ = done.recv_timeout(Duration::from_secs(1));
        // A retired host's socket file is the new host's now.
        if let Some(identity) = self.identity.filter(|_| !handoff.is_some_and(Handoff::is_retired)) {
            identity.remove_if_same(&self.path);
        }
    }
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>, _done: Sender<()>) {
    let handoff = shared.config.handoff.clone();
    if handoff.is_some() {
        // Another host may share this socket: accept only when poll says a connection is
        // waiting (another host may take it first: then accept says WouldBlock), and stop as
        // soon as this host is retired, so that it takes no request meant for the new one.
        if let Err(e) = listener.set_nonblocking(true) {
            tracing::warn!("control socket: cannot make it non-blocking: {e}");
        }
    }
    loop {
        if let Some(handoff) = &handoff {
            match upgrade_call::before_accept(listener, &shared.stop, handoff) {
                Turn::Stop => break,
                Turn::Wait => continue,
                Turn::Accept => {}
            }
        }
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match accepted {
            Ok((stream, _)) if handoff.is_some() => {
                // Accepted sockets inherit nothing from the listener on Linux, but be plain.
                let _ = stream.set_nonblocking(false);
                admit(stream, shared)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((stream, _)) => admit(stream, shared),
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                // Out of file descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    // `_done` drops here: the server's drop stops waiting.
}

/// Whether requests (server side) or answers (client side) from `uid` are trusted: our own
/// user's, and root's (who could act as us anyway).
pub(crate) fn trusted_uid(uid: u32) -> bool {
    uid == own_uid() || uid == 0
}

/// Checks the peer and takes a connection slot, on the acceptor thread and without blocking;
/// then serves the connection on a thread of its own.
fn admit(stream: UnixStream, shared: &Arc<Shared>) {
    match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(cred) if trusted_uid(cred.uid.as_raw()) => {}
        Ok(cred) => {
            let uid = cred.uid.as_raw();
            tracing::warn!(peer_uid = uid, "control request from another user refused");
            return answer_now(stream, &ControlResponse::refused(format!("requests from uid {uid} are not accepted")));
        }
        Err(e) => {
            let reason = format!("cannot check peer credentials: {e}");
            return answer_now(stream, &ControlResponse::refused(reason));
        }
    }
    let max = shared.config.max_connections;
    if shared.active.fetch_add(1, Ordering::SeqCst) >= max {
        shared.active.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(max, "control connection refused: every connection slot is in use");
        let reason = format!("the host is serving {max} control connections already (its limit); try again shortly");
        return answer_now(stream, &ControlResponse::Busy { reason, reload: None });
    }
    let slot = Slot(Arc::clone(shared));
    let spawned = std::thread::Builder::new().name("hotswap-control-conn".into()).spawn(move || {
        let slot = slot;
        serve_connection(stream, &slot.0);
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a control connection thread: {e}");
    }
}

/// A taken connection slot, given back when the connection's thread ends (or never starts).
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers without reading the request and without ever blocking (the acceptor must not):
/// what the client already sent is read first, since closing a socket with unread data would
/// reset the connection before the client could read why.
fn answer_now(mut stream: UnixStream, response: &ControlResponse) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX_REQUEST {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    // A fresh socket's send buffer is empty: a short answer fits at once.
    let _ = stream.write_all(response.to_line().as_bytes());
}

fn serve_connection(stream: UnixStream, shared: &Shared) {
    let config = &shared.config;
    let response = match read_request(&stream, Instant::now() + config.request_deadline) {
        Ok(Some(line)) => {
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| respond(&line, shared)));
            answer.unwrap_or_else(|panic| {
                let message = crate::private::panic_message(panic.as_ref());
                tracing::error!("the control handler panicked: {message}");
                ControlResponse::refused(format!("the host's control handler panicked: {message}"))
            })
        }
        // The client closed without sending anything.
        Ok(None) => return,
        Err(RequestError::Deadline) => ControlResponse::refused(format!(
            "no complete request line within {} s; send one JSON line such as {{\"command\":\"status\"}}",
            config.request_deadline.as_secs_f64()
        )),
        Err(RequestError::TooLong) => {
            ControlResponse::refused(format!("request longer than {} KiB", MAX_REQUEST / 1024))
        }
        Err(RequestError::Io(e)) => {
            tracing::debug!("control connection lost while reading: {e}");
            return;
        }
    };
    if let Err(e) = write_all_by(&stream, response.to_line().as_bytes(), Instant::now() + config.answer_deadline) {
        tracing::debug!("control answer not delivered: {e}");
    }
}

enum RequestError {
    Deadline,
    TooLong,
    Io(std::io::Error),
}

/// Reads one request line, waiting at most until `deadline` in total however slowly it
/// arrives. `Ok(None)` when the client closed without sending anything.
fn read_request(stream: &UnixStream, deadline: Instant) -> Result<Option<String>, RequestError> {
    match read_line_by(stream, deadline, MAX_REQUEST) {
        Ok(line) => Ok(line.map(|l| String::from_utf8_lossy(&l).into_owned())),
        Err(e) if is_timeout(&e) => Err(RequestError::Deadline),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(RequestError::TooLong),
        Err(e) => Err(RequestError::Io(e)),
    }
}

fn respond(line: &str, shared: &Shared) -> ControlResponse {
    let request: ControlRequest = match serde_json::from_str(line.trim()) {
        Ok(request) => request,
        Err(e) => return ControlResponse::refused(format!("invalid request: {e}")),
    };
    let manager = &shared.manager;
    match request {
        ControlRequest::Status => {
            let reload = reload_progress(manager).or_else(|| shared.gate.progress());
            ControlResponse::serving(
                manager.current(),
                reload,
                &manager.plugin_dir(),
                manager.memory(),
                manager.probation(),
                manager.last_probation(),
                manager.live_tasks(),
            )
        }
        ControlRequest::Confirm => probation_answer(manager.try_confirm()),
        ControlRequest::UpgradeHost { program, ready_timeout_ms } => {
            upgrade_call::answer(shared.config.handoff.as_ref(), program, ready_timeout_ms)
        }
        ControlRequest::Rollback => probation_answer(manager.try_rollback()),
        ControlRequest::Reload | ControlRequest::ReloadOnProbation { .. } => {
            let probation = match request {
                ControlRequest::ReloadOnProbation { period_ms: 0, .. } => {
                    return ControlResponse::refused("invalid probation period 0 ms: give a period above 0");
                }
                ControlRequest::ReloadOnProbation { period_ms, max_panics } => {
                    Some(Probation::new(Duration::from_millis(period_ms)).max_panics(max_panics.unwrap_or(0)))
                }
                _ => None,
            };
            let _running = match shared.gate.try_begin() {
                Ok(guard) => guard,
                Err(running) => {
                    let running = reload_progress(manager).unwrap_or(running);
                    return ControlResponse::Busy { reason: running.to_string(), reload: Some(running) };
                }
            };
            match run_reload(manager, probation) {
                ReloadOutcome::Done(report) => {
                    let probation = manager.probation().filter(|p| p.generation == report.generation);
                    ControlResponse::accepted(&report, probation)
                }
                ReloadOutcome::Refused(error) => ControlResponse::refused_reload(&error),
                ReloadOutcome::Busy(running) => {
                    ControlResponse::Busy { reason: running.to_string(), reload: Some(running) }
                }
            }
        }
    }
}

/// The answer to a confirm or a rollback.
fn probation_answer(result: Result<ProbationEnd, ProbationError>) -> ControlResponse {
    match result {
        Ok(end) => ControlResponse::ProbationEnded(end),
        Err(ProbationError::Busy) => ControlResponse::Busy { reason: ProbationError::Busy.to_string(), reload: None },
        Err(error) => ControlResponse::refused(error.to_string()),
    }
}

/// The reload this server is running, if any: a second reload request is answered `busy` at
/// once instead of queueing behind it.
#[derive(Default)]
struct ReloadGate {
    started: Mutex<Option<Instant>>,
}

impl ReloadGate {
    fn try_begin(&self) -> Result<GateGuard<'_>, ReloadInProgress> {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = *started {
            return Err(in_progress_since(at));
        }
        *started = Some(Instant::now());
        Ok(GateGuard(self))
    }

    fn progress(&self) -> Option<ReloadInProgress> {
        self.started.lock().unwrap_or_else(|e| e.into_inner()).map(in_progress_since)
    }
}

fn in_progress_since(at: Instant) -> ReloadInProgress {
    ReloadInProgress { running_ms: at.elapsed().as_millis() as u64, stage: None, plugin: None }
}

struct GateGuard<'a>(&'a ReloadGate);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *self.0.started.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
