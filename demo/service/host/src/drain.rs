//! Draining after a host upgrade: the old host stops accepting, and each open connection gets
//! `Connection: close` on its next answer (so a keep-alive client finishes that request here
//! and opens its next connection to the new host), until none is left or time runs out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Whether the server drains; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    inner: Arc<(AtomicBool, Notify)>,
}

impl Drain {
    /// A server that does not drain (yet).
    pub fn new() -> Self {
        Drain::default()
    }

    /// Starts draining: the accept loop ends, connections close after their next answer.
    pub fn start(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }

    /// Whether draining has started.
    pub fn is_draining(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }

    /// Waits until draining starts.
    pub async fn started(&self) {
        loop {
            let notified = self.inner.1.notified();
            if self.is_draining() {
                return;
            }
            notified.await;
        }
    }
}
