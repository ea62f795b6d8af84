//! Taking the sockets a process was started with: systemd's `LISTEN_FDS` protocol
//! (`sd_listen_fds(3)`), from systemd's socket activation or from the host this one replaces.
//!
//! The descriptors are numbers 3, 4, … (`LISTEN_FDS` of them), named by `LISTEN_FDNAMES`
//! (colon-separated). They are this process's when `LISTEN_PID` is its own pid (systemd), or
//! when `LISTEN_PID` is absent and [`FROM_ENV`] names the parent process (a predecessor host,
//! which cannot know its child's pid before the exec). Anything else (variables inherited by a
//! grandchild, say) is ignored, as `sd_listen_fds` does.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::HandoffError;

/// The pid of the host that started this one to replace it.
pub(crate) const FROM_ENV: &str = hotswap_abi::env::HANDOFF_FROM;
/// The number of the descriptor this host writes to once it is ready (a pipe to its
/// predecessor).
pub(crate) const READY_FD_ENV: &str = hotswap_abi::env::HANDOFF_READY_FD;
/// The first descriptor of the protocol.
pub(crate) const FIRST_FD: RawFd = 3;

/// What a process was started with.
#[derive(Debug, Default)]
pub(crate) struct Inherited {
    /// Named descriptors, in order.
    pub(crate) fds: Vec<(String, OwnedFd)>,
    /// The predecessor's pid and the write end of its readiness pipe, when a host started this
    /// one to replace it.
    pub(crate) predecessor: Option<(u32, OwnedFd)>,
}

/// Takes the inherited descriptors, once per process: a second call finds none (two owners of
/// one descriptor number would close it twice).
pub(crate) fn take() -> Result<Inherited, HandoffError> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Inherited::default());
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let own = std::process::id();
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
    let from = var(FROM_ENV).and_then(|v| v.parse::<u32>().ok());
    let ours = match var("LISTEN_PID") {
        Some(pid) => pid.parse::<u32>().ok() == Some(own),
        None => from.is_some_and(|from| from == parent),
    };
    if !ours {
        return Ok(Inherited::default());
    }
    let count = match var("LISTEN_FDS") {
        None => 0,
        Some(n) => n.parse::<RawFd>().map_err(|_| HandoffError::Environment {
            variable: "LISTEN_FDS",
            value: n.clone(),
            reason: "not a number of descriptors",
        })?,
    };
    let names: Vec<String> =
        var("LISTEN_FDNAMES").map(|n| n.split(':').map(str::to_string).collect()).unwrap_or_default();
    let mut inherited = Inherited::default();
    for index in 0..count {
        let fd = FIRST_FD + index;
        let owned = claim(fd)?;
        let name = names.get(index as usize).cloned().unwrap_or_else(|| "unknown".to_string());
        inherited.fds.push((name, owned));
    }
    if let (Some(from), Some(ready)) = (from, var(READY_FD_ENV)) {
        let fd = ready.parse::<RawFd>().map_err(|_| HandoffError::Environment {
            variable: READY_FD_ENV,
            value: ready.clone(),
            reason: "not a descriptor number",
        })?;
        if fd < FIRST_FD + count {
            return Err(HandoffError::Environment {
                variable: READY_FD_ENV,
                value: ready,
                reason: "a number below 3 or among LISTEN_FDS",
            });
        }
        inherited.predecessor = Some((from, claim(fd)?));
    }
    tracing::debug!(
        sockets = ?inherited.fds.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        predecessor = ?inherited.predecessor.as_ref().map(|(pid, _)| pid),
        "inherited descriptors"
    );
    Ok(inherited)
}

/// Owns inherited descriptor `fd` after checking that it is open, and marks it close-on-exec
/// (so it does not leak into this process's other children).
fn claim(fd: RawFd) -> Result<OwnedFd, HandoffError> {
    // SAFETY: `fd` is only read (F_GETFD) here; an invalid number fails with EBADF.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags =
        rustix::io::fcntl_getfd(borrowed).map_err(|e| HandoffError::Inherit { fd, source: std::io::Error::from(e) })?;
    rustix::io::fcntl_setfd(borrowed, flags | rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| HandoffError::Inherit { fd, source: std::io::Error::from(e) })?;
    // SAFETY: the protocol hands descriptors 3.. (and the readiness pipe) to this process, the
    // check above shows `fd` is open, and `take` runs once per process, so nothing else owns
    // it: this is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
