//! The livex demo's host.
//!
//! Once a second it asks plugin `jobs` to schedule a job. The plugin answers with a
//! [`LiveData`] envelope (the job, serialised, stamped with the version that wrote it), which
//! the host keeps in its own queue with a due time a few seconds later. Due jobs go to
//! whichever generation is current then, so jobs scheduled before a reload are run by the
//! new code, which reads them with its own type. A job the current code cannot run stays in
//! the queue and is retried; the host never drops one. Every round the host also calls the
//! live function `live_price` through a typed handle fetched by name from the vault.
//!
//! The host never names the plugin's `LiveJob`: between host and plugin only std types and
//! `hotswap_runtime` types cross (`u64`, `String`, `LiveData`, `fn(i64) -> i64`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hotswap_runtime::{ControlServer, Generation, LiveData, PluginManager, args, default_socket_path};

#[derive(Parser)]
#[command(about = "hotswap livex demo host")]
struct Cli {
    /// Folder of plugin libraries written by `cargo xtask build`.
    #[arg(long, default_value = "bin")]
    plugins: PathBuf,
    /// Control socket [default: as `cargo xtask reload`: $HOTSWAP_SOCKET, …].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Milliseconds between rounds (one job scheduled per round).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Seconds from scheduling a job to running it.
    #[arg(long, default_value_t = 6)]
    delay_s: u64,
    /// Seconds before a job that failed is tried again.
    #[arg(long, default_value_t = 3)]
    retry_s: u64,
    /// Stop after this many rounds (0: run until killed).
    #[arg(long, default_value_t = 0)]
    rounds: u64,
}

/// A job in the host's queue. The host keeps the envelope as plain data; it cannot read it.
struct QueuedJob {
    id: u64,
    due: Instant,
    attempts: u32,
    data: LiveData,
}

/// What the host keeps across reloads.
struct HostState {
    queue: VecDeque<QueuedJob>,
    next_id: u64,
    ran: u64,
    failed: u64,
}

const PLUGIN: &str = "jobs";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let manager = PluginManager::builder(&cli.plugins).free_delay(Duration::from_secs(2)).build()?;
    let report = manager.load_plugins().context("loading the first generation")?;
    println!("loaded generation {} in {:.1} ms", report.generation, report.total_ms);
    let socket = cli.socket.clone().unwrap_or_else(default_socket_path);
    let _control = ControlServer::start(manager.clone(), &socket)?;
    println!("listening for reloads on {} (run demo/livex/make-v2.sh && demo/livex/reload.sh)", socket.display());

    let mut host = HostState { queue: VecDeque::new(), next_id: 1, ran: 0, failed: 0 };
    let mut tick: u64 = 0;
    loop {
        tick += 1;
        if let Some(generation) = manager.current() {
            round(&cli, &mut host, &generation, tick);
        }
        if cli.rounds != 0 && tick >= cli.rounds {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(cli.interval_ms));
    }
}

/// One round on `generation`: schedule a job, run the due ones, call the live function.
fn round(cli: &Cli, host: &mut HostState, generation: &Arc<Generation>, tick: u64) {
    let number = generation.number();
    let Some(plugin) = generation.find_plugin(PLUGIN) else {
        println!("[gen {number}] no plugin `{PLUGIN}` in this generation; {} job(s) kept", host.queue.len());
        return;
    };
    let tag = format!("[gen {number}] {PLUGIN} {}", plugin.version());

    // Schedule: the plugin makes the job, the host keeps the envelope.
    let id = host.next_id;
    match plugin.invoke::<LiveData>("schedule", args![id, format!("order #{id} from tick {tick}")]) {
        Ok(data) => {
            host.next_id += 1;
            println!(
                "{tag}: scheduled job {id} ({} by {}, {} bytes), due in {} s; queue {}",
                data.type_name,
                data.written_by,
                data.bytes.len(),
                cli.delay_s,
                host.queue.len() + 1
            );
            host.queue.push_back(QueuedJob {
                id,
                due: Instant::now() + Duration::from_secs(cli.delay_s),
                attempts: 0,
                data,
            });
        }
        Err(e) => println!("{tag}: schedule failed: {e}"),
    }

    // Run the due jobs on the current generation; keep the ones that fail.
    let now = Instant::now();
    let mut kept = VecDeque::with_capacity(host.queue.len());
    while let Some(mut job) = host.queue.pop_front() {
        if job.due > now {
            kept.push_back(job);
            continue;
        }
        job.attempts += 1;
        match plugin.invoke::<String>("run", args![job.data.clone()]) {
            Ok(text) => {
                host.ran += 1;
                println!(
                    "{tag}: job {} written by {} run by {}: {text}",
                    job.id,
                    job.data.written_by,
                    plugin.version()
                );
            }
            Err(e) => {
                host.failed += 1;
                println!(
                    "{tag}: job {} (written by {}) failed, attempt {}, kept for a retry in {} s: {e}",
                    job.id, job.data.written_by, job.attempts, cli.retry_s
                );
                job.due = now + Duration::from_secs(cli.retry_s);
                kept.push_back(job);
            }
        }
    }
    host.queue = kept;

    // The live function, fetched by name and signature from this generation's vault.
    let qty = (tick % 5 + 1) as i64;
    match generation.vault().live_func::<fn(i64) -> i64>("live_price") {
        Ok(price) => println!(
            "{tag}: live_price({qty}) = {}   [ran {}, failed attempts {}, queued {}]",
            price.call((qty,)),
            host.ran,
            host.failed,
            host.queue.len()
        ),
        Err(e) => println!("{tag}: live_price: {e}"),
    }
}
