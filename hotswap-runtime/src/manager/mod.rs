//! The manager that loads generations of plugins and swaps them in. Each job has its file:
//!
//! - `builder`: every option, with its default;
//! - `workdir`: the folder of private library copies, and cleaning up after dead hosts;
//! - `folder`: scanning the plugin folder, mode checks, bounded reads;
//! - `plan`: what to carry over and in which order to load (pure functions, unit-tested);
//! - `load`: building one generation, phase by phase;
//! - `progress`: where a running reload is;
//! - `probation`: reloads on probation, confirm and rollback;
//! - `reaper`: freeing replaced generations after the free delay;
//! - `generation`: a generation and handles on its plugins;
//! - `reloading`: running one reload on its thread, publishing, retiring the old generation;
//! - `report`: what a reload reports;
//! - `trigger`: reloading when a new library lands in the plugin folder (inotify).
//!
//! This file holds the manager itself: its state, the reload entry points, and the lock-free
//! reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::HookError;
use crate::abi::PluginDescriptor;
use crate::error::{InvokeError, LoadError};
use crate::retention::Graveyard;
use crate::value::{Args, Value};
use crate::vault::Extension;

mod builder;
mod callbacks;
mod folder;
mod generation;
mod hot;
mod load;
mod memory;
mod plan;
mod priority;
mod probation;
mod progress;
mod reaper;
mod reloading;
mod report;
mod tasks;
mod trigger;
mod workdir;

pub use builder::{DEFAULT_MAX_LIBRARY_SIZE, DEFAULT_RELOAD_DEADLINE, PluginManagerBuilder};
pub use callbacks::ReloadCallbackGuard;
pub use generation::{Generation, Plugin};
pub use hot::HotFn;
pub use memory::MemoryReport;
pub use probation::{HealthCheck, Probation, ProbationEnd, ProbationError, ProbationResult, ProbationStatus};
pub use progress::ReloadProgress;
pub use report::{IgnoredFile, IgnoredReason, PluginOrigin, PluginReport, ReloadReport};
pub use tasks::{LiveTasks, TaskCensus};

use progress::Progress;
pub(crate) use reaper::Reaper;

type ExtensionNewer = Arc<dyn Fn() -> Extension + Send + Sync>;

/// A reload callback: receives the new generation, fully loaded but not yet published, and
/// the generation serving now (absent at the first load). An error or a panic fails the
/// reload: the new generation is freed and the old one keeps serving.
pub type ReloadCallback =
    Arc<dyn Fn(&Arc<Generation>, Option<&Arc<Generation>>) -> Result<(), HookError> + Send + Sync>;

pub(crate) struct Inner {
    dir: RwLock<PathBuf>,
    free_delay: Duration,
    extension_newer: Option<ExtensionNewer>,
    whitelist: Option<std::collections::BTreeSet<String>>,
    callbacks: Vec<ReloadCallback>,
    /// Callbacks added while the manager runs (`PluginManager::add_reload_callback`).
    added_callbacks: callbacks::AddedCallbacks,
    reuse_unchanged: bool,
    strict_modes: bool,
    linked: Vec<&'static PluginDescriptor>,
    reload_deadline: Duration,
    /// The nice value of reload threads and the reaper (`PluginManagerBuilder::reload_nice`).
    reload_nice: i32,
    max_library_size: u64,
    require_manifest: bool,
    graveyard: Arc<Graveyard>,
    reaper: Arc<Reaper>,
    current: ArcSwapOption<Generation>,
    /// The number of the generation serving now (0 before the first load).
    published: AtomicU64,
    /// Successful loads and reloads.
    reloads: AtomicU64,
    next_generation: AtomicU64,
    /// Private copies written so far (for unique copy names).
    copies: AtomicU64,
    /// Reloads given up at their deadline.
    abandoned: AtomicU64,
    /// Resident memory after each load and reload.
    memory: memory::MemoryTrack,
    /// Serialises reloads. Held by the thread that asked for a reload while it waits (at most
    /// the deadline) for the reload's own thread; never taken by calls into plugins, status
    /// or counters.
    reload_lock: Mutex<()>,
    /// The reload holding the lock.
    active: Mutex<Option<Arc<Progress>>>,
    /// Every reload thread still running, including abandoned ones.
    threads: Mutex<Vec<Arc<Progress>>>,
    /// What every [`HotFn`] alive needs of a new generation.
    hot_contracts: hot::Contracts,
    /// The watch of [`PluginManagerBuilder::reload_on_new_builds`], if asked for.
    trigger: std::sync::OnceLock<trigger::Trigger>,
    /// The health check, and the generation on probation with the one kept ready.
    probation: probation::State,
    /// The host's count of tasks running on plugin code, if it gave one.
    task_census: Option<TaskCensus>,
    work: tempfile::TempDir,
}

/// How long dropping the manager waits for the plugins' `on_free`.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(5);

impl Drop for Inner {
    fn drop(&mut self) {
        // The serving generation and everything waiting are freed now, on the reaper's thread,
        // which then ends. Waited for, but not joined: a plugin stuck in `on_free` must not
        // keep the host from shutting down.
        if let Some(previous) = self.probation.take_previous() {
            self.reaper.retire(previous, Duration::ZERO);
        }
        let ticket = match self.current.swap(None) {
            Some(current) => self.reaper.retire(current, Duration::ZERO),
            None => self.reaper.issued(),
        };
        self.reaper.close();
        if !self.reaper.wait_for(ticket, SHUTDOWN_PATIENCE) {
            tracing::warn!("shutting down without waiting longer for a plugin's on_free (stuck?)");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Loads a folder of plugins as one generation and swaps in new generations atomically.
///
/// Cheap to clone; clones share the same state. Calls never wait for a reload: they run on
/// the generation that was current when they looked it up. Status reads ([`current`],
/// [`generation_number`], [`reload_count`], [`reload_progress`]) never wait either.
///
/// [`current`]: PluginManager::current
/// [`generation_number`]: PluginManager::generation_number
/// [`reload_count`]: PluginManager::reload_count
/// [`reload_progress`]: PluginManager::reload_progress
#[derive(Clone)]
pub struct PluginManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager")
            .field("plugin_dir", &self.plugin_dir())
            .field("generation", &self.generation_number())
            .field("reload_count", &self.reload_count())
            .field("work_dir", &self.work_dir())
            .finish_non_exhaustive()
    }
}

impl PluginManager {
    /// Starts configuring a manager for the plugins in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> PluginManagerBuilder {
        PluginManagerBuilder::new(dir.into())
    }

    /// The plugin folder.
    pub fn plugin_dir(&self) -> PathBuf {
        self.inner.dir.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads the first generation. The same as [`PluginManager::reload`]; named for start-up.
    pub fn load_plugins(&self) -> Result<ReloadReport, LoadError> {
        self.reload()
    }

    /// Loads the newest file of each plugin in the folder as a new generation and publishes
    /// it. On any failure nothing is published and the current generation keeps serving.
    ///
    /// The reload runs on a thread of its own; this waits for it at most the
    /// [reload deadline](PluginManagerBuilder::reload_deadline), then reports
    /// [`LoadErrorKind::TimedOut`](crate::LoadErrorKind::TimedOut). If another reload is running, this waits for it first;
    /// [`PluginManager::try_reload`] answers at once instead. Called from inside a hook or
    /// reload callback of a running reload, it returns [`LoadErrorKind::Reentrant`](crate::LoadErrorKind::Reentrant) at once.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use hotswap_runtime::PluginManager;
    ///
    /// let manager = PluginManager::builder("plugins").build()?;
    /// manager.load_plugins()?;
    /// // ... a new build of a plugin lands in `plugins/` ...
    /// match manager.reload() {
    ///     Ok(report) => {
    ///         for plugin in &report.plugins {
    ///             println!("generation {}: {} {} ({})", report.generation, plugin.name, plugin.version, plugin.note);
    ///         }
    ///     }
    ///     // Nothing was published: the previous generation goes on serving.
    ///     Err(error) => eprintln!("reload refused at stage `{}`: {error}", error.stage),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reload(&self) -> Result<ReloadReport, LoadError> {
        self.reload_inner(None, true, None)
    }

    /// Like [`PluginManager::reload`], but the generation replaced stays loaded and ready
    /// until the new one is confirmed ([`PluginManager::confirm`]), or passes its checks for
    /// the whole period; it serves again on [`PluginManager::rollback`], or as soon as a check
    /// fails (the builder's [`health_check`](PluginManagerBuilder::health_check), or more
    /// panics than [`Probation::max_panics`]). Refused for the first load (nothing to go back
    /// to). While a generation is on probation, every other reload is refused
    /// ([`LoadErrorKind::OnProbation`](crate::LoadErrorKind::OnProbation)).
    ///
    /// ```no_run
    /// # fn f(manager: &hotswap_runtime::PluginManager) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use hotswap_runtime::Probation;
    /// manager.reload_on_probation(Probation::new(Duration::from_secs(60)).max_panics(3))?;
    /// // ... watch it serve; then either:
    /// manager.confirm()?; // or manager.rollback()?
    /// # Ok(()) }
    /// ```
    pub fn reload_on_probation(&self, terms: Probation) -> Result<ReloadReport, LoadError> {
        self.reload_inner(None, true, Some(terms))
    }

    /// [`PluginManager::reload_on_probation`] that answers [`LoadErrorKind::Busy`](crate::LoadErrorKind::Busy) at once
    /// if another reload is running. For control sockets and signals.
    pub fn try_reload_on_probation(&self, terms: Probation) -> Result<ReloadReport, LoadError> {
        self.reload_inner(None, false, Some(terms))
    }

    /// Like [`PluginManager::reload`], but if another reload is running, returns at once with
    /// [`LoadErrorKind::Busy`](crate::LoadErrorKind::Busy), naming the stage and plugin that reload is at. For control
    /// sockets and signals.
    pub fn try_reload(&self) -> Result<ReloadReport, LoadError> {
        self.reload_inner(None, false, None)
    }

    /// [`PluginManager::reload`] with one extra callback for this reload only, run after the
    /// builder's callbacks.
    pub fn reload_with<F>(&self, callback: F) -> Result<ReloadReport, LoadError>
    where
        F: Fn(&Arc<Generation>, Option<&Arc<Generation>>) -> Result<(), HookError> + Send + Sync + 'static,
    {
        self.reload_inner(Some(Arc::new(callback)), true, None)
    }

    /// Switches to another plugin folder (for blue/green folders). Does not wait: a reload in
    /// progress goes on with the folder it started with; the next reload reads the new
    /// folder. Nothing is reloaded now. With
    /// [`reload_on_new_builds`](PluginManagerBuilder::reload_on_new_builds), the new folder is
    /// watched from now on instead of the old one.
    pub fn set_plugin_dir(&self, dir: impl Into<PathBuf>) {
        let dir = dir.into();
        if let Some(trigger) = self.inner.trigger.get() {
            trigger.rewatch(&dir);
        }
        *self.inner.dir.write().unwrap_or_else(|e| e.into_inner()) = dir;
    }

    /// Where the running reload is, if one runs.
    pub fn reload_progress(&self) -> Option<ReloadProgress> {
        lock(&self.inner.active).as_ref().map(|p| p.snapshot())
    }

    /// The process's resident memory now, against what it was just after the first load and
    /// the last reload (None before the first load, or where `/proc/self/status` cannot be
    /// read). Never waits. Steady growth per reload is a plugin keeping heap in a static (see
    /// [`MemoryReport`]).
    pub fn memory(&self) -> Option<MemoryReport> {
        self.inner.memory.now()
    }

    /// Number of reloads given up at their deadline so far (their threads may still run).
    pub fn abandoned_reload_count(&self) -> u64 {
        self.inner.abandoned.load(Ordering::Relaxed)
    }

    /// Frees now every replaced generation that waits for its free delay, and waits at most
    /// `timeout` for their `on_free`, and for what the reaper thread was handed by other
    /// threads: generations whose last [`Plugin`] handle went, libraries whose last `Value`
    /// or handle went (the reaper thread, not the caller dropping the last reference, runs
    /// `on_free` and closes libraries). Returns whether every replaced generation was freed
    /// and everything handed over done in time (generations still held by a [`Plugin`] handle
    /// are freed when the handle goes). For shutdown, and for tests that check what was freed.
    pub fn free_released_now(&self, timeout: Duration) -> bool {
        self.inner.reaper.hurry();
        let ticket = self.inner.reaper.issued();
        let deadline = std::time::Instant::now() + timeout;
        let freed = self.inner.reaper.wait_for(ticket, timeout);
        // Generations and libraries released on other threads, handed to the reaper.
        let handed_over =
            self.inner.reaper.wait_handed_over(deadline.saturating_duration_since(std::time::Instant::now()));
        if !handed_over {
            self.inner.graveyard.close_excess();
        }
        freed && handed_over
    }

    /// Reloads whenever the process receives SIGHUP or SIGUSR1 (for systemd's
    /// `ExecReload=kill -HUP $MAINPID`), and rolls back a generation on probation on SIGUSR2,
    /// until the returned guard is dropped.
    pub fn reload_on_signals(&self) -> std::io::Result<crate::SignalReloader> {
        crate::SignalReloader::start(self.clone())
    }

    /// Number of replaced libraries closed with `dlclose` and really unmapped so far (see
    /// [`retention`](crate::retention)).
    pub fn closed_library_count(&self) -> u64 {
        self.inner.graveyard.closed()
    }

    /// Number of replaced libraries that `dlclose` left mapped (a thread the plugin started
    /// still runs, or a thread-local destructor of it is pending): they hold their memory for
    /// the life of the process. Per plugin in [`PluginReport::still_mapped`].
    pub fn still_mapped_library_count(&self) -> u64 {
        self.inner.graveyard.still_mapped(None)
    }

    /// Number of released libraries that will never be closed (built `unloadable(false)`, or
    /// the manager was built with `never_unload()`), and of replaced generations leaked
    /// because the reaper was stuck in a plugin's `on_free`.
    pub fn unclosable_library_count(&self) -> u64 {
        self.inner.graveyard.leaked() + self.inner.reaper.leaked()
    }

    /// The manager's own work folder (inside the builder's
    /// [`work_root`](PluginManagerBuilder::work_root)), holding the private copies of
    /// loaded libraries: each mapped plugin library is a file here (useful to count them in
    /// `/proc/self/maps`). Removed when the manager is dropped.
    pub fn work_dir(&self) -> &Path {
        self.inner.work.path()
    }

    /// The generation serving now, if any.
    pub fn current(&self) -> Option<Arc<Generation>> {
        self.inner.current.load_full()
    }

    /// The live tasks spawned from plugin code, per plugin and generation, oldest first, as
    /// the census given to [`PluginManagerBuilder::task_census`] counts them; `None` without
    /// one.
    pub fn live_tasks(&self) -> Option<Vec<LiveTasks>> {
        self.inner.task_census.as_ref().map(|census| census())
    }

    /// The number of the generation serving now, 0 before the first load: one atomic read,
    /// so a host can notice a reload cheaply on a hot path.
    pub fn generation_number(&self) -> u64 {
        self.inner.published.load(Ordering::Acquire)
    }

    /// Number of successful reloads so far, not counting the first load. Never waits.
    pub fn reload_count(&self) -> u64 {
        self.inner.reloads.load(Ordering::Acquire).saturating_sub(1)
    }

    /// A typed handle on live function `name` that follows reloads: every call runs the
    /// function of the generation serving when the call starts (see [`HotFn`]). The
    /// signature `F` (such as `fn(i64, i64) -> i64`) is checked against the serving
    /// generation now, and every later reload that lacks the function or changes its
    /// signature is refused while the handle exists.
    ///
    /// ```no_run
    /// # fn f(manager: &hotswap_runtime::PluginManager) -> Result<(), hotswap_runtime::LiveError> {
    /// let add = manager.hot_fn::<fn(i64, i64) -> i64>("live_add")?;
    /// println!("{}", add.call((2, 3)));
    /// # Ok(()) }
    /// ```
    pub fn hot_fn<F: Copy + std::any::Any>(&self, name: &str) -> Result<HotFn<F>, crate::LiveError> {
        HotFn::new(Arc::clone(&self.inner), name)
    }

    /// A handle on plugin `name` of the current generation. The handle keeps that generation
    /// alive: it goes on calling the same code after a reload, until dropped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use hotswap_runtime::{PluginManager, args};
    ///
    /// let manager = PluginManager::builder("plugins").build()?;
    /// manager.load_plugins()?;
    /// let greeter = manager.find_plugin("greeter").ok_or("no plugin `greeter` is loaded")?;
    /// // Calls `invoke_func("greet", args)` in the plugin; the result is checked to be a `String`.
    /// let text: String = greeter.invoke("greet", args!["world".to_string()])?;
    /// println!("{text} (version {})", greeter.version());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_plugin(&self, name: &str) -> Option<Plugin> {
        let guard = self.inner.current.load();
        let generation = guard.as_ref()?;
        generation.find_plugin(name)
    }

    /// Calls `func` of plugin `plugin` in the generation serving now and takes a `T` out of
    /// the result: a call by name that follows reloads, without taking a [`Plugin`] handle
    /// (no reference count shared between threads is touched). The generation stays alive
    /// until the call returns.
    ///
    /// ```no_run
    /// # fn f(manager: &hotswap_runtime::PluginManager) -> Result<(), hotswap_runtime::InvokeError> {
    /// use hotswap_runtime::args;
    /// let sum: i64 = manager.invoke("greeter", "add", args![6_i64, 7_i64])?;
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn invoke<T: std::any::Any>(&self, plugin: &str, func: &str, args: Args) -> Result<T, InvokeError> {
        let guard = self.inner.current.load();
        let Some(generation) = guard.as_ref() else { return Err(InvokeError::NotLoaded) };
        let plugin = generation.loaded(plugin).ok_or_else(|| InvokeError::NoSuchPlugin(plugin.to_string()))?;
        generation::invoke_typed(plugin, func, args)
    }

    /// Calls `func` on every plugin of the current generation, dependencies first.
    pub fn invoke_each(&self, func: &str, args: impl Fn() -> Args) -> Vec<(String, Result<Value, InvokeError>)> {
        match self.current() {
            Some(generation) => generation.invoke_each(func, args),
            None => Vec::new(),
        }
    }

    /// Calls `func` on every plugin of the current generation, dependents first.
    pub fn invoke_each_backward(
        &self,
        func: &str,
        args: impl Fn() -> Args,
    ) -> Vec<(String, Result<Value, InvokeError>)> {
        match self.current() {
            Some(generation) => generation.invoke_each_backward(func, args),
            None => Vec::new(),
        }
    }
}
