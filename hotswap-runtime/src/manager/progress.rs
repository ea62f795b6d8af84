//! Where a running reload is: for "reload in progress for N s (stage X, plugin Y)" answers,
//! for deadline errors that name the stage it was stuck in, and to recognise a reload asked
//! for from inside one of its own hooks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::error::Stage;

/// A snapshot of a running reload.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadProgress {
    /// Time since the reload started.
    pub elapsed: Duration,
    /// The stage it is in.
    pub stage: Stage,
    /// The plugin whose stage it is, if the stage is per plugin.
    pub plugin: Option<String>,
}

impl std::fmt::Display for ReloadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} s (stage `{}`", self.elapsed.as_secs_f64(), self.stage)?;
        if let Some(plugin) = &self.plugin {
            write!(f, ", plugin `{plugin}`")?;
        }
        f.write_str(")")
    }
}

/// One reload's progress, written by its thread.
pub(crate) struct Progress {
    started: Instant,
    at: Mutex<(Stage, Option<String>)>,
    /// The OS thread id of the reload's thread (0 until it starts). An OS id, not std's
    /// `ThreadId`: plugin code calling back into the manager runs its own copy of std.
    thread: AtomicI32,
}

impl Progress {
    pub fn new() -> Self {
        Progress { started: Instant::now(), at: Mutex::new((Stage::Scan, None)), thread: AtomicI32::new(0) }
    }

    /// Called first on the reload's thread.
    pub fn enter(&self) {
        self.thread.store(current_thread(), Ordering::Release);
    }

    /// Whether the caller runs on this reload's thread.
    pub fn is_current_thread(&self) -> bool {
        self.thread.load(Ordering::Acquire) == current_thread()
    }

    pub fn at(&self, stage: Stage, plugin: Option<&str>) {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.0 = stage;
        if at.1.as_deref() != plugin {
            at.1 = plugin.map(str::to_string);
        }
    }

    pub fn snapshot(&self) -> ReloadProgress {
        let at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        ReloadProgress { elapsed: self.started.elapsed(), stage: at.0, plugin: at.1.clone() }
    }
}

fn current_thread() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}
