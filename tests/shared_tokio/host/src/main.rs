//! Host of `tests/tests/shared_tokio.rs`. `shared_host <plugin folder> <work root> <v1 build
//! folder> <v2 build folder>` loads plugin `spawner` (build v1), lets its code start a task with
//! raw `tokio::spawn` that sleeps past three reloads (v2, v1, v2, each freeing the replaced
//! generation at once), and prints one `KEY value` line per step; exit status 0 when the task
//! finished.
//!
//! Tasks spawned by plugin code keep their library mapped (see `pin`): tokio's task hooks
//! (`--cfg tokio_unstable`) give each task's spawn location, which lies in the read-only data
//! of the library whose code called `spawn`; the hook takes a `dlopen` reference on that
//! library and never gives it back, because tokio frees a task through code in that library
//! at its last reference (a `JoinHandle` or waker may outlive the task), and signals no such
//! moment. `SHARED_HOST_NO_PIN=1` leaves the hook out (the test's control: the process then
//! runs a task whose library was unmapped).
//!
//! Logs: tracing, log and the subscriber are one copy (the shared dylib), so the plugin's
//! events reach the subscriber installed here. The host calls plugin code inside a span
//! `plugin{name, generation}`; a task keeps the span current when it was spawned, entered
//! around each of its polls (`on_before_task_poll` / `on_after_task_poll`). The subscriber
//! records the plugin's events (`EVENT <level> <message> <fields> in <spans>` lines).

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use std::collections::HashMap;
use std::fmt::Write as _;

use hotswap_runtime::{Args, PluginManager};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
// Link tokio from the shared dylib.
use shared_tokio as _;

/// `message` first, then ` key=value` for the other fields; a `log` record's target (tracing-log
/// gives its events the target `log` and the record's target as the field `log.target`).
#[derive(Default)]
struct Fields(String, String, Option<String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.2 = Some(value.to_string());
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else if !field.name().starts_with("log.") {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
}

/// Records the events of the plugin crate (`shared_spawner`), with their span scope.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let span = ctx.span(id).expect("new span");
        span.extensions_mut().insert(format!("{}{{{}}}", span.name(), fields.1.trim_start()));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        if !fields.2.as_deref().unwrap_or(meta.target()).starts_with("shared_spawner") {
            return;
        }
        let scope: Vec<String> = ctx
            .event_scope(event)
            .map(|scope| {
                scope.from_root().map(|s| s.extensions().get::<String>().cloned().unwrap_or_default()).collect()
            })
            .unwrap_or_default();
        let line = format!("EVENT {} {}{} in {}", meta.level(), fields.0, fields.1, scope.join(":"));
        self.0.lock().unwrap().push(line);
    }
}

/// The span current when each task was spawned, entered around the task's polls.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[derive(Default)]
struct TaskSpans(Mutex<HashMap<tokio::task::Id, tracing::Span>>);

#[cfg_attr(not(tokio_unstable), allow(dead_code))]
impl TaskSpans {
    fn spawned(&self, task: tokio::task::Id) {
        let span = tracing::Span::current();
        if span.id().is_some() {
            self.0.lock().unwrap().insert(task, span);
        }
    }

    fn id(&self, task: tokio::task::Id) -> Option<tracing::span::Id> {
        self.0.lock().unwrap().get(&task).and_then(tracing::Span::id)
    }

    fn before_poll(&self, task: tokio::task::Id) {
        if let Some(id) = self.id(task) {
            tracing::dispatcher::get_default(|d| d.enter(&id));
        }
    }

    fn after_poll(&self, task: tokio::task::Id) {
        if let Some(id) = self.id(task) {
            tracing::dispatcher::get_default(|d| d.exit(&id));
        }
    }

    fn terminated(&self, task: tokio::task::Id) {
        self.0.lock().unwrap().remove(&task);
    }
}

/// The file under `dir` that contains `addr`, if `addr` lies in a library loaded from there.
fn library_under(dir: &Path, addr: *const u8) -> Option<String> {
    // SAFETY: an all-zero Dl_info is valid (null pointers); dladdr only reads the link map.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr accepts any address and fills `info` only on success.
    if unsafe { libc::dladdr(addr.cast(), &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: on success, dli_fname is the loaded object's NUL-terminated path.
    let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    path.starts_with(dir.to_str()?).then_some(path)
}

/// Libraries pinned by a task spawned from their code: mapped until the process exits.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn pin(pinned: &Mutex<HashSet<String>>, library: String) {
    let mut pinned = pinned.lock().unwrap();
    if pinned.contains(&library) {
        return;
    }
    let path = CString::new(library.clone()).unwrap();
    // SAFETY: RTLD_NOLOAD loads nothing; it adds a reference to a library already loaded (the
    // spawning code is running in it), which is never closed.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if !handle.is_null() {
        pinned.insert(library);
    }
}

fn runtime(work: &Path, pinned: &Arc<Mutex<HashSet<String>>>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_time();
    #[cfg(tokio_unstable)]
    {
        let spans = Arc::new(TaskSpans::default());
        let (a, b, c) = (Arc::clone(&spans), Arc::clone(&spans), Arc::clone(&spans));
        builder
            .on_before_task_poll(move |meta| a.before_poll(meta.id()))
            .on_after_task_poll(move |meta| b.after_poll(meta.id()))
            .on_task_terminate(move |meta| c.terminated(meta.id()));
        let pin_too = std::env::var_os("SHARED_HOST_NO_PIN").is_none();
        let (work, pinned) = (work.to_path_buf(), Arc::clone(pinned));
        builder.on_task_spawn(move |meta| {
            spans.spawned(meta.id());
            if !pin_too {
                return;
            }
            if let Some(library) = library_under(&work, meta.spawned_at().file().as_ptr()) {
                pin(&pinned, library);
            }
        });
    }
    let _ = (work, pinned);
    builder.build().unwrap()
}

/// Copies a build folder's library and manifest into `folder` (through a rename) and makes the
/// library the newest of its plugin (`rank` seconds in the future).
fn install(build: &Path, folder: &Path, rank: u64) {
    for entry in std::fs::read_dir(build).unwrap() {
        let from = entry.unwrap().path();
        if !matches!(from.extension().and_then(|e| e.to_str()), Some("so" | "json")) {
            continue;
        }
        let to = folder.join(from.file_name().unwrap());
        let temp = folder.join(".installing");
        std::fs::copy(&from, &temp).unwrap();
        std::fs::rename(&temp, &to).unwrap();
        if to.extension().is_some_and(|e| e == "so") {
            let file = std::fs::File::options().write(true).open(&to).unwrap();
            file.set_modified(SystemTime::now() + Duration::from_secs(rank)).unwrap();
        }
    }
}

fn mapped_under(dir: &Path) -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let dir = dir.to_string_lossy().into_owned();
    let mut files: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with(&dir))
        .map(String::from)
        .collect();
    files.sort();
    files.dedup();
    files
}

fn build_of(manager: &PluginManager) -> String {
    let plugin = manager.find_plugin("spawner").expect("spawner loaded");
    plugin.invoke_func("build", Args::new()).unwrap().downcast::<String>().unwrap()
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [folder, work, v1, v2] = <[PathBuf; 4]>::try_from(args).expect("usage: <folder> <work> <v1> <v2>");
    let events = Arc::new(Mutex::new(Vec::new()));
    tracing_subscriber::registry().with(Recorder(Arc::clone(&events))).init();
    let pinned = Arc::new(Mutex::new(HashSet::new()));
    let rt = runtime(&work, &pinned);
    let manager = PluginManager::builder(&folder)
        .work_root(&work)
        .free_delay(Duration::ZERO)
        .reuse_unchanged(false)
        .retain_released_libraries(0)
        .build()
        .unwrap();
    install(&v1, &folder, 1);
    manager.load_plugins().unwrap();
    let first = mapped_under(&work);
    println!("LOADED build={} libraries={}", build_of(&manager), first.len());

    let (done, finished) = tokio::sync::oneshot::channel::<String>();
    {
        let _runtime = rt.enter();
        let plugin = manager.find_plugin("spawner").unwrap();
        let span = tracing::info_span!("plugin", name = plugin.name(), generation = plugin.generation().number());
        let _in_plugin = span.enter();
        plugin.invoke_func("start", Args::new().with(done).with(1500u64)).unwrap();
    }
    for (round, build) in [&v2, &v1, &v2].into_iter().enumerate() {
        install(build, &folder, 2 + round as u64);
        manager.reload().unwrap();
        let mapped = mapped_under(&work);
        let first_mapped = first.iter().all(|f| mapped.contains(f));
        println!("RELOAD {} build={} first_library_mapped={first_mapped}", round + 1, build_of(&manager));
    }
    let answer = rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), finished).await });
    let pinned = pinned.lock().unwrap().len();
    match answer {
        Ok(Ok(text)) => println!("TASK {text}"),
        other => {
            println!("TASK did not finish: {other:?}");
            std::process::exit(1);
        }
    }
    println!(
        "PINNED libraries={pinned} first_library_mapped={}",
        first.iter().all(|f| mapped_under(&work).contains(f))
    );
    for line in events.lock().unwrap().iter() {
        println!("{line}");
    }
}
