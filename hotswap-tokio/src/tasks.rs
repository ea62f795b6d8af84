//! The host's side of the shared route (guide, section 10: one tokio for the process): tokio
//! task hooks that keep the library a task was spawned from mapped, count each library's live
//! tasks, and keep a task inside the `tracing` span current at its spawn.
//!
//! Needs `--cfg tokio_unstable` (tokio's task hooks are unstable API, which may change in a 1.x
//! release) for the host and every plugin alike (the ABI fingerprint hashes `cfg` values, so a
//! plugin built without it is refused).

#[cfg(not(tokio_unstable))]
compile_error!(
    "hotswap-tokio's `shared` feature uses tokio's task hooks, which need `--cfg tokio_unstable`: build the host \
     and every plugin with RUSTFLAGS=\"-C prefer-dynamic --cfg tokio_unstable\" (guide, section 10)"
);

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hotswap_runtime::LiveTasks;
use tokio::runtime::{Builder, TaskMeta};
use tokio::task::Id;

/// Watches the tasks of a runtime whose code may come from plugin libraries: install it in
/// the runtime's builder with [`PluginTasks::install`] (or build the runtime with
/// [`runtime_builder`]). Cheap to clone (one shared state).
///
/// For each task spawned, the hook looks up (`dladdr`) which loaded library holds the task's
/// spawn location (`#[track_caller]` data of the code that called `tokio::spawn`). When that
/// library lies under the plugin manager's work root (the private copies it opens plugins
/// from), the library is **pinned**: a `dlopen` reference is taken and never given back, so it
/// stays mapped until the process exits. That is the only sound rule today: tokio frees a task
/// through code in the library that spawned it, at the task's last reference (a `JoinHandle`
/// or a waker may outlive the task by any time), and signals no such moment. Each library's
/// live tasks (spawned, not yet terminated) are counted: [`PluginTasks::live_in`].
///
/// Not attributed: a task spawned by code in a shared library (hyper's connection tasks, say)
/// whose future holds plugin code; its library is not pinned by this hook.
#[derive(Clone, Debug)]
pub struct PluginTasks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Libraries under this folder are plugin libraries.
    root: PathBuf,
    state: Mutex<State>,
    /// The span current at each task's spawn, when there was one.
    spans: RwLock<HashMap<Id, tracing::Span>>,
}

#[derive(Debug, Default)]
struct State {
    /// The plugin library each live task was spawned from.
    tasks: HashMap<Id, PathBuf>,
    /// Live tasks per plugin library.
    live: BTreeMap<PathBuf, usize>,
    /// Libraries pinned (mapped until the process exits).
    pinned: HashSet<PathBuf>,
    /// The plugin and generation of each library, recorded by [`PluginTasks::reload_callback`].
    owners: HashMap<PathBuf, (String, u64)>,
}

impl PluginTasks {
    /// Hooks for plugin libraries opened under `work_root`: the plugin manager's work root
    /// (`PluginManagerBuilder::work_root`), or [`PluginManager::work_dir`](hotswap_runtime::PluginManager).
    pub fn new(work_root: impl Into<PathBuf>) -> PluginTasks {
        PluginTasks {
            inner: Arc::new(Inner { root: work_root.into(), state: Mutex::default(), spans: RwLock::default() }),
        }
    }

    /// Installs the hooks (`on_task_spawn`, `on_task_terminate`, `on_before_task_poll`,
    /// `on_after_task_poll`) in `builder`, replacing any set before.
    pub fn install<'b>(&self, builder: &'b mut Builder) -> &'b mut Builder {
        let (spawn, terminate, before, after) =
            (Arc::clone(&self.inner), Arc::clone(&self.inner), Arc::clone(&self.inner), Arc::clone(&self.inner));
        builder
            .on_task_spawn(move |meta| spawn.spawned(meta))
            .on_task_terminate(move |meta| terminate.terminated(meta.id()))
            .on_before_task_poll(move |meta| before.enter_span(meta.id(), true))
            .on_after_task_poll(move |meta| after.enter_span(meta.id(), false))
    }

    /// Live tasks spawned from code in `library` (a plugin's private copy,
    /// `Plugin::loaded_from`).
    pub fn live(&self, library: &Path) -> usize {
        self.inner.state().live.get(library).copied().unwrap_or(0)
    }

    /// Live tasks spawned from `plugin`'s code (its generation's library).
    pub fn live_in(&self, plugin: &hotswap_runtime::Plugin) -> usize {
        self.live(plugin.loaded_from())
    }

    /// A reload callback (`PluginManagerBuilder::reload_callback`) that records which plugin
    /// and generation each library belongs to, for [`PluginTasks::live_by_generation`].
    pub fn reload_callback(
        &self,
    ) -> impl Fn(
        &Arc<hotswap_runtime::Generation>,
        Option<&Arc<hotswap_runtime::Generation>>,
    ) -> Result<(), hotswap_runtime::HookError>
    + Send
    + Sync
    + 'static {
        let inner = Arc::clone(&self.inner);
        move |generation, _| {
            let mut state = inner.state();
            for plugin in generation.plugins() {
                let owner = (plugin.name().to_string(), plugin.loaded_in_generation());
                state.owners.insert(plugin.loaded_from().to_path_buf(), owner);
            }
            Ok(())
        }
    }

    /// Live tasks per plugin and generation, for the libraries with live tasks whose plugin
    /// and generation [`PluginTasks::reload_callback`] recorded, oldest generation first: the
    /// tasks still running on replaced code are those of generations older than the current.
    pub fn live_by_generation(&self) -> Vec<LiveTasks> {
        let state = self.inner.state();
        let mut out: Vec<LiveTasks> = state
            .live
            .iter()
            .filter_map(|(library, live)| {
                let (plugin, generation) = state.owners.get(library)?.clone();
                Some(LiveTasks::new(plugin, generation, *live))
            })
            .collect();
        out.sort_by(|a, b| (a.generation, &a.plugin).cmp(&(b.generation, &b.plugin)));
        out
    }

    /// A task census for the manager (`PluginManagerBuilder::task_census`): its status and
    /// reload answers then carry [`PluginTasks::live_by_generation`] as `tasks`.
    pub fn census(&self) -> impl Fn() -> Vec<LiveTasks> + Send + Sync + 'static {
        let tasks = self.clone();
        move || tasks.live_by_generation()
    }

    /// Every plugin library with live tasks, and how many.
    pub fn live_by_library(&self) -> Vec<(PathBuf, usize)> {
        self.inner.state().live.iter().map(|(path, n)| (path.clone(), *n)).collect()
    }

    /// The plugin libraries pinned so far: each spawned a task, and stays mapped until the
    /// process exits.
    pub fn pinned_libraries(&self) -> Vec<PathBuf> {
        let mut pinned: Vec<PathBuf> = self.inner.state().pinned.iter().cloned().collect();
        pinned.sort();
        pinned
    }
}

/// A multi-threaded runtime builder with the time and I/O drivers on and `tasks`' hooks
/// installed: `runtime_builder(&tasks).worker_threads(4).build()`.
pub fn runtime_builder(tasks: &PluginTasks) -> Builder {
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    tasks.install(&mut builder);
    builder
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawned(&self, meta: &TaskMeta<'_>) {
        let span = tracing::Span::current();
        if span.id().is_some() {
            self.spans.write().unwrap_or_else(|e| e.into_inner()).insert(meta.id(), span);
        }
        let Some(library) = library_under(&self.root, meta.spawned_at().file().as_ptr()) else {
            return;
        };
        let mut state = self.state();
        if !state.pinned.contains(&library) && pin(&library) {
            tracing::debug!(library = %library.display(), "a task was spawned from this plugin library: it stays mapped until the process exits");
            state.pinned.insert(library.clone());
        }
        *state.live.entry(library.clone()).or_default() += 1;
        state.tasks.insert(meta.id(), library);
    }

    fn terminated(&self, task: Id) {
        if self.spans.read().unwrap_or_else(|e| e.into_inner()).contains_key(&task) {
            self.spans.write().unwrap_or_else(|e| e.into_inner()).remove(&task);
        }
        let mut state = self.state();
        if let Some(library) = state.tasks.remove(&task)
            && let Some(live) = state.live.get_mut(&library)
        {
            *live -= 1;
            if *live == 0 {
                state.live.remove(&library);
            }
        }
    }

    /// Enters (`enter`) or exits the span current at the task's spawn, if it had one.
    fn enter_span(&self, task: Id, enter: bool) {
        let spans = self.spans.read().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = spans.get(&task).and_then(tracing::Span::id) {
            drop(spans);
            tracing::dispatcher::get_default(|d| if enter { d.enter(&id) } else { d.exit(&id) });
        }
    }
}

/// The library under `root` that holds `addr`, if any.
fn library_under(root: &Path, addr: *const u8) -> Option<PathBuf> {
    // SAFETY: an all-zero `Dl_info` is a valid value (null pointers, which dladdr overwrites).
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr accepts any address, only reads the dynamic linker's list of loaded
    // objects, and fills `info` only when it returns non-zero.
    if unsafe { libc::dladdr(addr.cast(), &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: on success `dli_fname` is the NUL-terminated path the object was loaded from,
    // owned by the dynamic linker; it is copied out here before anything could unload it (the
    // object holds the code running this spawn).
    let path = Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes())).to_path_buf();
    path.starts_with(root).then_some(path)
}

/// Takes a `dlopen` reference on the loaded library `library` that is never closed.
fn pin(library: &Path) -> bool {
    let Ok(path) = CString::new(library.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: RTLD_NOLOAD loads nothing and runs no initialiser: it only adds a reference to a
    // library already loaded (the spawning code is running in it), or returns null.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    !handle.is_null()
}
