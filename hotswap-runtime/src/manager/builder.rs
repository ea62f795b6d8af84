//! [`PluginManagerBuilder`]: every option of a manager, with its default.

use std::any::Any;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::generation::Generation;
use super::reaper::Reaper;
use super::workdir::{memory_backed_work_root, remove_stale_work_dirs};
use super::{ExtensionNewer, Inner, PluginManager, ReloadCallback};
use crate::HookError;
use crate::abi::PluginDescriptor;
use crate::retention::Graveyard;
use crate::vault::Extension;

/// The default [`PluginManagerBuilder::reload_deadline`].
pub const DEFAULT_RELOAD_DEADLINE: Duration = Duration::from_secs(30);

/// The default [`PluginManagerBuilder::max_library_size`]: 256 MiB.
pub const DEFAULT_MAX_LIBRARY_SIZE: u64 = 256 << 20;

/// Configures a [`PluginManager`].
///
/// ```no_run
/// use std::time::Duration;
/// let manager = hotswap_runtime::PluginManager::builder("plugins")
///     .free_delay(Duration::from_secs(5))
///     .build()
///     .expect("work folder");
/// let report = manager.load_plugins().expect("first generation");
/// println!("generation {}", report.generation);
/// ```
pub struct PluginManagerBuilder {
    pub(super) dir: PathBuf,
    free_delay: Duration,
    extension_newer: Option<ExtensionNewer>,
    work_root: Option<PathBuf>,
    whitelist: Option<BTreeSet<String>>,
    callbacks: Vec<ReloadCallback>,
    task_census: Option<super::TaskCensus>,
    reuse_unchanged: bool,
    retain_released: Option<usize>,
    strict_modes: bool,
    linked: Vec<&'static PluginDescriptor>,
    reload_deadline: Duration,
    reload_nice: i32,
    max_library_size: u64,
    require_manifest: bool,
    reload_on_new_builds: Option<Duration>,
    health: Option<(Duration, super::HealthCheck)>,
}

impl std::fmt::Debug for PluginManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManagerBuilder")
            .field("dir", &self.dir)
            .field("free_delay", &self.free_delay)
            .field("extension_newer", &self.extension_newer.is_some())
            .field("work_root", &self.work_root)
            .field("whitelist", &self.whitelist)
            .field("callbacks", &self.callbacks.len())
            .field("reuse_unchanged", &self.reuse_unchanged)
            .field("retain_released", &self.retain_released)
            .field("strict_modes", &self.strict_modes)
            .field("static_plugins", &self.linked.len())
            .field("reload_deadline", &self.reload_deadline)
            .field("reload_nice", &self.reload_nice)
            .field("max_library_size", &self.max_library_size)
            .field("require_manifest", &self.require_manifest)
            .field("reload_on_new_builds", &self.reload_on_new_builds)
            .field("health_check", &self.health.as_ref().map(|(interval, _)| interval))
            .finish()
    }
}

impl PluginManagerBuilder {
    pub(super) fn new(dir: PathBuf) -> Self {
        PluginManagerBuilder {
            dir,
            free_delay: Duration::from_secs(5),
            extension_newer: None,
            work_root: None,
            whitelist: None,
            callbacks: Vec::new(),
            task_census: None,
            reuse_unchanged: true,
            retain_released: Some(2),
            strict_modes: true,
            linked: Vec::new(),
            reload_deadline: DEFAULT_RELOAD_DEADLINE,
            reload_nice: 0,
            max_library_size: DEFAULT_MAX_LIBRARY_SIZE,
            require_manifest: false,
            reload_on_new_builds: None,
            health: None,
        }
    }

    /// Plugins linked into the host (`cargo xtask build --static-linking`), usually the
    /// `static_plugins()` that [`static_plugins!`](crate::static_plugins) defines. When the
    /// list is not empty the manager loads these instead of the folder's libraries, once:
    /// a reload is refused with a clear reason (no new code can be loaded into a linked
    /// binary, and linked plugins share their statics across generations), and the running
    /// plugins keep serving. When it is empty (a normal build), nothing changes.
    pub fn static_plugins(mut self, plugins: Vec<&'static PluginDescriptor>) -> Self {
        self.linked = plugins;
        self
    }

    /// Whether to refuse a plugin folder or file that is writable by group or others, or
    /// owned by a user other than this process's user or root, and likewise any folder above
    /// the plugin folder up to `/` (default true, like sshd's `StrictModes`): whoever can
    /// write a plugin can run code as this host. A root-owned folder with the sticky bit
    /// (`/tmp`) is accepted above the plugin folder.
    pub fn strict_modes(mut self, strict: bool) -> Self {
        self.strict_modes = strict;
        self
    }

    /// How many released libraries (nothing refers to them any more) stay mapped before the
    /// oldest is closed with `dlclose`; this bounds memory over many reloads. Default 2. See
    /// [`retention`](crate::retention) for what makes a plugin unsafe to unload.
    pub fn retain_released_libraries(mut self, count: usize) -> Self {
        self.retain_released = Some(count);
        self
    }

    /// Never close a library: every reload then costs the mapped size of the libraries it
    /// loaded, for the life of the process. For plugins that cannot meet the unloading rules.
    pub fn never_unload(mut self) -> Self {
        self.retain_released = None;
        self
    }

    /// Whether a reload keeps serving the current instance of a plugin whose file is
    /// byte-identical (sha256) to the serving one and whose imports are all kept too (default
    /// true). Kept instances run no hook again and keep the vault they were initialised
    /// with; the report marks them `unchanged`. With `false`, every reload loads every
    /// reloadable plugin afresh.
    pub fn reuse_unchanged(mut self, reuse: bool) -> Self {
        self.reuse_unchanged = reuse;
        self
    }

    /// How long a replaced generation stays alive before its plugins get `on_free` (they get
    /// it later still if a [`Plugin`](crate::Plugin) handle keeps the generation alive).
    /// Default: 5 s. `on_free` runs on the manager's reaper thread, never under the reload
    /// lock; with a zero delay, the reload waits until it ran, unless the reaper has been in
    /// one `on_free` for 1 s: then it answers without it (one warning per stuck `on_free`),
    /// and later reloads do not wait behind it.
    /// At most 16 replaced generations wait; beyond that the oldest is freed early.
    pub fn free_delay(mut self, delay: Duration) -> Self {
        self.free_delay = delay;
        self
    }

    /// The longest a load or reload may take (default 30 s). A reload still running then,
    /// for instance in a hook that never returns, is reported failed
    /// ([`LoadErrorKind::TimedOut`](crate::LoadErrorKind), naming the stage and plugin it is
    /// stuck in); the serving generation keeps serving, later reloads work, and the stuck
    /// thread is abandoned: what it builds is discarded if it ever returns.
    pub fn reload_deadline(mut self, deadline: Duration) -> Self {
        self.reload_deadline = deadline;
        self
    }

    /// How much to raise the nice value (0 to 19; default 0: the caller's priority) of the
    /// threads that do a reload's work (reading, checking and opening the new libraries,
    /// running their hooks) and free replaced generations (`on_free`, `dlclose`): each is a
    /// thread of its own, so nothing else is affected. A higher value lets the threads
    /// that serve keep their CPU while a reload runs, at the price of a slower reload on a
    /// busy machine: on two cores saturated by an axum service, nice 19 took the p99 latency
    /// of requests started during `reload()` from 1.9–2.7 ms to 0.50–0.78 ms, and the
    /// reload's own median from 5.6 to 11.7 ms (guide, section 10). Values outside 0..=19
    /// are clamped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f() -> std::io::Result<()> {
    /// let manager = hotswap_runtime::PluginManager::builder("plugins").reload_nice(19).build()?;
    /// # Ok(()) }
    /// ```
    pub fn reload_nice(mut self, nice: i32) -> Self {
        self.reload_nice = nice.clamp(0, 19);
        self
    }

    /// The largest plugin library a reload reads (default 256 MiB); a larger file is
    /// refused at stage `copy` before it is read.
    pub fn max_library_size(mut self, bytes: u64) -> Self {
        self.max_library_size = bytes;
        self
    }

    /// Whether a library must have its build manifest (`<plugin>@<version>.json`, written by
    /// `cargo hotswap build`) beside it. Default false: a library without one loads, with a
    /// warning that its sha256 was not checked against the build's. With true, it is refused
    /// at stage `copy`. A manifest that is there is always checked: it must be a regular file
    /// of at most 64 KiB naming this plugin, this library file, its ABI fingerprint and sha256.
    pub fn require_manifest(mut self, require: bool) -> Self {
        self.require_manifest = require;
        self
    }

    /// Reloads by itself whenever a new plugin library lands in the plugin folder: a `*.so`
    /// renamed into it (as `cargo xtask build` and `mv` install one) or written in it (`cp`),
    /// once the folder has been quiet for `debounce` (so a build installing several
    /// libraries is one reload). Watched with inotify from [`build`](Self::build) on (an
    /// error there if the folder cannot be watched) until the manager is dropped; the watch
    /// never keeps the manager alive. The reload is a [`PluginManager::try_reload`]: it
    /// never waits behind a running reload, and is tried again shortly after if one was
    /// running. Its outcome is logged (`tracing`) like any reload's.
    pub fn reload_on_new_builds(mut self, debounce: Duration) -> Self {
        self.reload_on_new_builds = Some(debounce);
        self
    }

    /// A constructor for the host's extension object; each generation gets a fresh one in its
    /// [`Vault`](crate::Vault). A plugin carried over into a new generation (`unchanged` or
    /// `not reloadable` in the report) runs no hook again and keeps the vault, and so the
    /// extension, it was initialised with; build with `reuse_unchanged(false)` if every
    /// plugin must see each new extension.
    pub fn extension_newer<T, F>(mut self, newer: F) -> Self
    where
        T: Any + Send + Sync,
        F: Fn() -> T + Send + Sync + 'static,
    {
        self.extension_newer = Some(Arc::new(move || Box::new(newer()) as Extension));
        self
    }

    /// Loads only plugins of these names; files of other plugins in the folder are ignored
    /// and listed as such in the [`ReloadReport`](crate::ReloadReport).
    pub fn whitelist<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.whitelist = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a callback run after every new generation is fully loaded (after `on_init`) and
    /// before it is published. See [`ReloadCallback`].
    pub fn reload_callback<F>(mut self, callback: F) -> Self
    where
        F: Fn(&Arc<Generation>, Option<&Arc<Generation>>) -> Result<(), HookError> + Send + Sync + 'static,
    {
        self.callbacks.push(Arc::new(callback));
        self
    }

    /// The root folder in which the manager makes its work folder: a new `hotswap-<pid>-*`
    /// folder inside `root`, for the private copies of loaded libraries, removed when the
    /// manager is dropped ([`PluginManager::work_dir`] returns it). The root is created if
    /// missing, and work folders that dead processes left in it are removed. The default is a
    /// memory-backed folder that allows executable mappings (`$XDG_RUNTIME_DIR`, else
    /// `/dev/shm`, if mounted without `noexec`), else the temporary folder: every load writes
    /// a copy of the library, which need not touch a disk.
    pub fn work_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.work_root = Some(root.into());
        self
    }

    /// The health check of reloads on probation
    /// ([`PluginManager::reload_on_probation`]): called with the generation on probation every
    /// `interval` and once at the end of the period, on the probation's own thread (never on a
    /// caller's). An error or a panic rolls the generation back at once, and the reason is
    /// logged and kept for `status` ([`PluginManager::last_probation`]). Without one, a
    /// generation on probation is judged by its panic count only.
    pub fn health_check<F>(mut self, interval: Duration, check: F) -> Self
    where
        F: Fn(&Arc<Generation>) -> Result<(), HookError> + Send + Sync + 'static,
    {
        self.health = Some((interval.max(Duration::from_millis(1)), Arc::new(check)));
        self
    }

    /// Counts the tasks running on plugin code (the shared route, guide section 10), for
    /// [`PluginManager::live_tasks`] and the control socket's status and reload answers
    /// (`tasks`); `hotswap_tokio::PluginTasks::census` is one.
    pub fn task_census<F>(mut self, census: F) -> Self
    where
        F: Fn() -> Vec<super::LiveTasks> + Send + Sync + 'static,
    {
        self.task_census = Some(Arc::new(census));
        self
    }

    /// Creates the manager. Nothing is loaded until [`PluginManager::load_plugins`].
    pub fn build(self) -> std::io::Result<PluginManager> {
        let root = match &self.work_root {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                dir.clone()
            }
            None => memory_backed_work_root().unwrap_or_else(std::env::temp_dir),
        };
        remove_stale_work_dirs(&root);
        // The pid in the name lets a later manager remove the folder if this process dies
        // without dropping the manager (killed): in a memory-backed folder it would hold RAM.
        let work = tempfile::Builder::new().prefix(&format!("hotswap-{}-", std::process::id())).tempdir_in(&root)?;
        let graveyard = Arc::new(Graveyard::new(self.retain_released));
        let manager = PluginManager {
            inner: Arc::new(Inner {
                dir: RwLock::new(self.dir),
                free_delay: self.free_delay,
                extension_newer: self.extension_newer,
                whitelist: self.whitelist,
                callbacks: self.callbacks,
                added_callbacks: Default::default(),
                reuse_unchanged: self.reuse_unchanged,
                strict_modes: self.strict_modes,
                linked: self.linked,
                reload_deadline: self.reload_deadline,
                reload_nice: self.reload_nice,
                max_library_size: self.max_library_size,
                require_manifest: self.require_manifest,
                reaper: Reaper::new(&graveyard, self.reload_nice),
                graveyard,
                current: ArcSwapOption::empty(),
                published: AtomicU64::new(0),
                reloads: AtomicU64::new(0),
                next_generation: AtomicU64::new(1),
                copies: AtomicU64::new(0),
                abandoned: AtomicU64::new(0),
                memory: Default::default(),
                reload_lock: Mutex::new(()),
                active: Mutex::new(None),
                threads: Mutex::new(Vec::new()),
                hot_contracts: Mutex::new(Vec::new()),
                trigger: std::sync::OnceLock::new(),
                probation: super::probation::State::new(self.health),
                task_census: self.task_census,
                work,
            }),
        };
        if let Some(debounce) = self.reload_on_new_builds {
            let dir = manager.plugin_dir();
            let trigger = super::trigger::Trigger::start(Arc::downgrade(&manager.inner), &dir, debounce)?;
            let _ = manager.inner.trigger.set(trigger);
        }
        Ok(manager)
    }
}
