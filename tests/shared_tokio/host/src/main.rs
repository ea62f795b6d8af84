//! Host of `tests/tests/shared_tokio.rs`. `shared_host refuse <plugin folder> <work root>
//! <build folder>` loads one build and prints why it was refused. `shared_host <plugin folder>
//! <work root> <v1 build folder> <v2 build folder>` loads plugin `spawner` (build v1), lets its code start a task with
//! raw `tokio::spawn` that sleeps past three reloads (v2, v1, v2, each freeing the replaced
//! generation at once), and prints one `KEY value` line per step; exit status 0 when the task
//! finished.
//!
//! Tasks spawned by plugin code keep their library mapped: the runtime is built with the
//! toolkit's `hotswap_tokio::runtime_builder`, whose tokio task hooks (`--cfg tokio_unstable`)
//! pin the library each task was spawned from and count its live tasks (printed per
//! generation). `SHARED_HOST_NO_PIN=1` builds the runtime without them (the test's control,
//! run by hand: the process then runs a task whose library was unmapped).
//!
//! The plugin also starts a task in its `TaskGroup`, which its `on_free` cancels when the
//! generation is replaced (printed as `GROUP`).
//!
//! Logs: tracing, log and the subscriber are one copy (the shared dylib), so the plugin's
//! events reach the subscriber installed here. The host calls plugin code inside a span
//! `plugin{name, generation}`; the toolkit's hooks keep a task inside the span current when it
//! was spawned. The subscriber records the plugin's events (`EVENT <level> <message> <fields>
//! in <spans>` lines).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hotswap_runtime::{Args, ControlRequest, ControlServer, PluginManager, send_request};
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

fn runtime(work: &Path) -> (tokio::runtime::Runtime, Option<hotswap_tokio::PluginTasks>) {
    // The control of the test, by hand: without the toolkit's hooks nothing keeps a replaced
    // library mapped under its task (SIGSEGV).
    if std::env::var_os("SHARED_HOST_NO_PIN").is_some() {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        return (builder.worker_threads(2).enable_all().build().unwrap(), None);
    }
    let tasks = hotswap_tokio::PluginTasks::new(work);
    (hotswap_tokio::runtime_builder(&tasks).worker_threads(2).build().unwrap(), Some(tasks))
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

/// `shared_host refuse <folder> <work> <build>`: loads the build and prints the refusal
/// (`REFUSED at <stage>: <error>`), or `LOADED` when it loaded.
fn refuse(folder: &Path, work: &Path, build: &Path) {
    let manager = PluginManager::builder(folder).work_root(work).build().unwrap();
    install(build, folder, 1);
    match manager.load_plugins() {
        Ok(_) => println!("LOADED"),
        Err(e) => println!("REFUSED at {}: {e}", e.stage),
    }
    println!("MAPPED {}", mapped_under(work).len());
}

/// Live tasks per plugin and generation: `spawner@1=2`, or `none`.
fn tasks_by_generation(tasks: Option<&hotswap_tokio::PluginTasks>) -> String {
    let counts: Vec<String> = tasks
        .into_iter()
        .flat_map(|t| t.live_by_generation())
        .map(|g| format!("{}@{}={}", g.plugin, g.generation, g.live))
        .collect();
    if counts.is_empty() { "none".to_string() } else { counts.join(" ") }
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.first().is_some_and(|a| a == Path::new("refuse")) {
        let [_, folder, work, build] = <[PathBuf; 4]>::try_from(args).expect("usage: refuse <folder> <work> <build>");
        return refuse(&folder, &work, &build);
    }
    let [folder, work, v1, v2] = <[PathBuf; 4]>::try_from(args).expect("usage: <folder> <work> <v1> <v2>");
    let events = Arc::new(Mutex::new(Vec::new()));
    tracing_subscriber::registry().with(Recorder(Arc::clone(&events))).init();
    let (rt, tasks) = runtime(&work);
    let live = |library: &Path| tasks.as_ref().map_or(0, |t| t.live(library));
    let mut builder = PluginManager::builder(&folder)
        .work_root(&work)
        .free_delay(Duration::ZERO)
        .reuse_unchanged(false)
        .retain_released_libraries(0);
    if let Some(tasks) = &tasks {
        builder = builder.reload_callback(tasks.reload_callback()).task_census(tasks.census());
    }
    let manager = builder.build().unwrap();
    let socket = work.join("control.sock");
    let _control = ControlServer::start(manager.clone(), &socket).unwrap();
    install(&v1, &folder, 1);
    manager.load_plugins().unwrap();
    let first = mapped_under(&work);
    println!("LOADED build={} libraries={}", build_of(&manager), first.len());

    let (done, finished) = tokio::sync::oneshot::channel::<String>();
    let (group_done, mut group_finished) = tokio::sync::oneshot::channel::<String>();
    let first_library = {
        let _runtime = rt.enter();
        let plugin = manager.find_plugin("spawner").unwrap();
        let span = tracing::info_span!("plugin", name = plugin.name(), generation = plugin.generation().number());
        let _in_plugin = span.enter();
        plugin.invoke_func("start", Args::new().with(done).with(1500u64)).unwrap();
        plugin.invoke_func("start_in_group", Args::new().with(group_done).with(60_000u64)).unwrap();
        plugin.loaded_from().to_path_buf()
    };
    println!("TASKS {}", tasks_by_generation(tasks.as_ref()));
    for (round, build) in [&v2, &v1, &v2].into_iter().enumerate() {
        install(build, &folder, 2 + round as u64);
        manager.reload().unwrap();
        let mapped = mapped_under(&work);
        let first_mapped = first.iter().all(|f| mapped.contains(f));
        println!("RELOAD {} build={} first_library_mapped={first_mapped}", round + 1, build_of(&manager));
        if round == 0 {
            // The replaced generation's on_free cancelled its group and waited for it: the
            // group's task has ended (its sender dropped unsent), the raw task still runs.
            let group = match group_finished.try_recv() {
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => "cancelled".to_string(),
                other => format!("not cancelled: {other:?}"),
            };
            println!("GROUP {group}; TASKS {}", tasks_by_generation(tasks.as_ref()));
            // The same count in the status answer on the control socket.
            let answer = send_request(&socket, &ControlRequest::Status, Duration::from_secs(10)).unwrap();
            let json = serde_json::to_value(&answer).unwrap();
            println!("STATUS tasks={}", json["tasks"]);
        }
    }
    let answer = rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), finished).await });
    match answer {
        Ok(Ok(text)) => println!("TASK {text}"),
        other => {
            println!("TASK did not finish: {other:?}");
            std::process::exit(1);
        }
    }
    // The task sent its answer just before it ended; its terminate hook follows.
    let deadline = Instant::now() + Duration::from_secs(10);
    while live(&first_library) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pinned = tasks.as_ref().map_or(0, |t| t.pinned_libraries().len());
    println!(
        "PINNED libraries={pinned} first_library_mapped={}; TASKS {}",
        first.iter().all(|f| mapped_under(&work).contains(f)),
        tasks_by_generation(tasks.as_ref())
    );
    for line in events.lock().unwrap().iter() {
        println!("{line}");
    }
}
