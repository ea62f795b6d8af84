//! Upgrading the host binary without dropping a connection (nginx's binary upgrade): the
//! running host starts the new binary with its listening sockets (and its control socket)
//! as inherited descriptors, waits until the new host says it is ready, then stops accepting
//! and drains; if the new host fails before it is ready, nothing changed for the old one.
//!
//! The protocol is systemd's (`sd_listen_fds(3)`): descriptors 3, 4, … named by
//! `LISTEN_FDNAMES`, so a host takes its sockets the same way from systemd's socket activation
//! and from the host it replaces. Readiness comes back on a pipe (one byte); under systemd the
//! old host then tells the service manager the new main pid (`MAINPID=`, with the `sd-notify`
//! crate), and a host started by systemd says `READY=1` itself. Files: `inherit` (taking the
//! descriptors), `successor` (starting the new host and waiting for it), `signal` (an upgrade
//! on a signal).
//!
//! ```no_run
//! use hotswap_runtime::handoff::{Handoff, UpgradeOptions};
//!
//! let handoff = Handoff::from_env()?; // first thing in main: takes inherited sockets
//! let listener = handoff.tcp_listener("http", "127.0.0.1:8080".parse()?)?; // inherited or bound
//! // … load plugins, start the control socket with ControlConfig::handoff(handoff.clone()) …
//! handoff.ready()?; // the old host (or systemd) learns that this one serves
//! let successor = handoff.wait_retired(); // until a new host took over
//! // stop accepting on `listener`, finish open connections within a bounded time, exit
//! # let _ = (listener, successor, UpgradeOptions::default());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod inherit;
mod signal;
mod successor;

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use signal::{UpgradeSignal, upgrade_signal_number};

/// The name the control socket travels under.
pub(crate) const CONTROL_NAME: &str = "hotswap-control";

/// Errors of a host upgrade. Each message says what failed (its cause once) and, for a failed
/// upgrade, that this host keeps serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandoffError {
    /// A variable of the protocol has a value this host cannot use.
    #[error("environment variable {variable}={value:?} is {reason}")]
    Environment {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An inherited descriptor is not open (or cannot be set close-on-exec).
    #[error("inherited descriptor {fd} cannot be used: {source}")]
    Inherit {
        /// The descriptor number.
        fd: i32,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be bound (nothing was inherited under its name).
    #[error("binding the {name} socket on {address}: {source}")]
    Bind {
        /// The socket's name.
        name: String,
        /// Its address.
        address: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be kept for the next host (dup failed).
    #[error("keeping the {name} socket for a later upgrade: {source}")]
    Share {
        /// The socket's name.
        name: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The old host could not be told that this one is ready.
    #[error("telling the old host (pid {predecessor}) that this one is ready: {source}")]
    Ready {
        /// The old host's pid.
        predecessor: u32,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// This host has not called [`Handoff::ready`] yet: it cannot hand over what it has not
    /// finished setting up.
    #[error("this host is still starting (it has not said it is ready); upgrade it once it serves")]
    NotReady,
    /// An upgrade is already running.
    #[error("an upgrade of this host is already running; wait for its answer")]
    Busy,
    /// This host was already replaced.
    #[error("this host was already replaced by pid {successor} and is draining; ask the new host")]
    Retired {
        /// The new host's pid.
        successor: u32,
    },
    /// The new binary could not be started.
    #[error("starting the new host {program} failed ({source}); this host keeps serving", program = program.display())]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The new host exited (or closed its readiness pipe) before it said it was ready.
    #[error(
        "the new host {program} (pid {pid}) exited before it was ready ({status}); this host keeps serving",
        program = program.display()
    )]
    ExitedBeforeReady {
        /// The binary.
        program: PathBuf,
        /// Its pid.
        pid: u32,
        /// `exit status 3`, `killed by signal 6`, …
        status: String,
    },
    /// The new host did not say it was ready in time; it was killed.
    #[error(
        "the new host {program} (pid {pid}) was not ready within {} s and was killed; this host keeps serving",
        waited.as_secs_f64(), program = program.display()
    )]
    NotReadyInTime {
        /// The binary.
        program: PathBuf,
        /// Its pid.
        pid: u32,
        /// How long this host waited.
        waited: Duration,
    },
    /// Waiting for the new host failed.
    #[error(
        "waiting for the new host {program} (pid {pid}) failed ({source}); this host keeps serving",
        program = program.display()
    )]
    Wait {
        /// The binary.
        program: PathBuf,
        /// Its pid.
        pid: u32,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// How to start the new host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpgradeOptions {
    /// The binary to start; default: the path this host was started from (where the new
    /// build is installed). Its arguments are this host's.
    pub program: Option<PathBuf>,
    /// How long the new host has to say it is ready (load its plugins); default 60 s. After
    /// that it is killed and this host keeps serving.
    pub ready_timeout: Duration,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        UpgradeOptions { program: None, ready_timeout: Duration::from_secs(60) }
    }
}

impl UpgradeOptions {
    /// Sets [`UpgradeOptions::program`].
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Sets [`UpgradeOptions::ready_timeout`].
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }
}

/// A finished upgrade: the new host serves, this one should drain and exit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Upgraded {
    /// The new host's pid.
    pub pid: u32,
    /// The binary it runs.
    pub program: PathBuf,
    /// From the start of the new process to its readiness.
    pub took: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Starting,
    Serving,
    Upgrading,
    Retired { successor: u32 },
}

struct Inner {
    program: PathBuf,
    args: Vec<OsString>,
    inherited: Mutex<Vec<(String, OwnedFd)>>,
    predecessor: Option<u32>,
    ready_pipe: Mutex<Option<OwnedFd>>,
    shared: Mutex<Vec<(String, OwnedFd)>>,
    state: Mutex<State>,
    changed: Condvar,
}

/// This host's side of upgrades: the sockets it took from its predecessor (or systemd), the
/// sockets it passes on, and whether it was replaced. One per process ([`Handoff::from_env`]);
/// clones share it.
#[derive(Clone)]
pub struct Handoff {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("program", &self.inner.program)
            .field("predecessor", &self.inner.predecessor)
            .field("shared", &lock(&self.inner.shared).iter().map(|(n, _)| n.clone()).collect::<Vec<_>>())
            .field("state", &*lock(&self.inner.state))
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handoff {
    /// Takes the descriptors this process was started with (from the host it replaces, or
    /// from systemd's socket activation) and remembers how it was started (program and
    /// arguments), for the next upgrade. Call it first in `main`, once: a second call finds no
    /// inherited descriptors.
    pub fn from_env() -> Result<Handoff, HandoffError> {
        let inherited = inherit::take()?;
        let (predecessor, ready_pipe) = match inherited.predecessor {
            Some((pid, pipe)) => (Some(pid), Some(pipe)),
            None => (None, None),
        };
        Ok(Handoff {
            inner: Arc::new(Inner {
                program: successor::own_program(),
                args: std::env::args_os().skip(1).collect(),
                inherited: Mutex::new(inherited.fds),
                predecessor,
                ready_pipe: Mutex::new(ready_pipe),
                shared: Mutex::new(Vec::new()),
                state: Mutex::new(State::Starting),
                changed: Condvar::new(),
            }),
        })
    }

    /// The pid of the host this one replaces, if it was started by an upgrade.
    pub fn predecessor(&self) -> Option<u32> {
        self.inner.predecessor
    }

    /// Takes the inherited descriptor named `name`, if there is one (each is taken once).
    pub fn take(&self, name: &str) -> Option<OwnedFd> {
        let mut inherited = lock(&self.inner.inherited);
        let index = inherited.iter().position(|(n, _)| n == name)?;
        Some(inherited.remove(index).1)
    }

    /// Passes `socket` (a listening socket) to the next host under `name` (a dup is kept;
    /// registering a name again replaces it).
    pub fn share(&self, name: &str, socket: impl AsFd) -> Result<(), HandoffError> {
        let dup = socket
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| HandoffError::Share { name: name.to_string(), source })?;
        let mut shared = lock(&self.inner.shared);
        shared.retain(|(n, _)| n != name);
        shared.push((name.to_string(), dup));
        Ok(())
    }

    /// The listening TCP socket `name`: the inherited one if there is one on `address` (or
    /// any, when `address`'s port is 0), else newly bound on `address`; passed on at the next
    /// upgrade either way. Blocking, as [`TcpListener::bind`] makes it (tokio's `from_std`
    /// wants `set_nonblocking(true)` first).
    pub fn tcp_listener(&self, name: &str, address: SocketAddr) -> Result<TcpListener, HandoffError> {
        if let Some(fd) = self.take(name) {
            let listener = TcpListener::from(fd);
            match listener.local_addr() {
                Ok(local) if local == address || (address.port() == 0 && local.ip() == address.ip()) => {
                    tracing::info!(socket = name, %local, "listening socket inherited from the previous host");
                    self.share(name, &listener)?;
                    return Ok(listener);
                }
                other => tracing::warn!(
                    socket = name,
                    inherited = ?other,
                    wanted = %address,
                    "the inherited socket is not on the address asked for: closing it and binding anew"
                ),
            }
        }
        let listener = TcpListener::bind(address).map_err(|source| HandoffError::Bind {
            name: name.to_string(),
            address: address.to_string(),
            source,
        })?;
        self.share(name, &listener)?;
        Ok(listener)
    }

    /// The inherited Unix listening socket `name`, if there is one bound at `path`.
    pub(crate) fn inherited_unix_listener(&self, name: &str, path: &Path) -> Option<UnixListener> {
        let listener = UnixListener::from(self.take(name)?);
        let bound = listener.local_addr().ok()?;
        if bound.as_pathname() == Some(path) {
            return Some(listener);
        }
        tracing::warn!(socket = name, wanted = %path.display(), "the inherited socket is bound elsewhere: binding anew");
        None
    }

    /// Says that this host serves: to the host it replaces (which then stops accepting and
    /// drains), or to systemd (`READY=1`, when `NOTIFY_SOCKET` is set). Call it once the
    /// plugins are loaded and every socket is listening.
    pub fn ready(&self) -> Result<(), HandoffError> {
        {
            let mut state = lock(&self.inner.state);
            if *state == State::Starting {
                *state = State::Serving;
            }
        }
        if let Some(pipe) = lock(&self.inner.ready_pipe).take() {
            let predecessor = self.inner.predecessor.unwrap_or_default();
            let mut pipe = std::fs::File::from(pipe);
            std::io::Write::write_all(&mut pipe, b"R").map_err(|source| HandoffError::Ready { predecessor, source })?;
            tracing::info!(predecessor, "ready: the previous host hands over");
            return Ok(());
        }
        if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::warn!(%error, "could not tell systemd that the host is ready");
        }
        Ok(())
    }

    /// Starts the new host ([`UpgradeOptions`]) with this host's sockets and waits until it is
    /// ready. Then this host is retired ([`Handoff::wait_retired`] returns): it should stop
    /// accepting, drain and exit. On an error nothing changed: this host keeps serving and may
    /// try again. One upgrade at a time ([`HandoffError::Busy`]), and only once this host is
    /// ready itself ([`HandoffError::NotReady`]).
    pub fn upgrade(&self, options: UpgradeOptions) -> Result<Upgraded, HandoffError> {
        {
            let mut state = lock(&self.inner.state);
            match *state {
                State::Serving => *state = State::Upgrading,
                State::Starting => return Err(HandoffError::NotReady),
                State::Upgrading => return Err(HandoffError::Busy),
                State::Retired { successor } => return Err(HandoffError::Retired { successor }),
            }
        }
        let program = options.program.unwrap_or_else(|| self.inner.program.clone());
        let started_at = Instant::now();
        let result = self
            .sockets_for_successor()
            .and_then(|fds| successor::start(&program, &self.inner.args, fds, options.ready_timeout));
        let mut state = lock(&self.inner.state);
        match result {
            Ok(started) => {
                // The new host is not waited for: it outlives this one, and is then reaped by
                // whoever adopts it (systemd, or init).
                let pid = started.pid;
                if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::MainPid(pid)]) {
                    tracing::warn!(%error, pid, "could not tell systemd the new main pid");
                }
                *state = State::Retired { successor: pid };
                self.inner.changed.notify_all();
                let took = started_at.elapsed();
                tracing::info!(pid, program = %program.display(), took_ms = took.as_secs_f64() * 1e3, "the new host is ready: this host stops accepting and drains");
                Ok(Upgraded { pid, program, took })
            }
            Err(error) => {
                *state = State::Serving;
                tracing::error!("host upgrade failed: {error}");
                Err(error)
            }
        }
    }

    fn sockets_for_successor(&self) -> Result<Vec<(String, OwnedFd)>, HandoffError> {
        lock(&self.inner.shared)
            .iter()
            .map(|(name, fd)| {
                fd.try_clone()
                    .map(|fd| (name.clone(), fd))
                    .map_err(|source| HandoffError::Share { name: name.clone(), source })
            })
            .collect()
    }

    /// Whether a new host took over (this one should not accept anything new).
    pub fn is_retired(&self) -> bool {
        matches!(*lock(&self.inner.state), State::Retired { .. })
    }

    /// Waits until a new host took over, and returns its pid.
    pub fn wait_retired(&self) -> u32 {
        let mut state = lock(&self.inner.state);
        loop {
            if let State::Retired { successor } = *state {
                return successor;
            }
            state = self.inner.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Upgrades on [`upgrade_signal_number`] (SIGRTMIN+2) with the default
    /// [`UpgradeOptions`], logging the result, until the returned value is dropped. Install it
    /// before loading plugins: until then the signal's default action ends the process (one
    /// that arrives before [`Handoff::ready`] is refused and logged).
    pub fn upgrade_on_signal(&self) -> std::io::Result<UpgradeSignal> {
        UpgradeSignal::start(self.clone())
    }
}
