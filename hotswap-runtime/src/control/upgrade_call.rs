//! The control socket's part in host upgrades ([`crate::handoff`]): the `upgrade_host` answer,
//! and accepting on a socket that another host process may share.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::ControlResponse;
use crate::handoff::{Handoff, HandoffError, UpgradeOptions};

/// How often a control socket shared for upgrades looks at whether to stop accepting.
const RETIRE_POLL: Duration = Duration::from_millis(50);

/// What the acceptor of a shared socket does next.
pub(super) enum Turn {
    /// The server stops, or this host was replaced: accept nothing more.
    Stop,
    /// Nothing is waiting yet: look again.
    Wait,
    /// A connection is waiting (another host may still take it first: accept then says
    /// WouldBlock).
    Accept,
}

/// Waits at most [`RETIRE_POLL`] for a connection on `listener` (non-blocking), so that a host
/// that was replaced stops accepting at once and takes no request meant for the new host.
pub(super) fn before_accept(listener: &UnixListener, stop: &AtomicBool, handoff: &Handoff) -> Turn {
    let stopped = || stop.load(Ordering::SeqCst) || handoff.is_retired();
    if stopped() {
        return Turn::Stop;
    }
    let mut poll = [libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    // SAFETY: one valid pollfd for a descriptor this function borrows for the call.
    let ready = unsafe { libc::poll(poll.as_mut_ptr(), 1, RETIRE_POLL.as_millis() as libc::c_int) };
    if stopped() {
        Turn::Stop
    } else if ready > 0 {
        Turn::Accept
    } else {
        Turn::Wait
    }
}

/// The answer to `upgrade_host`: once the new host is ready, or why it is not.
pub(super) fn answer(
    handoff: Option<&Handoff>,
    program: Option<String>,
    ready_timeout_ms: Option<u64>,
) -> ControlResponse {
    let Some(handoff) = handoff else {
        return ControlResponse::refused(
            "this host cannot be upgraded in place: it serves its control socket without a Handoff (ControlConfig::handoff; see docs/operations.md, \"Upgrading the host binary\")",
        );
    };
    let mut options = UpgradeOptions::default();
    if let Some(program) = program {
        options = options.program(program);
    }
    if let Some(ms) = ready_timeout_ms {
        options = options.ready_timeout(Duration::from_millis(ms));
    }
    match handoff.upgrade(options) {
        Ok(done) => ControlResponse::HostUpgraded {
            pid: done.pid,
            program: done.program.to_string_lossy().into_owned(),
            took_ms: done.took.as_secs_f64() * 1e3,
            previous_pid: std::process::id(),
        },
        Err(HandoffError::Busy) => ControlResponse::Busy { reason: HandoffError::Busy.to_string(), reload: None },
        Err(error) => ControlResponse::refused(error.to_string()),
    }
}
