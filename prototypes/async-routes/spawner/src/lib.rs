//! Stands for hyper/axum/tower: a library the plugin calls that spawns a task internally.
use std::time::Duration;

/// Spawns a background task that sleeps `ms` and then runs `then`.
pub fn spawn_later(ms: u64, then: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        then();
    });
}
