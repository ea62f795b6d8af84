//! The service demo's host: serves HTTP on loopback with handlers from the plugins in
//! `--plugins`, and reloads them on `cargo xtask reload` (the control socket), SIGHUP or
//! SIGUSR1, while connections stay open.
//!
//! Build it in the same profile as the plugins (release; `run.sh` does): the request,
//! response and extension types come from `service-shared`, and tokio's handle from tokio;
//! their `TypeId`s match between host and plugins only when both were built with the same
//! profile and features. A mismatch is refused (the plugins' `on_init`, each call's argument
//! check), never misread.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hotswap_runtime::{ControlServer, PluginManager, default_socket_path};
use service_host::{AppState, BackendServer, PluginHandlers};
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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.workers).enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let backend_server = BackendServer::start().await.context("starting the backend")?;
    let backend = Arc::new(Backend::new(backend_server.addr));
    let manager = PluginManager::builder(&cli.plugins)
        .free_delay(Duration::from_secs(2))
        .extension_newer(move || ServiceExt { backend: Arc::clone(&backend) })
        .build()?;
    let report = manager.load_plugins().context("loading the first generation")?;
    println!("loaded generation {} in {:.1} ms", report.generation, report.total_ms);
    let socket = cli.socket.unwrap_or_else(default_socket_path);
    let _control = ControlServer::start(manager.clone(), &socket)?;
    let _signals = manager.reload_on_signals()?;
    println!("listening for reloads on {} (run demo/service/reload.sh)", socket.display());

    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.with_context(|| format!("binding {}", cli.listen))?;
    println!(
        "serving http://{} (try /hello?name=you&delay_ms=50, /quote?item=fig&qty=3, /fail, /stats)",
        listener.local_addr()?
    );
    let app = Arc::new(AppState::default());
    service_host::serve(listener, Arc::new(PluginHandlers::new(manager)), app).await;
    Ok(())
}
