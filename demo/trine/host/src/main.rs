//! The trine demo's host. Loads three plugins that depend on each other (`trine_front`
//! imports `trine_logic` and `trine_store`; `trine_logic` imports `trine_store`), prints the
//! order the manager loaded them in, and asks `trine_front` for an order once a second.
//!
//! The host only talks to `trine_front`; what it prints still changes when `trine_store` is
//! edited and reloaded, because a reload rebuilds every plugin together with a fresh vault of
//! exports.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hotswap_runtime::{ControlServer, PluginManager, args, default_socket_path};

#[derive(Parser)]
#[command(about = "hotswap trine demo host")]
struct Cli {
    /// Folder of plugin libraries written by `cargo xtask build`.
    #[arg(long, default_value = "bin")]
    plugins: PathBuf,
    /// Control socket [default: as `cargo xtask reload`].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Milliseconds between orders.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Stop after this many orders (0: run until killed).
    #[arg(long, default_value_t = 0)]
    rounds: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let manager = PluginManager::builder(&cli.plugins).free_delay(Duration::from_secs(2)).build()?;
    let report = manager.load_plugins().context("loading the first generation")?;
    let order: Vec<&str> = report.plugins.iter().map(|p| p.name.as_str()).collect();
    println!(
        "loaded generation {} in {:.1} ms, load order: {}",
        report.generation,
        report.total_ms,
        order.join(" -> ")
    );
    let socket = cli.socket.unwrap_or_else(default_socket_path);
    let _control = ControlServer::start(manager.clone(), &socket)?;
    println!("listening for reloads on {} (run demo/trine/reload.sh)", socket.display());

    let mut seen = report.generation;
    let mut tick: u64 = 0;
    loop {
        tick += 1;
        if let Some(generation) = manager.current() {
            let number = generation.number();
            if number != seen {
                // Reloads come through the control socket, which hands its report to
                // `cargo xtask reload`; the generation's plugin list has the same load order.
                println!("now serving generation {number}, load order: {}", generation.plugin_names().join(" -> "));
                seen = number;
            }
            match generation.find_plugin("trine_front") {
                Some(front) => match front.invoke::<String>("serve", args![tick]) {
                    Ok(text) => println!("[gen {number}] trine_front {}: {text}", front.version()),
                    Err(e) => println!("[gen {number}] trine_front: error: {e}"),
                },
                None => println!("[gen {number}] trine_front is not loaded"),
            }
        }
        if cli.rounds != 0 && tick >= cli.rounds {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(cli.interval_ms));
    }
}
