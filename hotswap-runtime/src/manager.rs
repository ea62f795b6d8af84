//! Generations of plugins and the manager that swaps them.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;

use crate::abi::{HookFailure, PluginDescriptor};
use crate::error::{InvokeError, LoadError, Stage};
use crate::inspect::sha256_hex;
use crate::live::{RegisteredFunc, RegisteredType};
use crate::loader::LoadedPlugin;
use crate::retention::Graveyard;
use crate::value::{Args, Value};
use crate::vault::{Extension, Vault};
use crate::{HookError, LoadContext};

type ExtensionNewer = Arc<dyn Fn() -> Extension + Send + Sync>;

/// A reload callback: receives the new generation, fully loaded but not yet published, and
/// the generation serving now (absent at the first load). An error or a panic fails the
/// reload: the new generation is freed and the old one keeps serving.
pub type ReloadCallback =
    Arc<dyn Fn(&Arc<Generation>, Option<&Arc<Generation>>) -> Result<(), HookError> + Send + Sync>;

/// How a plugin of a new generation came to be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Loaded from its file.
    Loaded,
    /// The serving instance, carried over: its file is byte-identical (sha256) and nothing it
    /// imports changed.
    Unchanged,
    /// The serving instance, carried over because its `reloadable` hook said no.
    NotReloadable,
    /// Linked into the host (static linking).
    Linked,
}

impl Origin {
    /// Whether the plugin's hooks run for this generation.
    fn is_fresh(self) -> bool {
        matches!(self, Origin::Loaded | Origin::Linked)
    }

    fn note(self) -> &'static str {
        match self {
            Origin::Loaded => "loaded",
            Origin::Unchanged => "unchanged",
            Origin::NotReloadable => "not reloadable",
            Origin::Linked => "static (linked into the host)",
        }
    }
}

/// Removes `hotswap-<pid>-*` work folders in `root` that belong to us and to a process that
/// no longer exists. Best effort: anything unexpected is left alone.
fn remove_stale_work_dirs(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(root) else { return };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hotswap-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if !meta.is_dir() || meta.uid() != uid || pid <= 0 {
            continue;
        }
        // SAFETY: signal 0 only checks that the process exists; no signal is sent.
        let alive = unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            tracing::info!(folder = %entry.path().display(), "removing the work folder of a host that is gone");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A tmpfs folder this user can write and map code from, for the copies of loaded libraries.
fn memory_backed_work_root() -> Option<PathBuf> {
    let candidates = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).into_iter().chain([PathBuf::from("/dev/shm")]);
    candidates.into_iter().find(|dir| is_exec_tmpfs(dir))
}

fn is_exec_tmpfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: both structs are plain data that the calls fill in; the path is NUL-terminated.
    let (fs, vfs) = unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        let mut vfs: libc::statvfs = std::mem::zeroed();
        if libc::statfs(c_path.as_ptr(), &mut fs) != 0 || libc::statvfs(c_path.as_ptr(), &mut vfs) != 0 {
            return false;
        }
        (fs, vfs)
    };
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    // SAFETY: access has no preconditions beyond a valid NUL-terminated path.
    let writable = unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } == 0;
    fs.f_type as i64 == TMPFS_MAGIC && vfs.f_flag & libc::ST_NOEXEC == 0 && writable
}

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
    dir: PathBuf,
    free_delay: Duration,
    extension_newer: Option<ExtensionNewer>,
    work_dir: Option<PathBuf>,
    whitelist: Option<BTreeSet<String>>,
    callbacks: Vec<ReloadCallback>,
    reuse_unchanged: bool,
    retain_released: Option<usize>,
    strict_modes: bool,
    linked: Vec<&'static PluginDescriptor>,
}

impl PluginManagerBuilder {
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
    /// owned by a user other than this process's user or root (default true, like sshd's
    /// `StrictModes`): whoever can write a plugin can run code as this host.
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
    /// it later still if a [`Plugin`] handle keeps the generation alive). Default: 5 s.
    pub fn free_delay(mut self, delay: Duration) -> Self {
        self.free_delay = delay;
        self
    }

    /// A constructor for the host's extension object; each generation gets a fresh one in its
    /// [`Vault`]. A plugin carried over into a new generation (`unchanged` or `not
    /// reloadable` in the report) runs no hook again and keeps the vault, and so the
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
    /// and listed as such in the [`ReloadReport`].
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

    /// Where private copies of loaded libraries go, inside a new folder removed when the
    /// manager is dropped. The default is a memory-backed folder that allows executable
    /// mappings (`$XDG_RUNTIME_DIR`, else `/dev/shm`, if mounted without `noexec`), else the
    /// temporary folder: every load writes a copy of the library, which need not touch a disk.
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// Creates the manager. Nothing is loaded until [`PluginManager::load_plugins`].
    pub fn build(self) -> std::io::Result<PluginManager> {
        let root = match &self.work_dir {
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
        Ok(PluginManager {
            inner: Arc::new(Inner {
                dir: RwLock::new(self.dir),
                free_delay: self.free_delay,
                extension_newer: self.extension_newer,
                whitelist: self.whitelist,
                callbacks: self.callbacks,
                reuse_unchanged: self.reuse_unchanged,
                strict_modes: self.strict_modes,
                linked: self.linked,
                graveyard: Arc::new(Graveyard::new(self.retain_released)),
                current: ArcSwapOption::empty(),
                reload_state: Mutex::new(ReloadState { next_generation: 1, copies: 0, reloads: 0 }),
                work,
            }),
        })
    }
}

struct ReloadState {
    next_generation: u64,
    copies: u64,
    reloads: u64,
}

struct Inner {
    dir: RwLock<PathBuf>,
    free_delay: Duration,
    extension_newer: Option<ExtensionNewer>,
    whitelist: Option<BTreeSet<String>>,
    callbacks: Vec<ReloadCallback>,
    reuse_unchanged: bool,
    strict_modes: bool,
    linked: Vec<&'static PluginDescriptor>,
    graveyard: Arc<Graveyard>,
    current: ArcSwapOption<Generation>,
    /// Serialises loads and reloads. Never taken by calls into plugins.
    reload_state: Mutex<ReloadState>,
    work: tempfile::TempDir,
}

/// Loads a folder of plugins as one generation and swaps in new generations atomically.
///
/// Cheap to clone; clones share the same state. Calls never wait for a reload: they run on
/// the generation that was current when they looked it up.
#[derive(Clone)]
pub struct PluginManager {
    inner: Arc<Inner>,
}

/// What one plugin of a load or reload was.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PluginReport {
    /// Plugin name.
    pub name: String,
    /// Version stamp.
    pub version: String,
    /// File it was loaded from.
    pub file: PathBuf,
    /// SHA-256 of that file.
    pub sha256: String,
    /// `loaded`, `unchanged` (the serving instance was kept: same sha256, no import changed)
    /// or `not reloadable` (the serving instance was kept: its `reloadable` hook said no).
    pub note: String,
    /// Time each of this plugin's stages took, in milliseconds (empty for a kept plugin).
    pub stage_ms: Vec<(Stage, f64)>,
}

/// A library file a reload passed over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IgnoredFile {
    /// The plugin name its file name gives.
    pub name: String,
    /// The file.
    pub file: PathBuf,
    /// Why it was not loaded.
    pub note: String,
}

/// What a successful load or reload did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReloadReport {
    /// Number of the generation now serving.
    pub generation: u64,
    /// Its plugins, in load order (dependencies first).
    pub plugins: Vec<PluginReport>,
    /// Library files in the folder that were not loaded, and why (`not in the whitelist`).
    pub ignored: Vec<IgnoredFile>,
    /// Time each stage took, in milliseconds, in the order they ran.
    pub stage_ms: Vec<(Stage, f64)>,
    /// Total time, in milliseconds.
    pub total_ms: f64,
}

impl PluginManager {
    /// Starts configuring a manager for the plugins in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> PluginManagerBuilder {
        PluginManagerBuilder {
            dir: dir.into(),
            free_delay: Duration::from_secs(5),
            extension_newer: None,
            work_dir: None,
            whitelist: None,
            callbacks: Vec::new(),
            reuse_unchanged: true,
            retain_released: Some(2),
            strict_modes: true,
            linked: Vec::new(),
        }
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
    pub fn reload(&self) -> Result<ReloadReport, LoadError> {
        self.reload_inner(None)
    }

    /// [`PluginManager::reload`] with one extra callback for this reload only, run after the
    /// builder's callbacks.
    pub fn reload_with<F>(&self, callback: F) -> Result<ReloadReport, LoadError>
    where
        F: Fn(&Arc<Generation>, Option<&Arc<Generation>>) -> Result<(), HookError> + Send + Sync + 'static,
    {
        self.reload_inner(Some(Arc::new(callback)))
    }

    /// Switches to another plugin folder (for blue/green folders). Waits for a reload in
    /// progress to finish; the next reload reads the new folder. Nothing is reloaded now.
    pub fn set_plugin_dir(&self, dir: impl Into<PathBuf>) {
        let _state = self.inner.reload_state.lock().unwrap_or_else(|e| e.into_inner());
        *self.inner.dir.write().unwrap_or_else(|e| e.into_inner()) = dir.into();
    }

    fn reload_inner(&self, extra: Option<ReloadCallback>) -> Result<ReloadReport, LoadError> {
        let mut state = self.inner.reload_state.lock().unwrap_or_else(|e| e.into_inner());
        if !self.inner.linked.is_empty() && self.current().is_some() {
            // Linked plugins share one copy of their statics with every generation, so
            // running their lifecycle again would have the old generation's on_free undo the
            // new one's on_init. Refuse instead: the running generation keeps serving.
            let error = LoadError {
                plugin: None,
                file: PathBuf::from("<plugins linked into the host>"),
                stage: Stage::Scan,
                reason: "this host was built with --static-linking: its plugins are linked in, so no new code can be loaded; rebuild and restart the host (the running plugins keep serving)".into(),
            };
            tracing::warn!("{error}");
            return Err(error);
        }
        let started = Instant::now();
        let dir = self.plugin_dir();
        let result = self.build_generation(&dir, &mut state, extra);
        match result {
            Ok((generation, mut report)) => {
                let old = self.inner.current.swap(Some(generation));
                state.next_generation += 1;
                state.reloads += 1;
                report.total_ms = ms(started.elapsed());
                for p in &report.plugins {
                    tracing::info!(generation = report.generation, plugin = %p.name, version = %p.version, file = %p.file.display(), "{}", p.note);
                }
                for f in &report.ignored {
                    tracing::info!(generation = report.generation, plugin = %f.name, file = %f.file.display(), "ignored: {}", f.note);
                }
                tracing::info!(
                    generation = report.generation,
                    plugins = %report.plugins.iter().map(|p| format!("{}@{}", p.name, p.version)).collect::<Vec<_>>().join(", "),
                    total_ms = report.total_ms,
                    "generation published"
                );
                if let Some(old) = old {
                    self.retire(old);
                }
                Ok(report)
            }
            Err(error) => {
                tracing::error!("reload refused, the current generation keeps serving: {error}");
                Err(error)
            }
        }
    }

    /// Reloads whenever the process receives SIGHUP or SIGUSR1 (for systemd's
    /// `ExecReload=kill -HUP $MAINPID`) until the returned guard is dropped.
    pub fn reload_on_signals(&self) -> std::io::Result<crate::SignalReloader> {
        crate::SignalReloader::start(self.clone())
    }

    /// Number of replaced libraries closed so far (see [`retention`](crate::retention)).
    pub fn closed_library_count(&self) -> u64 {
        self.inner.graveyard.closed()
    }

    /// Number of released libraries that will never be closed (built `unloadable(false)`, or
    /// the manager was built with `never_unload()`).
    pub fn unclosable_library_count(&self) -> u64 {
        self.inner.graveyard.leaked()
    }

    /// The folder holding the private copies of loaded libraries: each mapped plugin library
    /// is a file here (useful to count them in `/proc/self/maps`).
    pub fn work_dir(&self) -> &Path {
        self.inner.work.path()
    }

    /// The generation serving now, if any.
    pub fn current(&self) -> Option<Arc<Generation>> {
        self.inner.current.load_full()
    }

    /// Number of successful reloads so far, not counting the first load.
    pub fn reload_count(&self) -> u64 {
        self.inner.reload_state.lock().unwrap_or_else(|e| e.into_inner()).reloads.saturating_sub(1)
    }

    /// A handle on plugin `name` of the current generation. The handle keeps that generation
    /// alive: it goes on calling the same code after a reload, until dropped.
    pub fn find_plugin(&self, name: &str) -> Option<Plugin> {
        let guard = self.inner.current.load();
        let generation = guard.as_ref()?;
        let index = *generation.index.get(name)?;
        Some(Plugin { generation: Arc::clone(generation), index })
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

    fn retire(&self, old: Arc<Generation>) {
        let delay = self.inner.free_delay;
        if delay.is_zero() {
            drop(old);
            return;
        }
        let spawned = std::thread::Builder::new().name("hotswap-free".into()).spawn(move || {
            std::thread::sleep(delay);
            drop(old);
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the free-delay thread ({e}); freeing the old generation now");
        }
    }

    fn build_generation(
        &self,
        dir: &Path,
        state: &mut ReloadState,
        extra: Option<ReloadCallback>,
    ) -> Result<(Arc<Generation>, ReloadReport), LoadError> {
        let number = state.next_generation;
        let mut stages = Vec::new();
        let mut timer = Instant::now();
        let mut lap = |stage: Stage, stages: &mut Vec<(Stage, f64)>| {
            stages.push((stage, ms(timer.elapsed())));
            timer = Instant::now();
        };
        let old = self.current();
        let mut per_plugin: HashMap<String, Vec<(Stage, f64)>> = HashMap::new();
        let mut time = |name: &str, stage: Stage, since: Instant| {
            per_plugin.entry(name.to_string()).or_default().push((stage, ms(since.elapsed())));
        };
        let (mut plugins, ignored) = if !self.inner.linked.is_empty() {
            let mut plugins: BTreeMap<String, (Arc<LoadedPlugin>, Origin)> = BTreeMap::new();
            for descriptor in &self.inner.linked {
                let plugin = LoadedPlugin::linked(descriptor, number, &self.inner.graveyard)?;
                plugins.insert(plugin.name.clone(), (Arc::new(plugin), Origin::Linked));
            }
            (plugins, Vec::new())
        } else {
            let (files, ignored) = scan(dir, self.inner.whitelist.as_ref())?;
            if self.inner.strict_modes {
                check_modes(dir, None)?;
                for (name, file) in &files {
                    check_modes(file, Some(name))?;
                }
            }
            lap(Stage::Scan, &mut stages);

            // Decide, per plugin, whether to carry the serving instance over or load its file.
            let serving = |name: &str| old.as_ref().and_then(|g| g.loaded(name));
            let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
            let mut contents: HashMap<String, (Vec<u8>, String)> = HashMap::new();
            for (name, file) in &files {
                if serving(name).is_some_and(|p| !p.reloadable) {
                    origins.insert(name.clone(), Origin::NotReloadable);
                    continue;
                }
                let bytes = std::fs::read(file).map_err(|e| LoadError {
                    plugin: Some(name.clone()),
                    file: file.clone(),
                    stage: Stage::Copy,
                    reason: format!("cannot read: {e}"),
                })?;
                let sha256 = sha256_hex(&bytes);
                let same = self.inner.reuse_unchanged && serving(name).is_some_and(|p| p.sha256 == sha256);
                origins.insert(name.clone(), if same { Origin::Unchanged } else { Origin::Loaded });
                contents.insert(name.clone(), (bytes, sha256));
            }
            // Unchanged only if everything it imports is carried over too; repeat until stable,
            // since demoting one plugin can demote its importers.
            loop {
                let demote: Vec<String> = origins
                    .iter()
                    .filter(|(name, origin)| {
                        **origin == Origin::Unchanged
                            && serving(name).is_some_and(|p| {
                                p.imports
                                    .iter()
                                    .any(|i| !matches!(origins.get(i), Some(Origin::Unchanged | Origin::NotReloadable)))
                            })
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                if demote.is_empty() {
                    break;
                }
                for name in demote {
                    origins.insert(name, Origin::Loaded);
                }
            }
            let mut plugins: BTreeMap<String, (Arc<LoadedPlugin>, Origin)> = BTreeMap::new();
            for (name, origin) in &origins {
                if *origin != Origin::Loaded {
                    let kept = serving(name).expect("only serving plugins are carried over");
                    plugins.insert(name.clone(), (Arc::clone(kept), *origin));
                    continue;
                }
                let (bytes, sha256) = contents.remove(name).expect("every loaded plugin's file was read");
                state.copies += 1;
                let copy = self.inner.work.path().join(format!(
                    "g{number}-{}-{name}.{}",
                    state.copies,
                    std::env::consts::DLL_EXTENSION
                ));
                let t = Instant::now();
                let plugin =
                    LoadedPlugin::open(&files[name], name, bytes, sha256, &copy, number, &self.inner.graveyard)?;
                time(name, Stage::Open, t);
                plugins.insert(name.clone(), (Arc::new(plugin), Origin::Loaded));
            }
            (plugins, ignored)
        };
        lap(Stage::Open, &mut stages);
        for (plugin, origin) in plugins.values_mut() {
            if !origin.is_fresh() {
                continue;
            }
            let p = Arc::get_mut(plugin).expect("a fresh plugin has one owner");
            let t = Instant::now();
            p.reloadable = (p.hooks.reloadable)().map_err(|f| p.hook_error(Stage::Reloadable, f))?;
            time(&p.name, Stage::Reloadable, t);
            let t = Instant::now();
            p.export = (p.hooks.export)().map_err(|f| p.hook_error(Stage::Export, f))?.map(Arc::new);
            time(&p.name, Stage::Export, t);
            let t = Instant::now();
            p.imports = (p.hooks.import)().map_err(|f| p.hook_error(Stage::Import, f))?;
            time(&p.name, Stage::Import, t);
        }
        lap(Stage::Import, &mut stages);
        let order = dependency_order(dir, &plugins)?;
        for (plugin, _) in plugins.values().filter(|(p, _)| !p.reloadable) {
            if let Some(import) = plugin.imports.iter().find(|i| plugins[*i].0.reloadable) {
                return Err(LoadError {
                    plugin: Some(plugin.name.clone()),
                    file: plugin.file.clone(),
                    stage: Stage::Dependencies,
                    reason: format!(
                        "plugin `{}` is not reloadable but imports `{import}`, which is: a kept plugin would go on using an old generation's export; make `{import}` non-reloadable too, or `{}` reloadable",
                        plugin.name, plugin.name
                    ),
                });
            }
        }
        lap(Stage::Dependencies, &mut stages);
        let ordered: Vec<(Arc<LoadedPlugin>, Origin)> =
            order.iter().map(|name| plugins.remove(name).expect("ordered names come from the map")).collect();

        // Build the generation now so that a failure below drops it, and with it runs
        // `on_free` (in reverse order) for every plugin whose `on_load` succeeded.
        let index = order.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        let origins: Vec<Origin> = ordered.iter().map(|(_, o)| *o).collect();
        let fresh: Vec<bool> = origins.iter().map(|o| o.is_fresh()).collect();
        let mut generation = Generation {
            number,
            plugins: ordered.into_iter().map(|(p, _)| p).collect(),
            index,
            vault: Arc::new(Vault::new(number, None, HashMap::new(), HashMap::new(), HashMap::new(), Vec::new())),
            loaded_at: SystemTime::now(),
        };
        for (plugin, _) in generation.plugins.iter().zip(&fresh).filter(|(_, f)| **f) {
            let ctx = LoadContext {
                plugin: plugin.name.clone(),
                version: plugin.version.clone(),
                generation: number,
                file: plugin.file.clone(),
            };
            let t = Instant::now();
            (plugin.hooks.on_load)(&ctx).map_err(|f| plugin.hook_error(Stage::OnLoad, f))?;
            plugin.on_load_done.store(true, Ordering::Release);
            time(&plugin.name, Stage::OnLoad, t);
        }
        lap(Stage::OnLoad, &mut stages);
        let extension = match &self.inner.extension_newer {
            Some(newer) => {
                let newer = Arc::clone(newer);
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || newer()));
                Some(made.map_err(|p| LoadError {
                    plugin: None,
                    file: dir.to_path_buf(),
                    stage: Stage::VaultSetup,
                    reason: format!(
                        "the extension constructor panicked: {}",
                        crate::private::panic_message(p.as_ref())
                    ),
                })?)
            }
            None => None,
        };
        let exports = generation
            .plugins
            .iter()
            .filter_map(|p| p.export.as_ref().map(|e| (p.name.clone(), Arc::clone(e))))
            .collect();
        let (live_funcs, live_types) = collect_live(&generation.plugins)?;
        let libraries = generation.plugins.iter().map(|p| p.mapping.clone() as Arc<dyn Any + Send + Sync>).collect();
        generation.vault = Arc::new(Vault::new(number, extension, exports, live_funcs, live_types, libraries));
        lap(Stage::VaultSetup, &mut stages);
        for (plugin, _) in generation.plugins.iter().zip(&fresh).filter(|(_, f)| **f) {
            let t = Instant::now();
            (plugin.hooks.on_init)(&generation.vault).map_err(|f| plugin.hook_error(Stage::OnInit, f))?;
            time(&plugin.name, Stage::OnInit, t);
        }
        lap(Stage::OnInit, &mut stages);

        let generation = Arc::new(generation);
        for callback in self.inner.callbacks.iter().chain(extra.as_ref()) {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&generation, old.as_ref())));
            let reason = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("a reload callback returned an error: {e}"),
                Err(p) => format!("a reload callback panicked: {}", crate::private::panic_message(p.as_ref())),
            };
            return Err(LoadError { plugin: None, file: dir.to_path_buf(), stage: Stage::Callback, reason });
        }
        lap(Stage::Callback, &mut stages);

        let report = ReloadReport {
            generation: number,
            plugins: generation
                .plugins
                .iter()
                .zip(&origins)
                .map(|(p, origin)| PluginReport {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    file: p.file.clone(),
                    sha256: p.sha256.clone(),
                    note: origin.note().to_string(),
                    stage_ms: per_plugin.remove(&p.name).unwrap_or_default(),
                })
                .collect(),
            ignored,
            stage_ms: stages,
            total_ms: 0.0,
        };
        Ok((generation, report))
    }
}

/// Gathers every plugin's live functions and types; a name registered by two plugins is an
/// error naming both.
fn collect_live(
    plugins: &[Arc<LoadedPlugin>],
) -> Result<(HashMap<String, RegisteredFunc>, HashMap<String, RegisteredType>), LoadError> {
    let mut funcs: HashMap<String, RegisteredFunc> = HashMap::new();
    let mut types: HashMap<String, RegisteredType> = HashMap::new();
    for plugin in plugins {
        let registry = (plugin.hooks.live_items)(crate::private::rethrow_in_host).map_err(|f| plugin.hook_error(Stage::VaultSetup, f))?;
        let clash = |kind: &str, name: &str, other: &str| LoadError {
            plugin: Some(plugin.name.clone()),
            file: plugin.file.clone(),
            stage: Stage::VaultSetup,
            reason: format!("live {kind} `{name}` is defined by both plugin `{other}` and plugin `{}`", plugin.name),
        };
        for entry in registry.funcs {
            if let Some(other) = funcs.get(entry.name) {
                return Err(clash("function", entry.name, &other.plugin));
            }
            let library: Arc<dyn Any + Send + Sync> = plugin.mapping.clone();
            funcs.insert(entry.name.to_string(), RegisteredFunc { entry, plugin: plugin.name.clone(), library });
        }
        for entry in registry.types {
            if let Some(other) = types.get(entry.name) {
                return Err(clash("type", entry.name, &other.plugin));
            }
            let library: Arc<dyn Any + Send + Sync> = plugin.mapping.clone();
            types.insert(
                entry.name.to_string(),
                RegisteredType { entry, plugin: plugin.name.clone(), version: plugin.version.clone(), library },
            );
        }
    }
    Ok((funcs, types))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The newest library file of each plugin name in `dir`.
///
/// A file `<plugin>@<version>.so` belongs to `<plugin>`; any other `<stem>.so` to `<stem>`
/// (without a leading `lib`). Hidden files (a leading `.`) are skipped: that is where
/// `cargo xtask build` writes before its atomic rename.
fn scan(
    dir: &Path,
    whitelist: Option<&BTreeSet<String>>,
) -> Result<(BTreeMap<String, PathBuf>, Vec<IgnoredFile>), LoadError> {
    let fail = |reason: String| LoadError { plugin: None, file: dir.to_path_buf(), stage: Stage::Scan, reason };
    let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("cannot read the plugin folder: {e}")))?;
    let mut newest: BTreeMap<String, (SystemTime, PathBuf)> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| fail(format!("cannot read the plugin folder: {e}")))?;
        let path = entry.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file_name.starts_with('.')
            || path.extension().and_then(|e| e.to_str()) != Some(std::env::consts::DLL_EXTENSION)
        {
            continue;
        }
        let metadata = match entry.metadata() {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let name = match stem.split_once('@') {
            Some((name, _)) => name.to_string(),
            None => stem.strip_prefix("lib").unwrap_or(stem).to_string(),
        };
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let newer = match newest.get(&name) {
            Some((t, p)) => (modified, &path) > (*t, p),
            None => true,
        };
        if newer {
            newest.insert(name, (modified, path));
        }
    }
    let mut ignored = Vec::new();
    if let Some(whitelist) = whitelist {
        newest.retain(|name, (_, file)| {
            let keep = whitelist.contains(name);
            if !keep {
                ignored.push(IgnoredFile {
                    name: name.clone(),
                    file: file.clone(),
                    note: "not in the whitelist".into(),
                });
            }
            keep
        });
    }
    if newest.is_empty() {
        let what = if ignored.is_empty() { "" } else { " (besides files of plugins outside the whitelist)" };
        return Err(fail(format!("no plugin libraries (*.{}) in the folder{what}", std::env::consts::DLL_EXTENSION)));
    }
    Ok((newest.into_iter().map(|(name, (_, path))| (name, path)).collect(), ignored))
}

/// Refuses `path` if another user could change it: writable by group or others, or owned by
/// neither this process's user nor root.
fn check_modes(path: &Path, plugin: Option<&str>) -> Result<(), LoadError> {
    use std::os::unix::fs::MetadataExt;
    let what = if plugin.is_some() { "plugin file" } else { "plugin folder" };
    let fail = |reason: String| LoadError {
        plugin: plugin.map(str::to_string),
        file: path.to_path_buf(),
        stage: Stage::Scan,
        reason: format!("{reason}; or, to accept it anyway, build the manager with `strict_modes(false)`"),
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read the {what}'s permissions: {e}")))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(fail(format!(
            "the {what} is owned by uid {}, not by this process's user ({uid}) or root, so its owner could run code in this host; fix: `chown {uid} {}`",
            meta.uid(),
            path.display()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(fail(format!(
            "the {what} is writable by group or others (mode {mode:o}), so they could run code in this host; fix: `chmod go-w {}`",
            path.display()
        )));
    }
    Ok(())
}

/// Orders plugins so that every plugin comes after the plugins it imports.
fn dependency_order(
    dir: &Path,
    plugins: &BTreeMap<String, (Arc<LoadedPlugin>, Origin)>,
) -> Result<Vec<String>, LoadError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        name: &str,
        dir: &Path,
        plugins: &BTreeMap<String, (Arc<LoadedPlugin>, Origin)>,
        marks: &mut HashMap<String, Mark>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<(), LoadError> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|n| n == name).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(name.to_string());
                let plugin = &plugins[name].0;
                return Err(LoadError {
                    plugin: Some(name.to_string()),
                    file: plugin.file.clone(),
                    stage: Stage::Dependencies,
                    reason: format!("import cycle: {}", cycle.join(" -> ")),
                });
            }
            None => {}
        }
        marks.insert(name.to_string(), Mark::Visiting);
        path.push(name.to_string());
        let plugin = &plugins[name].0;
        for import in &plugin.imports {
            if !plugins.contains_key(import) {
                return Err(LoadError {
                    plugin: Some(name.to_string()),
                    file: plugin.file.clone(),
                    stage: Stage::Dependencies,
                    reason: format!("imports plugin `{import}`, which is not in {}", dir.display()),
                });
            }
            visit(import, dir, plugins, marks, path, order)?;
        }
        path.pop();
        marks.insert(name.to_string(), Mark::Done);
        order.push(name.to_string());
        Ok(())
    }
    let mut marks = HashMap::new();
    let mut order = Vec::new();
    for name in plugins.keys() {
        visit(name, dir, plugins, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// One loaded set of plugins, with its vault. Kept alive by the manager while current, and
/// by every [`Plugin`] handle taken from it.
pub struct Generation {
    number: u64,
    plugins: Vec<Arc<LoadedPlugin>>,
    index: HashMap<String, usize>,
    vault: Arc<Vault>,
    loaded_at: SystemTime,
}

impl Generation {
    /// Its number: 1 for the first load, one more for each successful reload.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// When it was built.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Its vault.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// Plugin names in load order.
    pub fn plugin_names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name.as_str()).collect()
    }

    /// Handles on every plugin, in load order.
    pub fn plugins(self: &Arc<Self>) -> Vec<Plugin> {
        (0..self.plugins.len()).map(|index| Plugin { generation: Arc::clone(self), index }).collect()
    }

    /// A handle on plugin `name`.
    pub fn find_plugin(self: &Arc<Self>, name: &str) -> Option<Plugin> {
        let index = *self.index.get(name)?;
        Some(Plugin { generation: Arc::clone(self), index })
    }

    fn loaded(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.index.get(name).map(|&i| &self.plugins[i])
    }

    /// Calls `func` on every plugin, dependencies first; one plugin's failure does not stop
    /// the others.
    pub fn invoke_each(&self, func: &str, args: impl Fn() -> Args) -> Vec<(String, Result<Value, InvokeError>)> {
        self.plugins.iter().map(|p| (p.name.clone(), invoke(p, func, args()))).collect()
    }

    /// Calls `func` on every plugin, dependents first.
    pub fn invoke_each_backward(
        &self,
        func: &str,
        args: impl Fn() -> Args,
    ) -> Vec<(String, Result<Value, InvokeError>)> {
        self.plugins.iter().rev().map(|p| (p.name.clone(), invoke(p, func, args()))).collect()
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        // Dependents first, so a plugin is freed before the plugins it imports.
        while let Some(plugin) = self.plugins.pop() {
            drop(plugin);
        }
        tracing::debug!(generation = self.number, "generation released");
    }
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation").field("number", &self.number).field("plugins", &self.plugin_names()).finish()
    }
}

fn invoke(plugin: &LoadedPlugin, func: &str, args: Args) -> Result<Value, InvokeError> {
    let library: Arc<dyn Any + Send + Sync> = plugin.mapping.clone();
    (plugin.hooks.invoke_func)(func, args).map(|value| value.keep_alive(library)).map_err(|failure| match failure {
        HookFailure::Error(message) => {
            InvokeError::Failed { plugin: plugin.name.clone(), func: func.to_string(), message }
        }
        HookFailure::Panic(message) => {
            InvokeError::Panicked { plugin: plugin.name.clone(), func: func.to_string(), message }
        }
    })
}

/// A plugin of one generation. Keeps that generation alive while it exists.
#[derive(Clone)]
pub struct Plugin {
    generation: Arc<Generation>,
    index: usize,
}

impl Plugin {
    fn loaded(&self) -> &LoadedPlugin {
        &self.generation.plugins[self.index]
    }

    /// Plugin name.
    pub fn name(&self) -> &str {
        &self.loaded().name
    }

    /// Version stamp.
    pub fn version(&self) -> &str {
        &self.loaded().version
    }

    /// The file it was loaded from.
    pub fn file(&self) -> &Path {
        &self.loaded().file
    }

    /// SHA-256 of that file.
    pub fn sha256(&self) -> &str {
        &self.loaded().sha256
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded().loaded_at
    }

    /// The private copy the library was opened from.
    pub fn loaded_from(&self) -> &Path {
        &self.loaded().loaded_from
    }

    /// The generation in which this plugin was loaded (older than [`Plugin::generation`]'s
    /// number for a non-reloadable plugin kept across reloads).
    pub fn loaded_in_generation(&self) -> u64 {
        self.loaded().generation
    }

    /// Whether its `reloadable` hook said yes.
    pub fn reloadable(&self) -> bool {
        self.loaded().reloadable
    }

    /// The generation this handle belongs to.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Calls the plugin's `invoke_func`. A panic inside is contained and returned as
    /// [`InvokeError::Panicked`]; the plugin stays usable.
    pub fn invoke_func(&self, func: &str, args: Args) -> Result<Value, InvokeError> {
        invoke(self.loaded(), func, args)
    }

    /// Calls `func` and downcasts the result to `T`.
    pub fn invoke<T: Any>(&self, func: &str, args: Args) -> Result<T, InvokeError> {
        self.invoke_func(func, args)?.downcast::<T>().map_err(|mismatch| InvokeError::ResultType {
            plugin: self.name().to_string(),
            func: func.to_string(),
            mismatch,
        })
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name())
            .field("version", &self.version())
            .field("generation", &self.generation.number)
            .finish()
    }
}
