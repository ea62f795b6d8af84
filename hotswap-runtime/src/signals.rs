//! Reloading on SIGHUP and SIGUSR1, so that `systemctl reload` works; rolling back a generation
//! on probation on SIGUSR2.
//!
//! ```ini
//! # /etc/systemd/system/game.service
//! [Service]
//! ExecStart=/usr/local/bin/game-server --plugins /var/lib/game/plugins
//! ExecReload=/bin/kill -HUP $MAINPID
//! ```
//!
//! Install it before the first load ([`PluginManager::reload_on_signals`] then
//! [`PluginManager::load_plugins`]): until it is installed, SIGHUP's default action ends the
//! process, and systemd may send one as soon as the service has started.

use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGUSR1, SIGUSR2};
use signal_hook::iterator::{Handle, Signals};

use crate::control::reload_call::{ReloadOutcome, run_reload};
use crate::manager::PluginManager;

/// Reloads the manager's plugins whenever the process gets SIGHUP or SIGUSR1, and rolls back
/// the generation on probation ([`PluginManager::rollback`]) on SIGUSR2. Each result is
/// logged (the control socket remains the way to get an answer).
///
/// It may be installed before the first load, and should be: a signal that arrives while the
/// first load runs reloads once that load has finished (one that arrives before any load
/// starts does the first load).
///
/// Dropping it stops listening and returns at once, even while a reload it started is stuck
/// in a plugin's hook (that thread is left to finish on its own). The signals' default
/// actions stay replaced for the process: a SIGHUP after the drop is ignored.
pub struct SignalReloader {
    handle: Handle,
}

impl std::fmt::Debug for SignalReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalReloader").field("signals", &["SIGHUP", "SIGUSR1", "SIGUSR2"]).finish_non_exhaustive()
    }
}

impl SignalReloader {
    pub(crate) fn start(manager: PluginManager) -> std::io::Result<Self> {
        let mut signals = Signals::new([SIGHUP, SIGUSR1, SIGUSR2])?;
        let handle = signals.handle();
        let closed = handle.clone();
        std::thread::Builder::new().name("hotswap-signals".into()).spawn(move || {
            for signal in signals.forever() {
                if signal == SIGUSR2 {
                    rollback_on_signal(&manager, &closed);
                    continue;
                }
                let name = if signal == SIGHUP { "SIGHUP" } else { "SIGUSR1" };
                reload_on_signal(&manager, name, &closed);
            }
        })?;
        Ok(SignalReloader { handle })
    }
}

fn reload_on_signal(manager: &PluginManager, name: &str, closed: &Handle) {
    loop {
        match run_reload(manager, None) {
            ReloadOutcome::Done(report) => {
                tracing::info!(signal = name, generation = report.generation, "reload on signal accepted");
            }
            ReloadOutcome::Refused(error) => {
                tracing::error!(signal = name, "reload on signal refused: {error}");
            }
            ReloadOutcome::Busy(running) => {
                // Another reload runs: this signal's reload comes after it, so that the newest
                // files are loaded.
                if !closed.is_closed() {
                    tracing::debug!(signal = name, "{running}; reloading after it");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        return;
    }
}

fn rollback_on_signal(manager: &PluginManager, closed: &Handle) {
    loop {
        match manager.try_rollback() {
            Ok(end) => {
                tracing::info!(signal = "SIGUSR2", generation = end.previous, "rollback on signal done");
            }
            Err(crate::ProbationError::Busy) if !closed.is_closed() => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(error) => tracing::error!(signal = "SIGUSR2", "rollback on signal refused: {error}"),
        }
        return;
    }
}

impl Drop for SignalReloader {
    fn drop(&mut self) {
        // Ends the thread's wait for signals; never waits for a reload it is running.
        self.handle.close();
    }
}
