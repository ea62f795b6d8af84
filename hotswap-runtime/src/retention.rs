//! When replaced libraries are closed.
//!
//! A library is released when nothing refers to it any more: no generation, vault, `Plugin`
//! handle, `Value` it returned, or live-function handle (all of them hold a shared reference
//! to the mapped library).
//! Released libraries then wait in the graveyard, which keeps the `retain` most recently
//! released ones mapped and closes older ones with `dlclose` (deleting their private copy).
//! The margin covers what the runtime cannot track: a raw pointer a plugin leaked, a callback
//! still on another thread's stack. A plugin built with
//! `hotswap_build::Config::unloadable(false)` is never closed, nor is anything when the
//! manager was built with `never_unload()`.
//!
//! A plugin is unsafe to unload if, after its `on_free`, anything can still run or reach its
//! code or data: threads it started and did not join, `'static` references or function
//! pointers it handed to the host or to other plugins outside `Value`s and live-function
//! handles, callbacks it registered with the host or with a library the host shares.
//!
//! `dlclose` does not always unmap: glibc keeps a library mapped while one of its thread-local
//! destructors is pending, which is the case while a thread the plugin started (and that used
//! a thread-local, as std's own thread bookkeeping does) is alive. So after each `dlclose`
//! the graveyard checks `/proc/self/maps`: a library that is really gone counts as closed
//! ([`PluginManager::closed_library_count`](crate::PluginManager::closed_library_count)); one
//! that stayed mapped is counted per plugin
//! ([`PluginManager::still_mapped_library_count`](crate::PluginManager::still_mapped_library_count),
//! and in each [`PluginReport`](crate::PluginReport)) and logged as a warning naming the
//! plugin and the likely cause. Such a library holds its memory for the life of the process;
//! its code is still there, so the thread that keeps it does not crash.
//!
//! The last reference to a library can go on any thread: a caller whose [`HotFn`] drops the
//! function it cached from a replaced generation, a caller holding the last guard on one, a
//! `Value` dropped late. Closing (`dlclose`, the check of `/proc/self/maps`, deleting the
//! private copy) takes hundreds of microseconds, so it never runs on such a thread while the
//! manager's reaper thread runs: the library is queued and the reaper closes it. It runs
//! inline only on the reaper thread itself, or when there is no reaper (before the first
//! reload, after the manager is gone).
//!
//! [`HotFn`]: crate::HotFn

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, Weak};

/// A thread that closes the graveyard's excess libraries when asked (the manager's reaper). A
/// trait here, so this module stays below the manager and does not name it.
pub(crate) trait CloseLater: Send + Sync {
    /// Asks for [`Graveyard::close_excess`] on that thread; false if the caller must close
    /// them itself (no such thread runs, or the caller is that thread).
    fn close_later(&self) -> bool;
}

struct Buried {
    plugin: String,
    path: PathBuf,
    library: libloading::Library,
}

/// Holds released libraries; see the module documentation.
pub(crate) struct Graveyard {
    retain: Option<usize>,
    buried: Mutex<VecDeque<Buried>>,
    closed: AtomicU64,
    leaked: AtomicU64,
    /// Per plugin: libraries closed with `dlclose` that stayed mapped.
    still_mapped: Mutex<HashMap<String, u64>>,
    /// The thread that closes libraries released elsewhere (see the module documentation).
    closer: OnceLock<Weak<dyn CloseLater>>,
}

/// Whether a file of this path (or its deleted copy) is mapped into this process.
fn is_mapped(path: &Path) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return false };
    let path = path.to_string_lossy();
    maps.lines()
        .filter_map(|line| line.splitn(6, ' ').nth(5))
        .map(str::trim_start)
        .any(|mapped| mapped == path || mapped.strip_suffix(" (deleted)") == Some(&*path))
}

impl Graveyard {
    /// `retain`: how many released libraries stay mapped; `None`: never close any.
    pub fn new(retain: Option<usize>) -> Self {
        Graveyard {
            retain,
            buried: Mutex::new(VecDeque::new()),
            closed: AtomicU64::new(0),
            leaked: AtomicU64::new(0),
            still_mapped: Mutex::new(HashMap::new()),
            closer: OnceLock::new(),
        }
    }

    /// Closes libraries released on other threads on `reaper`'s thread from now on.
    pub fn close_on<R: CloseLater + 'static>(&self, reaper: &std::sync::Arc<R>) {
        let reaper: Weak<dyn CloseLater> = std::sync::Arc::<R>::downgrade(reaper);
        let _ = self.closer.set(reaper);
    }

    /// Takes a library nothing refers to any more. Closing the oldest ones beyond `retain` is
    /// left to the reaper thread when there is one and this is not it.
    pub fn bury(&self, plugin: String, path: PathBuf, library: libloading::Library, unloadable: bool) {
        let Some(retain) = self.retain.filter(|_| unloadable) else {
            // Stays mapped for the life of the process.
            std::mem::forget(library);
            self.leaked.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let excess = {
            let mut buried = self.lock_buried();
            buried.push_back(Buried { plugin, path, library });
            buried.len() > retain
        };
        let deferred = excess && self.closer.get().and_then(Weak::upgrade).is_some_and(|reaper| reaper.close_later());
        if excess && !deferred {
            self.close_excess();
        }
    }

    fn lock_buried(&self) -> std::sync::MutexGuard<'_, VecDeque<Buried>> {
        self.buried.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the oldest released libraries until `retain` are left (the lock is not held
    /// while closing: `dlclose` runs the library's destructors).
    pub fn close_excess(&self) {
        let Some(retain) = self.retain else { return };
        loop {
            let oldest = {
                let mut buried = self.lock_buried();
                if buried.len() <= retain {
                    return;
                }
                buried.pop_front()
            };
            let Some(oldest) = oldest else { return };
            self.close(oldest);
        }
    }

    fn close(&self, oldest: Buried) {
        let library = crate::error::escape_path(&oldest.path);
        match oldest.library.close() {
            Ok(()) if !is_mapped(&oldest.path) => {
                tracing::debug!(plugin = %oldest.plugin, %library, "library closed and unmapped");
                self.closed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {
                tracing::warn!(
                    plugin = %oldest.plugin,
                    %library,
                    "dlclose left the library mapped: a thread the plugin started is probably still running (or one of its thread-local destructors is pending); it stays in memory for the life of the process"
                );
                *self.still_mapped.lock().unwrap_or_else(|e| e.into_inner()).entry(oldest.plugin).or_default() += 1;
            }
            Err(e) => tracing::warn!(plugin = %oldest.plugin, %library, "dlclose failed: {e}"),
        }
        let _ = std::fs::remove_file(&oldest.path);
    }

    /// Libraries of `plugin` (of every plugin with `None`) that `dlclose` left mapped.
    pub fn still_mapped(&self, plugin: Option<&str>) -> u64 {
        let counts = self.still_mapped.lock().unwrap_or_else(|e| e.into_inner());
        match plugin {
            Some(plugin) => counts.get(plugin).copied().unwrap_or(0),
            None => counts.values().sum(),
        }
    }

    /// Libraries closed and really unmapped so far.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Released libraries that will never be closed (not unloadable, or `never_unload`).
    pub fn leaked(&self) -> u64 {
        self.leaked.load(Ordering::Relaxed)
    }
}
