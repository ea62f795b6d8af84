//! tokio task hooks (`--cfg tokio_unstable`) that keep a task's plugin library mapped and run
//! the task in its plugin's scope.
//!
//! A task is attributed to a plugin library by the scope current when it is spawned
//! (`hotswap_axum::current_scope`: the host's `PluginRouter` sets it around every poll of a
//! plugin's handler and body, and these hooks around every poll of an attributed task), or
//! else by its spawn location (`dladdr` of the `#[track_caller]` location of the code that
//! called `tokio::spawn`, when it lies in a plugin library). An attributed task's library is
//! pinned: a `dlopen` reference that is never given back, because tokio frees a task through
//! code in that library at its last reference, after the task ends, and signals no such moment
//! (guide, section 10). `AXUM_HOST_NO_PIN=1` leaves the pin out, `AXUM_HOST_NO_SCOPE=1` the
//! attribution by scope (the test's controls). An attributed task's polls also enter its
//! plugin's span, so its events carry plugin and generation.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotswap_axum::PluginScope;
use tokio::task::Id;

#[derive(Default)]
pub struct Tasks {
    work: PathBuf,
    /// Each plugin library the host loaded, and its scope.
    libraries: Mutex<HashMap<PathBuf, Arc<PluginScope>>>,
    tasks: Mutex<HashMap<Id, Arc<PluginScope>>>,
    pinned: Mutex<HashSet<PathBuf>>,
    pub by_scope: AtomicU64,
    pub by_location: AtomicU64,
    pin: bool,
    scope: bool,
}

thread_local! {
    /// The scope a task poll replaced, restored after the poll.
    static SAVED: RefCell<Option<(Option<Arc<PluginScope>>, Option<tracing::span::Id>)>> = const { RefCell::new(None) };
}

impl Tasks {
    pub fn new(work: &Path) -> Tasks {
        Tasks {
            work: work.to_path_buf(),
            pin: std::env::var_os("AXUM_HOST_NO_PIN").is_none(),
            scope: std::env::var_os("AXUM_HOST_NO_SCOPE").is_none(),
            ..Tasks::default()
        }
    }

    /// Records a loaded plugin library.
    pub fn loaded(&self, scope: PluginScope) {
        self.libraries.lock().unwrap().insert(scope.library.clone(), Arc::new(scope));
    }

    pub fn pinned(&self) -> usize {
        self.pinned.lock().unwrap().len()
    }

    pub fn install(self: &Arc<Self>, builder: &mut tokio::runtime::Builder) {
        #[cfg(tokio_unstable)]
        {
            let (spawn, before, after, end) = (Arc::clone(self), Arc::clone(self), Arc::clone(self), Arc::clone(self));
            builder
                .on_task_spawn(move |meta| spawn.spawned(meta.id(), meta.spawned_at().file().as_ptr()))
                .on_before_task_poll(move |meta| before.before_poll(meta.id()))
                .on_after_task_poll(move |_| after.after_poll())
                .on_task_terminate(move |meta| end.terminated(meta.id()));
        }
        #[cfg(not(tokio_unstable))]
        {
            let _ = builder;
            compile_error!("the fixture host needs --cfg tokio_unstable");
        }
    }

    fn spawned(&self, task: Id, location: *const u8) {
        let mut scope = if self.scope { hotswap_axum::current_scope() } else { None };
        if scope.is_some() {
            self.by_scope.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(library) = library_under(&self.work, location) {
            self.by_location.fetch_add(1, Ordering::Relaxed);
            if scope.is_none() {
                scope = self.libraries.lock().unwrap().get(&library).cloned();
            }
        }
        let Some(scope) = scope else { return };
        if self.pin {
            let mut pinned = self.pinned.lock().unwrap();
            if !pinned.contains(&scope.library) && pin(&scope.library) {
                pinned.insert(scope.library.clone());
            }
        }
        self.tasks.lock().unwrap().insert(task, scope);
    }

    fn before_poll(&self, task: Id) {
        let scope = self.tasks.lock().unwrap().get(&task).cloned();
        if let Some(scope) = scope {
            // The task's events are recorded in its plugin's span `plugin{name, generation}`.
            let span = scope.span().id();
            if let Some(id) = &span {
                tracing::dispatcher::get_default(|dispatch| dispatch.enter(id));
            }
            let previous = hotswap_axum::replace_scope(Some(scope));
            SAVED.with(|saved| *saved.borrow_mut() = Some((previous, span)));
        }
    }

    fn after_poll(&self) {
        if let Some((previous, span)) = SAVED.with(|saved| saved.borrow_mut().take()) {
            if let Some(id) = &span {
                tracing::dispatcher::get_default(|dispatch| dispatch.exit(id));
            }
            hotswap_axum::replace_scope(previous);
        }
    }

    /// The live attributed tasks per plugin and generation (the manager's task census).
    pub fn census(&self) -> Vec<hotswap_runtime::LiveTasks> {
        let mut live: std::collections::BTreeMap<(u64, String), usize> = Default::default();
        for scope in self.tasks.lock().unwrap().values() {
            *live.entry((scope.generation, scope.plugin.clone())).or_default() += 1;
        }
        live.into_iter()
            .map(|((generation, plugin), n)| hotswap_runtime::LiveTasks::new(plugin, generation, n))
            .collect()
    }

    fn terminated(&self, task: Id) {
        self.tasks.lock().unwrap().remove(&task);
    }
}

/// The library under `dir` that holds `addr`, if any.
fn library_under(dir: &Path, addr: *const u8) -> Option<PathBuf> {
    // SAFETY: an all-zero Dl_info is valid (null pointers); dladdr only reads the link map.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr accepts any address and fills `info` only on success.
    if unsafe { libc::dladdr(addr.cast(), &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: on success, dli_fname is the loaded object's NUL-terminated path.
    let path = Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes())).to_path_buf();
    path.starts_with(dir).then_some(path)
}

/// Takes a `dlopen` reference on a loaded library that is never given back.
fn pin(library: &Path) -> bool {
    let Ok(path) = CString::new(library.as_os_str().as_bytes()) else { return false };
    // SAFETY: RTLD_NOLOAD loads nothing: it adds a reference to a library already loaded (the
    // spawning code runs in it), which is never closed.
    !unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) }.is_null()
}
