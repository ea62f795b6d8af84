//! The service demo's host: serves HTTP on loopback with handlers from the plugins in
//! `--plugins`, and reloads them on `cargo xtask reload` (the control socket), SIGHUP or
//! SIGUSR1, while connections stay open.
//!
//! Its binary can be replaced without dropping a connection (`cargo xtask upgrade-host`, or
//! SIGRTMIN+2): the new process takes over the HTTP and control sockets
//! ([`hotswap_runtime::handoff`]), loads its plugins and says it is ready; this one then stops
//! accepting, answers each open connection's next request with `Connection: close`, and exits
//! once none is left (or after `--drain-secs`).
//!
//! Build it in the same profile as the plugins (release; `run.sh` does): the request,
//! response and extension types come from `service-shared`, and tokio's handle from tokio;
//! their `TypeId`s match between host and plugins only when both were built with the same
//! profile and features. A mismatch is refused (the plugins' `on_init`, each call's argument
//! check), never misread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hotswap_runtime::handoff::Handoff;
use hotswap_runtime::{ControlConfig, ControlServer, PluginManager, default_socket_path};
use service_host::{AppState, BackendServer, Drain, PluginHandlers};
use service_shared::{Backend, ServiceExt};

#[derive(Parser)]
#[command(about = "hotswap service demo host: HTTP handlers in plugins")]
struct Cli {
    /// Folder of plugin libraries written by `cargo xtask build`.
    #[arg(long, default_value = "bin")]
    plugins: PathBuf,
    /// Control socket [default: as `cargo xtask reload`].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Loopback address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// After a new host took over: the longest this one waits for its open connections to
    /// finish before it exits.
    #[arg(long, default_value_t = 30.0)]
    drain_secs: f64,
}

/// This build's label (`x-host-build`): `SERVICE_HOST_BUILD` when it was compiled, so two
/// builds of the same sources can be told apart in an upgrade test.
const BUILD: &str = match option_env!("SERVICE_HOST_BUILD") {
    Some(label) => label,
    None => "default",
};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    // First: the sockets a previous host (or systemd) passed, before anything opens a file.
    let handoff = Handoff::from_env().context("taking the inherited sockets")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.workers).enable_all().build()?;
    runtime.block_on(run(cli, handoff))
}

async fn run(cli: Cli, handoff: Handoff) -> anyhow::Result<()> {
    let backend_server = BackendServer::start().await.context("starting the backend")?;
    let backend = Arc::new(Backend::new(backend_server.addr));
    let manager = PluginManager::builder(&cli.plugins)
        .free_delay(Duration::from_secs(2))
        .extension_newer(move || ServiceExt { backend: Arc::clone(&backend) })
        .build()?;
    // Before the first load: until installed, SIGRTMIN+2 would end the process.
    let _upgrade_signal = handoff.upgrade_on_signal()?;
    let report = manager.load_plugins().context("loading the first generation")?;
    println!("loaded generation {} in {:.1} ms", report.generation, report.total_ms);
    let socket = cli.socket.unwrap_or_else(default_socket_path);
    let control =
        ControlServer::start_with(manager.clone(), &socket, ControlConfig::default().handoff(handoff.clone()))?;
    let _signals = manager.reload_on_signals()?;
    println!("listening for reloads on {} (run demo/service/reload.sh)", socket.display());

    let listener = handoff.tcp_listener("http", cli.listen)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let app = Arc::new(AppState { build: BUILD.to_string(), ..AppState::default() });
    let drain = Drain::new();
    let server = tokio::spawn(service_host::serve_until(
        listener,
        Arc::new(PluginHandlers::new(manager)),
        Arc::clone(&app),
        drain.clone(),
    ));
    handoff.ready()?;
    println!(
        "serving http://{} as pid {} (build {BUILD}{}; try /hello?name=you&delay_ms=50, /quote?item=fig&qty=3, /fail, /stats)",
        addr,
        std::process::id(),
        handoff.predecessor().map(|pid| format!(", took over from pid {pid}")).unwrap_or_default(),
    );

    let waiting = handoff.clone();
    let successor = tokio::task::spawn_blocking(move || waiting.wait_retired()).await?;
    drain.start();
    let _ = server.await;
    let open = app.open_connections.load(Ordering::SeqCst);
    println!("pid {} hands over to pid {successor}: draining {open} open connections", std::process::id());
    let deadline = Instant::now() + Duration::from_secs_f64(cli.drain_secs.max(0.0));
    while app.open_connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = app.open_connections.load(Ordering::SeqCst);
    println!("pid {} exits: {left} connections left open after the drain", std::process::id());
    // Retired: the socket file stays, it is the new host's.
    drop(control);
    Ok(())
}
