//! Reload callbacks added while the manager runs ([`PluginManager::add_reload_callback`]),
//! beside the builder's fixed ones: a library that mounts a plugin (`hotswap-axum`'s
//! `PluginRouter`, say) prepares what it needs of each new generation before it serves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::{Generation, Inner, PluginManager, ReloadCallback};
use crate::HookError;

/// The callbacks added at run time, each with the number its guard removes it by.
#[derive(Default)]
pub(crate) struct AddedCallbacks {
    next: AtomicU64,
    list: Mutex<Vec<(u64, ReloadCallback)>>,
}

impl AddedCallbacks {
    /// The callbacks now, to run without the lock held (a callback may add or remove one).
    pub(crate) fn snapshot(&self) -> Vec<ReloadCallback> {
        lock(&self.list).iter().map(|(_, callback)| Arc::clone(callback)).collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a callback added by [`PluginManager::add_reload_callback`]; dropping it removes the
/// callback (a reload already running may still call it once).
#[must_use = "the callback is removed when the guard is dropped"]
pub struct ReloadCallbackGuard {
    inner: Weak<Inner>,
    id: u64,
}

impl std::fmt::Debug for ReloadCallbackGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadCallbackGuard").field("id", &self.id).finish()
    }
}

impl Drop for ReloadCallbackGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.added_callbacks.list).retain(|(id, _)| *id != self.id);
        }
    }
}

impl PluginManager {
    /// Adds a reload callback while the manager runs, as
    /// [`PluginManagerBuilder::reload_callback`](super::PluginManagerBuilder::reload_callback)
    /// adds one before: it runs on every later new generation, fully loaded but not yet
    /// published, with the generation serving now, after the builder's callbacks, until the
    /// returned guard is dropped. An error or a panic fails the reload, and the serving
    /// generation keeps serving. It runs on the reload's thread: it must not ask for a reload
    /// itself, nor drop its own guard.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(manager: &hotswap_runtime::PluginManager) {
    /// let guard = manager.add_reload_callback(|new, _old| {
    ///     tracing::info!(generation = new.number(), "about to serve");
    ///     Ok(())
    /// });
    /// // ... reloads run it; then:
    /// drop(guard);
    /// # }
    /// ```
    pub fn add_reload_callback<F>(&self, callback: F) -> ReloadCallbackGuard
    where
        F: Fn(&Arc<Generation>, Option<&Arc<Generation>>) -> Result<(), HookError> + Send + Sync + 'static,
    {
        let added = &self.inner.added_callbacks;
        let id = added.next.fetch_add(1, Ordering::Relaxed);
        lock(&added.list).push((id, Arc::new(callback)));
        ReloadCallbackGuard { inner: Arc::downgrade(&self.inner), id }
    }
}
