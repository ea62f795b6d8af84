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
//! Thread-local destructors are safe: glibc keeps a library loaded while one of its
//! thread-local destructors is pending.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

struct Buried {
    path: PathBuf,
    library: libloading::Library,
}

/// Holds released libraries; see the module documentation.
pub(crate) struct Graveyard {
    retain: Option<usize>,
    buried: Mutex<VecDeque<Buried>>,
    closed: AtomicU64,
    leaked: AtomicU64,
}

impl Graveyard {
    /// `retain`: how many released libraries stay mapped; `None`: never close any.
    pub fn new(retain: Option<usize>) -> Self {
        Graveyard { retain, buried: Mutex::new(VecDeque::new()), closed: AtomicU64::new(0), leaked: AtomicU64::new(0) }
    }

    /// Takes a library nothing refers to any more.
    pub fn bury(&self, path: PathBuf, library: libloading::Library, unloadable: bool) {
        let Some(retain) = self.retain.filter(|_| unloadable) else {
            // Stays mapped for the life of the process.
            std::mem::forget(library);
            self.leaked.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut buried = self.buried.lock().unwrap_or_else(|e| e.into_inner());
        buried.push_back(Buried { path, library });
        while buried.len() > retain {
            let Some(oldest) = buried.pop_front() else {
                break;
            };
            match oldest.library.close() {
                Ok(()) => tracing::debug!(library = %oldest.path.display(), "library closed"),
                Err(e) => tracing::warn!(library = %oldest.path.display(), "dlclose failed: {e}"),
            }
            let _ = std::fs::remove_file(&oldest.path);
            self.closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Libraries closed so far.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Released libraries that will never be closed (not unloadable, or `never_unload`).
    pub fn leaked(&self) -> u64 {
        self.leaked.load(Ordering::Relaxed)
    }
}
