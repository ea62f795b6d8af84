//! Host of `tests/tests/shared_axum.rs`: an axum server whose routes come from plugin `web`
//! (mounted with `hotswap_axum::PluginRouter` as the fallback of the host's own router), and
//! real clients over loopback that drive one scenario while the host reloads the plugin.
//!
//! `axum_host <scenario> <plugin folder> <work root> <v1 build folder> <v2 build folder>`;
//! scenarios: `spawn`, `sse`, `ws`, `panics`, `unmap`, `static`, `axum`, `drain`, `kept` and
//! `wrong-state` (`detached.rs`), `router-fn`, `router-drop`, `reason`, `upload`, `layers` and
//! `tasks` (`guarded.rs`), and `bench` and `hook-cost` (figures, not tests: see `bench.rs`,
//! `hook_cost.rs`) (see `scenarios.rs`). Prints one line per step; exits 0 when the scenario ran to its end.
//!
//! Everything shares one tokio, axum, tracing and log (the `shared_axum` dylib, `-C
//! prefer-dynamic`). The runtime's task hooks (`hooks.rs`) keep a plugin library mapped once
//! code from it spawned a task, and run such tasks in the plugin's scope.

mod bench;
mod client;
mod detached;
mod guarded;
mod hook_cost;
mod hooks;
mod logs;
mod micro;
mod scenarios;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use hotswap_axum::{PluginRouter, PluginScope};
use hotswap_runtime::PluginManager;
use shared_axum::AppState;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub struct Host {
    pub manager: PluginManager,
    pub addr: SocketAddr,
    pub tasks: Arc<hooks::Tasks>,
    pub state: AppState,
    pub events: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>>,
    pub logs: logs::Logs,
    folder: PathBuf,
    builds: [PathBuf; 2],
    /// The library of each generation (index 0: generation 1).
    pub libraries: std::sync::Mutex<Vec<PathBuf>>,
    /// The report of the last reload.
    pub last_report: std::sync::Mutex<Option<hotswap_runtime::ReloadReport>>,
}

impl Host {
    /// Installs the other build and reloads; returns the new generation's number. Generation
    /// `g` runs build v1 when `g` is odd, v2 when even.
    pub async fn reload(self: &Arc<Self>) -> u64 {
        let host = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let next = host.manager.generation_number() + 1;
            install(&host.builds[((next + 1) % 2) as usize], &host.folder, next);
            let report = host.manager.reload().expect("reload");
            *host.last_report.lock().unwrap() = Some(report);
            host.loaded();
            host.manager.generation_number()
        })
        .await
        .unwrap()
    }

    fn loaded(&self) {
        let plugin = self.manager.find_plugin("web").expect("web loaded");
        let number = plugin.generation().number();
        self.tasks.loaded(PluginScope::new("web", number, plugin.loaded_from()));
        let mut libraries = self.libraries.lock().unwrap();
        assert_eq!(libraries.len() as u64 + 1, number, "one library per generation");
        libraries.push(plugin.loaded_from().to_path_buf());
    }

    /// Whether generation `number`'s library is mapped (`/proc/self/maps`).
    pub fn mapped(&self, number: u64) -> bool {
        let library = self.libraries.lock().unwrap()[number as usize - 1].clone();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines().filter_map(|l| l.split_whitespace().nth(5)).any(|p| Path::new(p) == library)
    }

    /// Waits up to 5 s for generation `number`'s library to be mapped or not, as `want`.
    pub async fn wait_mapped(&self, number: u64, want: bool) -> bool {
        for _ in 0..500 {
            if self.mapped(number) == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.mapped(number)
    }
}

/// Copies a build folder's library and manifest into `folder` (through a rename) and makes
/// the library the newest of its plugin (`rank` seconds in the future).
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario, folder, work, v1, v2] =
        <[String; 5]>::try_from(args).expect("usage: <scenario> <folder> <work> <v1> <v2>");
    let logs = logs::Logs::default();
    tracing_subscriber::registry().with(logs.layer()).init();
    hotswap_axum::log_panics();
    let work = PathBuf::from(work);
    if scenario == "hook-cost" {
        // Figures, on runtimes of its own (see `hook_cost.rs`).
        std::process::exit(if hook_cost::run(&work) { 0 } else { 1 });
    }
    let tasks = Arc::new(hooks::Tasks::new(&work));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    tasks.install(&mut builder);
    let runtime = builder.build().unwrap();

    let folder = PathBuf::from(folder);
    let census = Arc::clone(&tasks);
    let manager = PluginManager::builder(&folder)
        .task_census(move || census.census())
        .work_root(&work)
        .free_delay(Duration::ZERO)
        // The bench's knob (`bench.sh`): the reload's CPU priority.
        .reload_nice(std::env::var("BENCH_RELOAD_NICE").ok().and_then(|v| v.parse().ok()).unwrap_or(0))
        .reuse_unchanged(false)
        .retain_released_libraries(0)
        .build()
        .unwrap();
    install(Path::new(&v1), &folder, 1);
    manager.load_plugins().unwrap();

    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let state = AppState { events: sender, gate: Arc::new(tokio::sync::Semaphore::new(0)) };
    let ok = runtime.block_on(async {
        // A small send buffer (accepted connections inherit it): hyper then keeps most of a
        // large body queued until a slow client reads it (scenario `static`).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(64).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut app = Router::new().route("/host", get(|| async { "the host's own route" })).fallback_service(
            if std::env::var_os("AXUM_HOST_NO_SPANS").is_some() {
                PluginRouter::with_state(manager.clone(), "web", state.clone()).without_spans()
            } else {
                PluginRouter::with_state(manager.clone(), "web", state.clone())
            },
        );
        if scenario == "bench" {
            app = bench::mount(app, &manager, &state);
        }
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let host = Arc::new(Host {
            manager,
            addr,
            tasks,
            state,
            events: tokio::sync::Mutex::new(receiver),
            logs,
            folder,
            builds: [PathBuf::from(v1), PathBuf::from(v2)],
            libraries: std::sync::Mutex::new(Vec::new()),
            last_report: std::sync::Mutex::new(None),
        });
        host.loaded();
        let ok = scenarios::run(&scenario, &host).await;
        eprintln!(
            "spawns attributed by scope: {}, by location: {}; libraries pinned: {}",
            host.tasks.by_scope.load(std::sync::atomic::Ordering::Relaxed),
            host.tasks.by_location.load(std::sync::atomic::Ordering::Relaxed),
            host.tasks.pinned()
        );
        ok
    });
    std::process::exit(if ok { 0 } else { 1 });
}
