//! The service demo's host: an axum server on loopback whose routes come from plugins
//! (`svc_shop`'s router nested under `/shop`, `svc_greeting`'s as the fallback, each mounted
//! with `hotswap_axum::PluginRouter`), with a host-owned price backend the handlers reach
//! through axum's typed `State`. It reloads the plugins on `cargo xtask reload` (the control
//! socket), SIGHUP or SIGUSR1, while connections, event streams and WebSockets stay open on
//! the generation that started them.
//!
//! Built on the shared route (workspace `demo/service`): host and plugins link one tokio, axum,
//! hyper, tracing and log (`service_shared`, `-C prefer-dynamic --cfg tokio_unstable`), so
//! plugin code spawns tasks on this runtime and logs to this subscriber. The runtime's task
//! hooks (`hotswap_tokio::runtime_builder`) keep a plugin library mapped once its code spawned
//! a task, and count live tasks per generation (`status`).
//!
//! Its binary can be replaced without dropping a connection (`cargo xtask upgrade-host`, or
//! SIGRTMIN+2): the new process takes over the HTTP and control sockets
//! ([`hotswap_runtime::handoff`]), loads its plugins and says it is ready; this one then stops
//! accepting, answers each open connection's next request with `Connection: close`, and exits
//! once none is left (or after `--drain-secs`).

mod args;
mod backend;
mod drain;
mod http;

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use hotswap_axum::PluginRouter;
use hotswap_runtime::handoff::Handoff;
use hotswap_runtime::{ControlConfig, ControlServer, PluginManager, default_socket_path};
use hotswap_tokio::PluginTasks;
use service_shared::{AppState, Backend};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::args::Args;
use crate::drain::Drain;
use crate::http::Counters;

/// This build's label (`x-host-build`): `SERVICE_HOST_BUILD` when it was compiled, so two
/// builds of the same sources can be told apart in an upgrade test.
const BUILD: &str = match option_env!("SERVICE_HOST_BUILD") {
    Some(label) => label,
    None => "default",
};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

fn main() -> Result<()> {
    // One subscriber for host and plugins (one `tracing` and one `log` in the process):
    // `RUST_LOG` as a list of `target=level` (default `info`).
    let filter: tracing_subscriber::filter::Targets =
        std::env::var("RUST_LOG").ok().and_then(|f| f.parse().ok()).unwrap_or_else(|| "info".parse().unwrap());
    tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().with_ansi(false)).with(filter).init();
    hotswap_axum::log_panics();
    let args = Args::parse().map_err(|usage| {
        eprintln!("{usage}");
        std::process::exit(2)
    })?;
    // First: the sockets a previous host (or systemd) passed, before anything opens a file.
    let handoff = Handoff::from_env().map_err(|e| format!("taking the inherited sockets: {e}"))?;
    // The folder the manager copies libraries into (its own `hotswap-<pid>-*` inside), which
    // the task hooks watch.
    let work_root = std::env::temp_dir().join("hotswap-service-host");
    let tasks = PluginTasks::new(&work_root);
    let runtime = hotswap_tokio::runtime_builder(&tasks).worker_threads(args.workers).build()?;
    runtime.block_on(run(args, handoff, tasks, work_root))
}

async fn run(args: Args, handoff: Handoff, tasks: PluginTasks, work_root: std::path::PathBuf) -> Result<()> {
    let backend = backend::start().await.map_err(|e| format!("starting the backend: {e}"))?;
    let manager = PluginManager::builder(&args.plugins)
        .work_root(work_root)
        .free_delay(args.free_delay)
        .reload_callback(tasks.reload_callback())
        .task_census(tasks.census())
        .build()?;
    // Before the first load: until installed, SIGRTMIN+2 would end the process.
    let _upgrade_signal = handoff.upgrade_on_signal()?;
    let report = manager.load_plugins().map_err(|e| format!("loading the first generation: {e}"))?;
    println!("loaded generation {} in {:.1} ms", report.generation, report.total_ms);
    let socket = args.socket.unwrap_or_else(default_socket_path);
    let control =
        ControlServer::start_with(manager.clone(), &socket, ControlConfig::default().handoff(handoff.clone()))?;
    let _signals = manager.reload_on_signals()?;
    println!("listening for reloads on {} (run demo/service/reload.sh)", socket.display());

    let listener = handoff.tcp_listener("http", args.listen)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters { build: BUILD.to_string(), ..Counters::default() });
    let state = AppState { backend: Arc::new(Backend::new(backend)) };
    let stats = Arc::clone(&counters);
    let app = Router::new()
        .route("/stats", get(move || async move { stats.stats() }))
        .nest_service("/shop", PluginRouter::with_state(manager.clone(), "svc_shop", state.clone()))
        .fallback_service(PluginRouter::with_state(manager.clone(), "svc_greeting", state));
    let drain = Drain::new();
    let server = tokio::spawn(http::serve_until(listener, app, Arc::clone(&counters), drain.clone()));
    handoff.ready()?;
    println!(
        "serving http://{} as pid {} (build {BUILD}{}; try /hello?name=you, /json, /sse?n=5, /ws, /spawn, \
         /shop/quote?item=fig&qty=3, /shop/fail, /stats)",
        addr,
        std::process::id(),
        handoff.predecessor().map(|pid| format!(", took over from pid {pid}")).unwrap_or_default(),
    );

    let waiting = handoff.clone();
    let successor = tokio::task::spawn_blocking(move || waiting.wait_retired()).await?;
    drain.start();
    let _ = server.await;
    let open = counters.open_connections.load(Ordering::SeqCst);
    println!("pid {} hands over to pid {successor}: draining {open} open connections", std::process::id());
    let deadline = Instant::now() + args.drain;
    while counters.open_connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let left = counters.open_connections.load(Ordering::SeqCst);
    println!("pid {} exits: {left} connections left open after the drain", std::process::id());
    // Retired: the socket file stays, it is the new host's.
    drop(control);
    Ok(())
}
