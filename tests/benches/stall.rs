//! Caller stall during reloads: how long a call can take while the library it calls is being
//! replaced. Plain `main` (no criterion), prints a table.
//!
//! Caller threads (1, then 2) call a plugin function without pause while the plugin is
//! reloaded `RELOADS` times, alternating two release builds. Each caller times every call on
//! the wall clock (`Instant`, i.e. `clock_gettime(CLOCK_MONOTONIC)` through the vDSO), back to
//! back: a call's time runs from the end of the previous one, so it includes one clock read
//! and the bookkeeping (tens of ns) and any moment the thread was not running.
//!
//! On 2 CPUs shared with other work, most long calls are the caller preempted: runnable,
//! waiting for a CPU. So after every call longer than `LONG` the caller also reads how long it
//! has waited for a CPU so far (the kernel's `run_delay`, second field of
//! `/proc/thread-self/schedstat`) and records the call's time less the wait since its previous
//! reading ("less waiting for a CPU"): what remains is time the caller was blocked (a lock, a
//! page fault) or running slow code. The reading is not timed (the next call's time starts
//! after it).
//!
//! Each round, the next build is renamed into place (staged beforehand under a hidden name,
//! outside the timing) and the library's own machinery notices and reloads it, as in the
//! `*_e2e` rows of the reload benchmark:
//!
//! * `hot_fn`: hotswap, a [`HotFn`] (`manager.hot_fn::<fn(i64, i64) -> i64>("live_add")`,
//!   plugin `jobs`, release builds of live_v1 ↔ live_v2), the recommended hot path;
//! * `invoke_by_name`: hotswap, `manager.invoke::<i64>("greeter", "add", args![2, 3])`
//!   (release builds of greeter_v1 ↔ greeter_v2);
//!
//! both on a manager with `reload_on_new_builds(Duration::ZERO)` and otherwise the defaults
//! (a replaced generation is freed 5 s later, or when 16 wait, on the manager's reaper
//! thread; 2 released libraries stay mapped, older ones are closed);
//! * `hot_fn_free_now`, `invoke_by_name_free_now`: the same with `free_delay(ZERO)` (the
//!   replaced generation is freed within the reload);
//!
//! * `hot_lib_reloader`: the peer, hot-lib-reloader 0.8, its `hot_module` function `hlr_add`
//!   (release builds of `tests/plugins/hlr_peer` with two biases), debounce 1 ms.
//!
//! The reload window opens at the rename and closes `TAIL` after the last caller got its first
//! answer from the new build (the caller tells the build by the answer). Its twin, the steady
//! window, opens `SETTLE` later, lasts as long, and has no reload in it: the same machine
//! noise (scheduler preemption on shared CPUs) with no reload. For each window, the worst
//! (longest) call that overlapped it, over all callers, as timed and less waiting for a CPU;
//! and a histogram of every call in the
//! reload windows and in the steady windows (p50, p99, p99.9).
//!
//! Writes `target/bench-results/stall.json` for `report`.

mod common;

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::Release};
use std::time::{Duration, Instant};

use hotswap_runtime::{PluginManagerBuilder, args};
use hotswap_tests::build_plugin_release;
use serde_json::json;

/// Measured reloads per series, after `WARM_UP` unmeasured ones (an even total, so the peer
/// ends each series on the build it started with).
const RELOADS: usize = 60;
const WARM_UP: usize = 4;
/// Caller thread counts, one series each.
const CALLERS: [usize; 2] = [1, 2];
/// A reload window lasts until this long after the last caller saw the new build.
const TAIL: Duration = Duration::from_millis(2);
/// Quiet time before a reload window and before a steady window.
const SETTLE: Duration = Duration::from_millis(25);
/// How often the coordinating thread looks at the clock in every window (both kinds alike).
const POLL: Duration = Duration::from_micros(200);
/// Calls longer than this also read the caller's wait for a CPU.
const LONG: Duration = Duration::from_micros(5);
/// The longest a new build may take to be served before the run is given up.
const PATIENCE: Duration = Duration::from_secs(20);

/// Durations in ns, log-linear: exact below 64 ns, then 32 buckets per power of two (≤ 3%
/// wide). A percentile is given as its bucket's upper bound.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram { counts: vec![0; 64 + 58 * 32], total: 0, max: 0 }
    }

    fn index(ns: u64) -> usize {
        if ns < 64 {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros() as usize; // ≥ 6
        64 + (exp - 6) * 32 + ((ns >> (exp - 5)) & 31) as usize
    }

    fn upper_bound(index: usize) -> u64 {
        if index < 64 {
            return index as u64;
        }
        let (exp, sub) = ((index - 64) / 32 + 6, ((index - 64) % 32) as u64);
        ((32 + sub) << (exp - 5)) + (1 << (exp - 5)) - 1
    }

    fn add(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The `p`th percentile (nearest rank), ns.
    fn percentile(&self, p: f64) -> u64 {
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::upper_bound(index).min(self.max);
            }
        }
        self.max
    }

    fn summary(&self) -> serde_json::Value {
        json!({
            "calls": self.total,
            "p50_ns": self.percentile(50.0),
            "p99_ns": self.percentile(99.0),
            "p999_ns": self.percentile(99.9),
            "max_ns": self.max,
        })
    }
}

/// What the coordinating thread and the callers share.
struct Shared {
    /// Odd while window `(seq - 1) / 2` is open: window `2r` is reload `r`'s, `2r + 1` its
    /// steady twin.
    seq: AtomicU64,
    stop: AtomicBool,
    /// Per caller: how many times it saw the serving build change, and when it last did (ns
    /// since `base`).
    switches: Vec<AtomicU64>,
    switched_at: Vec<AtomicU64>,
    base: Instant,
}

/// One caller's record.
struct CallerRecord {
    /// The worst call (ns) that overlapped each window.
    worst: Vec<u64>,
    /// The same, less the caller's wait for a CPU.
    worst_on_cpu: Vec<u64>,
    reload: Histogram,
    steady: Histogram,
}

impl CallerRecord {
    fn add(&mut self, window: u64, ns: u64, on_cpu: u64) {
        let Some(worst) = self.worst.get_mut(window as usize) else { return };
        *worst = (*worst).max(ns);
        let worst = &mut self.worst_on_cpu[window as usize];
        *worst = (*worst).max(on_cpu);
        if window.is_multiple_of(2) { &mut self.reload } else { &mut self.steady }.add(ns);
    }
}

/// This thread's total wait for a CPU (`run_delay`, ns) from its open
/// `/proc/thread-self/schedstat`.
fn cpu_wait(schedstat: &std::fs::File) -> u64 {
    let mut buf = [0_u8; 96];
    let n = schedstat.read_at(&mut buf, 0).expect("reading /proc/thread-self/schedstat");
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    text.split_whitespace().nth(1).and_then(|f| f.parse().ok()).expect("schedstat's run_delay")
}

/// Calls `call` until told to stop, timing each call back to back and noting which windows
/// it overlapped; tells the coordinating thread when the answer changes between `answers`.
fn caller(shared: &Shared, id: usize, answers: [i64; 2], call: &(impl Fn() -> i64 + Sync)) -> CallerRecord {
    let windows = 2 * RELOADS;
    let mut record = CallerRecord {
        worst: vec![0; windows],
        worst_on_cpu: vec![0; windows],
        reload: Histogram::new(),
        steady: Histogram::new(),
    };
    let schedstat = std::fs::File::open("/proc/thread-self/schedstat").expect("opening /proc/thread-self/schedstat");
    let long = LONG.as_nanos() as u64;
    let mut waited_before = cpu_wait(&schedstat);
    let mut serving = 0;
    let mut prev = Instant::now();
    let mut seq_prev = shared.seq.load(Relaxed);
    while !shared.stop.load(Relaxed) {
        let answer = call();
        let now = Instant::now();
        let seq = shared.seq.load(Relaxed);
        let ns = (now - prev).as_nanos() as u64;
        prev = now;
        let mut on_cpu = ns;
        if ns > long {
            let waited = cpu_wait(&schedstat);
            on_cpu = ns.saturating_sub(waited - waited_before);
            waited_before = waited;
            prev = Instant::now();
        }
        // Every window open at some time in [prev, now]: those of the odd sequence numbers
        // from the one read after `prev` to the one read after `now`.
        for s in seq_prev..=seq {
            if s % 2 == 1 {
                record.add((s - 1) / 2, ns, on_cpu);
            }
        }
        seq_prev = seq;
        if answer != answers[serving] {
            assert_eq!(answer, answers[1 - serving], "an answer from neither build");
            serving = 1 - serving;
            shared.switched_at[id].store((now - shared.base).as_nanos() as u64, Relaxed);
            shared.switches[id].fetch_add(1, Release);
        }
    }
    record
}

/// Sleeps in steps of `POLL` until `done` says so, or until `PATIENCE` has passed.
fn poll_until(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "the new build was never served");
        std::thread::sleep(POLL);
    }
}

/// One series: `callers` threads calling `call` while `WARM_UP + RELOADS` rounds each rename
/// the build `stage(i)` prepared (`(staged, target)`) into place.
fn series(
    callers: usize,
    answers: [i64; 2],
    call: impl Fn() -> i64 + Sync,
    mut stage: impl FnMut(usize) -> (PathBuf, PathBuf),
) -> serde_json::Value {
    let shared = Shared {
        seq: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        switches: (0..callers).map(|_| AtomicU64::new(0)).collect(),
        switched_at: (0..callers).map(|_| AtomicU64::new(0)).collect(),
        base: Instant::now(),
    };
    let load_start = common::loadavg();
    let mut lengths: [Vec<f64>; 2] = Default::default();
    let records: Vec<CallerRecord> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..callers)
            .map(|id| {
                scope.spawn({
                    let (shared, call) = (&shared, &call);
                    move || caller(shared, id, answers, call)
                })
            })
            .collect();
        std::thread::sleep(SETTLE);
        for i in 0..WARM_UP + RELOADS {
            let measured = i >= WARM_UP;
            let (staged, target) = stage(i);
            std::thread::sleep(SETTLE);
            let open = Instant::now();
            if measured {
                shared.seq.fetch_add(1, Relaxed);
            }
            std::fs::rename(&staged, &target).unwrap();
            let all_saw_it = || shared.switches.iter().all(|n| n.load(Relaxed) > i as u64);
            poll_until(all_saw_it);
            let last = shared.switched_at.iter().map(|t| t.load(Relaxed)).max().unwrap();
            let end = shared.base + Duration::from_nanos(last) + TAIL;
            poll_until(|| Instant::now() >= end);
            if !measured {
                continue;
            }
            shared.seq.fetch_add(1, Relaxed);
            let length = open.elapsed();
            lengths[0].push(common::ms(length));
            std::thread::sleep(SETTLE);
            let open = Instant::now();
            shared.seq.fetch_add(1, Relaxed);
            poll_until(|| open.elapsed() >= length);
            shared.seq.fetch_add(1, Relaxed);
            lengths[1].push(common::ms(open.elapsed()));
        }
        shared.stop.store(true, Relaxed);
        threads.into_iter().map(|t| t.join().expect("caller panicked")).collect()
    });
    let load_end = common::loadavg();

    let (mut reload, mut steady) = (Histogram::new(), Histogram::new());
    for r in &records {
        reload.merge(&r.reload);
        steady.merge(&r.steady);
    }
    // Per window, the worst over the callers, µs.
    let worst = |kind: usize, of: fn(&CallerRecord) -> &Vec<u64>| -> Vec<f64> {
        (0..RELOADS).map(|r| records.iter().map(|c| of(c)[2 * r + kind]).max().unwrap() as f64 / 1000.0).collect()
    };
    let stats = |mut us: Vec<f64>| {
        json!({
            "per_window": us.clone(),
            "median": common::median(&mut us),
            "p90": common::percentile(&mut us, 90.0),
            "max": common::percentile(&mut us, 100.0),
        })
    };
    let summary = |kind: usize, hist: &Histogram, lengths: &mut Vec<f64>| {
        json!({
            "worst_us": stats(worst(kind, |c| &c.worst)),
            "worst_on_cpu_us": stats(worst(kind, |c| &c.worst_on_cpu)),
            "window_median_ms": common::median(lengths),
            "calls": hist.summary(),
        })
    };
    let [reload_lengths, steady_lengths] = &mut lengths;
    json!({
        "callers": callers,
        "reloads": RELOADS,
        "reload": summary(0, &reload, reload_lengths),
        "steady": summary(1, &steady, steady_lengths),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
    })
}

fn main() {
    // Only the series whose name contains the first argument, if any.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    let load_start = common::loadavg();
    let mut results = serde_json::Map::new();
    for callers in CALLERS {
        for free_now in [false, true] {
            let key = |path: &str| format!("{path}{}/{callers}", if free_now { "_free_now" } else { "" });
            let configure = |b: PluginManagerBuilder| if free_now { b.free_delay(Duration::ZERO) } else { b };
            if key("hot_fn").contains(&filter) {
                let folder = common::Alternating::new(
                    &build_plugin_release("tests/plugins/live_v1"),
                    &build_plugin_release("tests/plugins/live_v2"),
                    configure,
                );
                let add = folder.manager.hot_fn::<fn(i64, i64) -> i64>("live_add").expect("live_v1 has live_add");
                let call = || add.call((black_box(1), black_box(2)));
                results.insert(key("hot_fn"), series(callers, [3, 103], call, |i| folder.stage(i)));
            }
            if key("invoke_by_name").contains(&filter) {
                let folder = common::Alternating::new(
                    &build_plugin_release("tests/plugins/greeter_v1"),
                    &build_plugin_release("tests/plugins/greeter_v2"),
                    configure,
                );
                let call = || {
                    let (a, b) = (black_box(2_i64), black_box(3_i64));
                    folder.manager.invoke::<i64>("greeter", "add", args![a, b]).unwrap()
                };
                results.insert(key("invoke_by_name"), series(callers, [5, 6], call, |i| folder.stage(i)));
            }
        }
    }
    // The peer last: its module is a static, so it serves in this process from now on.
    if CALLERS.iter().any(|n| format!("hot_lib_reloader/{n}").contains(&filter)) {
        let peer = common::HlrPeer::start();
        for callers in CALLERS {
            let key = format!("hot_lib_reloader/{callers}");
            if key.contains(&filter) {
                let call = || common::hlr::hlr_add(black_box(1), black_box(2));
                results.insert(key, series(callers, common::HlrPeer::ANSWERS, call, |i| peer.stage(i)));
            }
        }
    }
    results.insert("loadavg_start".into(), json!(load_start));
    results.insert("loadavg_end".into(), json!(common::loadavg()));
    results.insert("tail_ms".into(), json!(common::ms(TAIL)));
    results.insert("settle_ms".into(), json!(common::ms(SETTLE)));
    let results = serde_json::Value::Object(results);
    print_table(&results);
    common::write_results("stall", &results);
}

fn print_table(r: &serde_json::Value) {
    println!(
        "\n| path / callers | worst per reload: median, max µs | less waiting for a CPU | worst per steady window | less waiting for a CPU | reload p50 / p99 / p99.9 ns | steady p50 / p99 / p99.9 ns | windows ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, s) in r.as_object().unwrap().iter().filter(|(_, v)| v.is_object()) {
        let w = |kind: &str, what: &str| {
            let x = &s[kind][what];
            format!("{:.1}, {:.1}", x["median"].as_f64().unwrap(), x["max"].as_f64().unwrap())
        };
        let p = |kind: &str| {
            let c = &s[kind]["calls"];
            format!("{} / {} / {}", c["p50_ns"], c["p99_ns"], c["p999_ns"])
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {:.2} |",
            w("reload", "worst_us"),
            w("reload", "worst_on_cpu_us"),
            w("steady", "worst_us"),
            w("steady", "worst_on_cpu_us"),
            p("reload"),
            p("steady"),
            s["reload"]["window_median_ms"].as_f64().unwrap()
        );
    }
    println!("load average: {} / {}", r["loadavg_start"], r["loadavg_end"]);
}
