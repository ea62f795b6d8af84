//! Reloading on SIGHUP and SIGUSR1, so that `systemctl reload` works.
//!
//! ```ini
//! # /etc/systemd/system/game.service
//! [Service]
//! ExecStart=/usr/local/bin/game-server --plugins /var/lib/game/plugins
//! ExecReload=/bin/kill -HUP $MAINPID
//! ```

use std::thread::JoinHandle;

use signal_hook::consts::{SIGHUP, SIGUSR1};
use signal_hook::iterator::{Handle, Signals};

use crate::manager::PluginManager;

/// Reloads the manager's plugins whenever the process gets SIGHUP or SIGUSR1. Each result is
/// logged (the control socket remains the way to get an answer). Dropping it stops listening
/// and restores nothing else: the signals' default actions stay replaced for the process.
pub struct SignalReloader {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalReloader {
    pub(crate) fn start(manager: PluginManager) -> std::io::Result<Self> {
        let mut signals = Signals::new([SIGHUP, SIGUSR1])?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new().name("hotswap-signals".into()).spawn(move || {
            for signal in signals.forever() {
                let name = if signal == SIGHUP { "SIGHUP" } else { "SIGUSR1" };
                match manager.reload() {
                    Ok(report) => {
                        tracing::info!(signal = name, generation = report.generation, "reload on signal accepted")
                    }
                    Err(error) => {
                        tracing::error!(signal = name, "reload on signal refused: {error}")
                    }
                }
            }
        })?;
        Ok(SignalReloader { handle, thread: Some(thread) })
    }
}

impl Drop for SignalReloader {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
