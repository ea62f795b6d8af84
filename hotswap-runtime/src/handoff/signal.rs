//! Upgrading the host on a signal: SIGRTMIN+2 (SIGHUP and SIGUSR1 reload plugins, SIGUSR2
//! rolls back; a terminal sends none of the real-time signals, unlike SIGWINCH).

use signal_hook::iterator::{Handle, Signals};

use super::{Handoff, UpgradeOptions};

/// The signal that upgrades the host: SIGRTMIN+2 as this C library counts (36 with glibc;
/// `kill -s RTMIN+2 PID`, `systemctl kill --kill-whom=main --signal=SIGRTMIN+2 UNIT`).
pub fn upgrade_signal_number() -> i32 {
    libc::SIGRTMIN() + 2
}

/// Upgrades the host on [`upgrade_signal_number`] until dropped
/// ([`Handoff::upgrade_on_signal`]). Each result is logged (the control socket's
/// `upgrade_host` is the way to get an answer).
pub struct UpgradeSignal {
    handle: Handle,
}

impl std::fmt::Debug for UpgradeSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeSignal").field("signal", &"SIGRTMIN+2").finish_non_exhaustive()
    }
}

impl UpgradeSignal {
    pub(super) fn start(handoff: Handoff) -> std::io::Result<Self> {
        let mut signals = Signals::new([upgrade_signal_number()])?;
        let handle = signals.handle();
        std::thread::Builder::new().name("hotswap-upgrade-signal".into()).spawn(move || {
            for _ in signals.forever() {
                match handoff.upgrade(UpgradeOptions::default()) {
                    Ok(done) => tracing::info!(signal = "SIGRTMIN+2", pid = done.pid, "host upgrade on signal done"),
                    Err(error) => tracing::error!(signal = "SIGRTMIN+2", "host upgrade on signal failed: {error}"),
                }
            }
        })?;
        Ok(UpgradeSignal { handle })
    }
}

impl Drop for UpgradeSignal {
    fn drop(&mut self) {
        self.handle.close();
    }
}
