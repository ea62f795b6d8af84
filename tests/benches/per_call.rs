//! Per-call cost of every way a host can call plugin code, at 1, 2 and 4 threads.
//!
//! Every variant runs `add(a, b)` on two `i64`s:
//!
//! * `direct`: a plain Rust call of `fn add` (the floor: the compiler inlines it);
//! * `dyn_fn`: a call through a `Box<dyn Fn(i64, i64) -> i64>`;
//! * `cached_handle`: `plugin.invoke_func("add", args![a, b])` on a `Plugin` handle fetched
//!   once, then a downcast of the result (plugin `greeter`, release build of greeter_v1);
//! * `find_plugin`: `manager.find_plugin("greeter")` and then the same call, on every call;
//! * `live_fn`: a live function handle (`vault.live_func::<fn(i64, i64) -> i64>("live_add")`,
//!   plugin `jobs`, release build of live_v1) fetched once, then `handle.call((a, b))`;
//! * `arcswap_floor`: the floor of any call that follows reloads: `ArcSwap::load` of a
//!   struct holding the plugin's `live_add` function pointer, then a call through it;
//! * `hot_fn`: a [`HotFn`] on `live_add` (`manager.hot_fn::<fn(i64, i64) -> i64>`), fetched
//!   once, `handle.call((a, b))`: follows reloads;
//! * `invoke_by_name`: `manager.invoke::<i64>("greeter", "add", args![a, b])`: by name,
//!   follows reloads, no handle;
//! * `cached_invoke`: `plugin.invoke::<i64>("add", args![a, b])` on a `Plugin` handle fetched
//!   once (pins its generation);
//! * `hot_lib_reloader`: the peer, hot-lib-reloader 0.8: the forwarding function its
//!   `#[hot_module]` generates for `hlr_add` (release build of `tests/plugins/hlr_peer`),
//!   which takes a read lock and looks the symbol up on every call; follows reloads;
//! * `mutex_libloading`: the pattern common hot-reload crates use: a
//!   `Mutex<libloading::Library>` locked, and `library.get(b"bench_add\0")` (a `dlsym`) on
//!   every call (release build of the bench_many fixture, opened by this benchmark).
//!
//! Threads: the same closure runs on N threads at once, released together by a barrier. Group
//! `per_call` reports wall time: the time the N threads took to make `iters` calls each,
//! divided by `iters` (with perfect scaling it equals the 1-thread figure; with more threads
//! than cores it cannot). Group `per_call_cpu` reports each thread's own CPU time per call
//! (`CLOCK_THREAD_CPUTIME_ID`, mean over the threads), which time-sharing of the cores does not
//! inflate but contention (cache-line transfers, atomic read-modify-writes) does; a thread
//! asleep on a lock uses no CPU, so for `mutex_libloading` the wall figure is the one to read.
//!
//! After criterion has run, the medians are copied to `target/bench-results/per_call.json`
//! for `report`.

mod common;

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, measurement::WallTime};
use hotswap_runtime::{HotFn, LiveFn, Plugin, PluginManager, args};
use hotswap_tests::{build_plugin_release, thread_cpu};

const VARIANTS: [&str; 11] = [
    "direct",
    "dyn_fn",
    "arcswap_floor",
    "hot_fn",
    "invoke_by_name",
    "cached_invoke",
    "hot_lib_reloader",
    "cached_handle",
    "find_plugin",
    "live_fn",
    "mutex_libloading",
];

/// The floor: what a call that follows reloads must do at least.
struct Floor {
    /// Keeps the library mapped while `add` may be called.
    _keep: LiveFn<fn(i64, i64) -> i64>,
    add: fn(i64, i64) -> i64,
}
const THREADS: [usize; 3] = [1, 2, 4];
const GROUPS: [(&str, Clock); 2] = [("per_call", Clock::Wall), ("per_call_cpu", Clock::ThreadCpu)];

/// The equivalent of the plugins' `add`.
fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

#[derive(Debug, Clone, Copy)]
enum Clock {
    Wall,
    ThreadCpu,
}

/// Runs `iters` calls of `f` on each of `threads` threads started together, and returns the
/// per-thread time for `iters` calls on the chosen clock.
fn run_threads<F: Fn(i64, i64) -> i64 + Sync>(f: &F, threads: usize, iters: u64, clock: Clock) -> Duration {
    let barrier = Barrier::new(threads);
    let results: Vec<(Instant, Instant, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let cpu = thread_cpu();
                    let start = Instant::now();
                    for i in 0..iters {
                        black_box(f(black_box(i as i64), black_box(t as i64)));
                    }
                    let end = Instant::now();
                    (start, end, thread_cpu() - cpu)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread panicked")).collect()
    });
    match clock {
        Clock::Wall => {
            let start = results.iter().map(|r| r.0).min().unwrap();
            let end = results.iter().map(|r| r.1).max().unwrap();
            end - start
        }
        Clock::ThreadCpu => results.iter().map(|r| r.2).sum::<Duration>() / threads as u32,
    }
}

fn bench<F: Fn(i64, i64) -> i64 + Sync>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, clock: Clock, f: F) {
    assert_eq!(f(40, 2), 42, "{name} computes the wrong sum");
    for threads in THREADS {
        group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
            b.iter_custom(|iters| run_threads(&f, threads, iters, clock))
        });
    }
}

struct Fixtures {
    manager: PluginManager,
    greeter: Plugin,
    live: LiveFn<fn(i64, i64) -> i64>,
    hot: HotFn<fn(i64, i64) -> i64>,
    floor: ArcSwap<Floor>,
    library: Mutex<libloading::Library>,
    _plugins: tempfile::TempDir,
}

impl Fixtures {
    fn new() -> Self {
        let plugins = tempfile::tempdir().unwrap();
        let greeter = build_plugin_release("tests/plugins/greeter_v1");
        let jobs = build_plugin_release("tests/plugins/live_v1");
        let bench = build_plugin_release("tests/plugins/bench_many");
        greeter.install(plugins.path());
        jobs.install(plugins.path());
        let manager = PluginManager::builder(plugins.path()).build().unwrap();
        manager.load_plugins().unwrap();
        let greeter = manager.find_plugin("greeter").expect("greeter is loaded");
        let live = manager
            .current()
            .unwrap()
            .vault()
            .live_func::<fn(i64, i64) -> i64>("live_add")
            .expect("live_v1 has live_add");
        let hot = manager.hot_fn::<fn(i64, i64) -> i64>("live_add").expect("live_v1 has live_add");
        // SAFETY: `_keep` holds the `LiveFn` the pointer came from, which keeps its library
        // mapped for as long as the `Floor` exists; the pointer is only called through it.
        let floor = ArcSwap::from_pointee(Floor { add: unsafe { live.as_raw() }, _keep: live.clone() });
        let hlr_dir = plugins.path().join("hlr");
        std::fs::create_dir_all(&hlr_dir).unwrap();
        std::fs::copy(common::build_hlr_peer(0), hlr_dir.join("libhlr_peer.so")).unwrap();
        common::HLR_DIR.set(hlr_dir).unwrap();
        // Our own copy at a path nobody else opens, so dlopen hands us our own mapping.
        let copy = plugins.path().join("bench-dlopen").join("libbench_many.so");
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(&bench.library, &copy).unwrap();
        // SAFETY: the file is a release build of our own fixture, built by this toolchain; its
        // initialisers are Rust std's. It stays open until the end of the process.
        let library = unsafe { libloading::Library::new(&copy) }.expect("dlopen the bench fixture");
        Fixtures { manager, greeter, live, hot, floor, library: Mutex::new(library), _plugins: plugins }
    }
}

fn main() {
    let started = std::time::SystemTime::now();
    let load_start = common::loadavg();
    let fx = Fixtures::new();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args();
    for (group_name, clock) in GROUPS {
        let mut group = criterion.benchmark_group(group_name);
        bench(&mut group, "direct", clock, add);
        let boxed: Box<dyn Fn(i64, i64) -> i64 + Send + Sync> = Box::new(add);
        bench(&mut group, "dyn_fn", clock, |a, b| black_box(&boxed)(a, b));
        bench(&mut group, "arcswap_floor", clock, |a, b| {
            let floor = black_box(&fx.floor).load();
            (floor.add)(a, b)
        });
        bench(&mut group, "hot_fn", clock, |a, b| black_box(&fx.hot).call((a, b)));
        bench(&mut group, "invoke_by_name", clock, |a, b| {
            black_box(&fx.manager).invoke::<i64>("greeter", "add", args![a, b]).unwrap()
        });
        bench(&mut group, "cached_invoke", clock, |a, b| {
            black_box(&fx.greeter).invoke::<i64>("add", args![a, b]).unwrap()
        });
        bench(&mut group, "hot_lib_reloader", clock, common::hlr::hlr_add);
        bench(&mut group, "cached_handle", clock, |a, b| {
            fx.greeter.invoke_func("add", args![a, b]).unwrap().downcast::<i64>().unwrap()
        });
        bench(&mut group, "find_plugin", clock, |a, b| {
            fx.manager
                .find_plugin("greeter")
                .unwrap()
                .invoke_func("add", args![a, b])
                .unwrap()
                .downcast::<i64>()
                .unwrap()
        });
        bench(&mut group, "live_fn", clock, |a, b| black_box(&fx.live).call((a, b)));
        bench(&mut group, "mutex_libloading", clock, |a, b| {
            let library = fx.library.lock().unwrap();
            // SAFETY: `bench_add` is the fixture's `extern "C" fn(i64, i64) -> i64`; the
            // library stays open while the symbol is used (the guard borrows it).
            let add = unsafe { library.get::<extern "C" fn(i64, i64) -> i64>(b"bench_add\0") }.unwrap();
            add(a, b)
        });
        group.finish();
    }
    criterion.final_summary();
    collect_results(started, load_start);
}

/// Copies criterion's median per-call times (ns) into `per_call.json`: only estimates written
/// by this run (a filtered run leaves the others out rather than report stale figures).
fn collect_results(started: std::time::SystemTime, load_start: String) {
    let mut groups = serde_json::Map::new();
    for (group, _) in GROUPS {
        let mut variants = serde_json::Map::new();
        for variant in VARIANTS {
            let mut by_threads = serde_json::Map::new();
            for threads in THREADS {
                let path = common::criterion_dir()
                    .join(group)
                    .join(variant)
                    .join(threads.to_string())
                    .join("new/estimates.json");
                let fresh = std::fs::metadata(&path).and_then(|m| m.modified()).is_ok_and(|t| t >= started);
                let Ok(text) = std::fs::read_to_string(&path) else { continue };
                if !fresh {
                    continue;
                }
                let estimates: serde_json::Value = serde_json::from_str(&text).unwrap();
                by_threads.insert(threads.to_string(), estimates["median"]["point_estimate"].clone());
            }
            variants.insert(variant.to_string(), by_threads.into());
        }
        groups.insert(group.to_string(), variants.into());
    }
    let results = serde_json::json!({
        "unit": "ns per call, per thread (criterion median)",
        "groups": groups,
        "loadavg_start": load_start,
        "loadavg_end": common::loadavg(),
    });
    common::write_results("per_call", &results);
}
