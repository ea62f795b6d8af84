//! The extension demo's host. Gives every generation of plugins a fresh `RequestClock` as its
//! vault extension, sends `ext_greeter` one request a second, and prints the clock (state of
//! the generation, lost on reload) next to its own totals (state of the host, kept).
//!
//! Build it in the same profile as the plugins (release; `run.sh` does): the clock's type
//! comes from `extension-shared`, and its `TypeId` matches between host and plugins only when
//! both were built with the same profile and features. With a mismatch the plugins' `on_init`
//! fails with a `VaultError` and the load is refused; nothing is misread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use extension_shared::RequestClock;
use hotswap_runtime::{ControlServer, Generation, PluginManager, args, default_socket_path};

#[derive(Parser)]
#[command(about = "hotswap extension demo host")]
struct Cli {
    /// Folder of plugin libraries written by `cargo xtask build`.
    #[arg(long, default_value = "bin")]
    plugins: PathBuf,
    /// Control socket [default: as `cargo xtask reload`].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Milliseconds between requests.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Stop after this many requests (0: run until killed).
    #[arg(long, default_value_t = 0)]
    rounds: u64,
}

/// What the host itself keeps. It lives outside every generation, so a reload leaves it alone.
struct HostState {
    started: Instant,
    /// Requests answered by any generation since the host started.
    total_requests: u64,
    /// The generation seen on the previous round, to notice reloads.
    last_generation: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let mut host = HostState { started: Instant::now(), total_requests: 0, last_generation: 0 };

    // The manager calls this once per generation, while building it; the counter numbers the
    // clocks so the output shows which one a generation got.
    let clocks_made = AtomicU64::new(0);
    let manager = PluginManager::builder(&cli.plugins)
        .free_delay(Duration::from_secs(2))
        .extension_newer(move || RequestClock::new(clocks_made.fetch_add(1, Ordering::Relaxed) + 1))
        .build()?;
    let report = manager.load_plugins().context("loading the first generation")?;
    println!("loaded generation {} in {:.1} ms", report.generation, report.total_ms);
    let socket = cli.socket.unwrap_or_else(default_socket_path);
    let _control = ControlServer::start(manager.clone(), &socket)?;
    println!("listening for reloads on {} (run demo/extension/reload.sh)", socket.display());

    let mut tick: u64 = 0;
    loop {
        tick += 1;
        if let Some(generation) = manager.current() {
            round(&mut host, &generation, tick);
        }
        if cli.rounds != 0 && tick >= cli.rounds {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(cli.interval_ms));
    }
}

/// One request to `generation`, then one line each from the plugins and from the host.
fn round(host: &mut HostState, generation: &std::sync::Arc<Generation>, tick: u64) {
    let number = generation.number();
    let clock = match generation.vault().extension::<RequestClock>() {
        Ok(clock) => clock,
        Err(e) => {
            println!("[gen {number}] host: cannot read the extension: {e}");
            return;
        }
    };
    if number != host.last_generation {
        let made_at = clock.created().duration_since(host.started).as_secs_f64();
        println!(
            "[gen {number}] host: new generation with RequestClock #{} made at +{made_at:.1} s; \
             host total so far: {} requests",
            clock.serial(),
            host.total_requests
        );
        host.last_generation = number;
    }
    for (name, func) in [("ext_greeter", "handle"), ("ext_stats", "report")] {
        let Some(plugin) = generation.find_plugin(name) else {
            println!("[gen {number}] {name}: not loaded");
            continue;
        };
        match plugin.invoke::<String>(func, args![tick]) {
            Ok(text) => {
                if func == "handle" {
                    host.total_requests += 1;
                }
                println!("[gen {number}] {name}: {text}");
            }
            Err(e) => println!("[gen {number}] {name}: error: {e}"),
        }
    }
    println!(
        "[gen {number}] host: {} requests in {:.0} s across every generation | this generation's clock #{}: {} requests in {:.1} s",
        host.total_requests,
        host.started.elapsed().as_secs_f64(),
        clock.serial(),
        clock.requests(),
        clock.age().as_secs_f64()
    );
}
