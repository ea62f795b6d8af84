//! The hello demo's host. Loads the plugins in `--plugins`, calls `greet` on each once a
//! second, and reloads when `cargo xtask reload` asks on the control socket. A generation on
//! probation (`cargo xtask reload --probation SECS`) is healthy while every plugin answers
//! `greet` without an error: the host's health check rolls it back at the first that does not.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hotswap_runtime::{ControlServer, PluginManager, args, default_socket_path};

#[derive(Parser)]
#[command(about = "hotswap hello demo host")]
struct Cli {
    /// Folder of plugin libraries written by `cargo xtask build`.
    #[arg(long, default_value = "bin")]
    plugins: PathBuf,
    /// Control socket [default: as `cargo xtask reload`].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Milliseconds between rounds of calls.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Milliseconds between health checks of a generation on probation.
    #[arg(long, default_value_t = 1000)]
    health_interval_ms: u64,
    /// Stop after this many rounds (0: run until killed).
    #[arg(long, default_value_t = 0)]
    rounds: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let manager = PluginManager::builder(&cli.plugins)
        .free_delay(Duration::from_secs(2))
        .health_check(Duration::from_millis(cli.health_interval_ms), |generation| {
            for plugin in generation.plugins() {
                plugin.invoke::<String>("greet", args!["health check".to_string(), 0u64])?;
            }
            Ok(())
        })
        .build()?;
    let report = manager.load_plugins().context("loading the first generation")?;
    println!("loaded generation {} in {:.1} ms", report.generation, report.total_ms);
    let socket = cli.socket.unwrap_or_else(default_socket_path);
    let _control = ControlServer::start(manager.clone(), &socket)?;
    println!("listening for reloads on {} (run demo/hello/reload.sh)", socket.display());

    let mut tick: u64 = 0;
    loop {
        tick += 1;
        let Some(generation) = manager.current() else { continue };
        for plugin in generation.plugins() {
            match plugin.invoke::<String>("greet", args!["world".to_string(), tick]) {
                Ok(text) => println!("[gen {}] {} {}: {text}", generation.number(), plugin.name(), plugin.version()),
                Err(e) => println!("[gen {}] {} {}: error: {e}", generation.number(), plugin.name(), plugin.version()),
            }
        }
        if cli.rounds != 0 && tick >= cli.rounds {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(cli.interval_ms));
    }
}
