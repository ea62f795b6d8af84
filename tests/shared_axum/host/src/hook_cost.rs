//! `axum_host hook-cost <plugin folder> <work root> …`: what `hotswap_tokio::PluginTasks`'
//! task hooks cost per spawn and per poll, measured, not tested (BENCHMARKS.md). Each
//! measurement runs on a fresh two-worker runtime, without hooks and with them:
//!
//! * spawn: 100 000 empty tasks spawned from one task and awaited, per task (one spawn, one
//!   poll, one end: every hook once). With the hooks' root set to the host binary's folder,
//!   each spawn is attributed (`dladdr`, then a lock and map inserts, as for a plugin
//!   library); with another root, it is not (`dladdr` only);
//! * poll: one task that yields 1 000 000 times, per poll (the before/after poll hooks).
//!
//! Five runs of each; prints the median and the range in nanoseconds.

use std::path::Path;
use std::time::Instant;

use hotswap_tokio::PluginTasks;

const SPAWNS: u32 = 100_000;
const POLLS: u32 = 1_000_000;
const RUNS: usize = 5;

fn runtime(hooks: Option<&PluginTasks>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    if let Some(tasks) = hooks {
        tasks.install(&mut builder);
    }
    builder.build().unwrap()
}

/// Nanoseconds per task: spawn, run and await `SPAWNS` empty tasks.
fn per_spawn(hooks: Option<&PluginTasks>) -> f64 {
    runtime(hooks).block_on(async {
        tokio::spawn(async {
            let started = Instant::now();
            let handles: Vec<_> = (0..SPAWNS).map(|_| tokio::spawn(async {})).collect();
            for handle in handles {
                handle.await.unwrap();
            }
            started.elapsed().as_nanos() as f64 / f64::from(SPAWNS)
        })
        .await
        .unwrap()
    })
}

/// Nanoseconds per poll of a task that yields `POLLS` times.
fn per_poll(hooks: Option<&PluginTasks>) -> f64 {
    runtime(hooks).block_on(async {
        tokio::spawn(async {
            let started = Instant::now();
            for _ in 0..POLLS {
                tokio::task::yield_now().await;
            }
            started.elapsed().as_nanos() as f64 / f64::from(POLLS)
        })
        .await
        .unwrap()
    })
}

fn report(what: &str, measure: impl Fn() -> f64) -> f64 {
    let mut runs: Vec<f64> = (0..RUNS).map(|_| measure()).collect();
    runs.sort_by(f64::total_cmp);
    let median = runs[RUNS / 2];
    println!("{what}: median {median:.0} ns (runs {:.0}–{:.0})", runs[0], runs[RUNS - 1]);
    median
}

pub fn run(work: &Path) -> bool {
    let exe = std::env::current_exe().unwrap();
    let attributing = PluginTasks::new(exe.parent().unwrap());
    let elsewhere = PluginTasks::new(work);
    let bare = report("spawn, no hooks", || per_spawn(None));
    let outside = report("spawn, hooks, spawn not in a plugin library", || per_spawn(Some(&elsewhere)));
    let inside = report("spawn, hooks, spawn attributed", || per_spawn(Some(&attributing)));
    let poll_bare = report("poll, no hooks", || per_poll(None));
    let poll_hooked = report("poll, hooks (task not attributed)", || per_poll(Some(&elsewhere)));
    println!(
        "hook cost: per spawn +{:.0} ns not attributed, +{:.0} ns attributed; per poll +{:.0} ns",
        outside - bare,
        inside - bare,
        poll_hooked - poll_bare
    );
    println!("attributed spawns counted live at the end: {:?}", attributing.live_by_library());
    true
}
