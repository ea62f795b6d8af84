//! Reload latency, excluding cargo: `manager.reload()` on release builds already in the
//! plugin folder. Plain `main` (no criterion): a reload maps a new library that is never
//! unmapped, so the sample count is fixed and small.
//!
//! Scenarios, each with its own manager and plugin folder:
//!
//! * `one_changed`: one plugin (`greeter`) whose file really changes on every reload: the
//!   release builds of greeter_v1 and greeter_v2 are both in the folder, and before each
//!   reload the one to load is made the newest (its mtime set, outside the timing);
//! * `one_fresh`: one plugin, the same file every time, with `reuse_unchanged(false)`;
//! * `ten_fresh`: ten plugins (the bench_many fixture built under ten names), all loaded
//!   afresh on every reload (`reuse_unchanged(false)`);
//! * `ten_one_changed`: nine of those plus `greeter` alternating as in `one_changed`, with the
//!   default `reuse_unchanged(true)`: the usual case of one edited plugin among ten.
//!
//! * `trigger_e2e`: end to end, with the built-in trigger
//!   (`reload_on_new_builds(Duration::ZERO)`): from the rename of the next build of
//!   `greeter` into the folder to the return of the first `manager.invoke` that answers with
//!   the new code (the caller spins on the call, as a busy server would);
//! * `hot_lib_reloader_e2e` (as built only): the same for the peer, hot-lib-reloader 0.8:
//!   from the rename of the next build of `libhlr_peer.so` over the watched file to the
//!   return of the first call of its `hot_module` function that answers with the new code;
//!   its debounce is set to its least, 1 ms.
//!
//! The baseline, measured in the same run: what any loader must do at least, a copy of the
//! library to a fresh path plus `dlopen(RTLD_NOW)` of it. The parts of the runtime's `open`
//! stage are timed alone too: reading the file, its sha256, `inspect` (ELF parse and
//! fingerprint), the copy, `dlopen`.
//!
//! Writes `target/bench-results/reload.json` for `report` and prints a table.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{make_newest, median, ms, percentile};
use hotswap_runtime::{PluginManager, ReloadReport, args};
use hotswap_tests::{BuiltPlugin, build_plugin_release, build_plugin_release_with_env};
use serde_json::json;

const WARM_UP: usize = 5;
/// Renames for the end-to-end scenarios.
const SAMPLES_E2E: usize = 40;
/// The longest a new build may take to be served before the run is given up.
const E2E_PATIENCE: Duration = Duration::from_secs(20);

const SAMPLES_ONE: usize = 60;
const SAMPLES_TEN: usize = 25;

/// Timings of one scenario.
#[derive(Default)]
struct Samples {
    /// Wall time of `manager.reload()`, ms.
    wall: Vec<f64>,
    /// The report's `total_ms`.
    total: Vec<f64>,
    /// The report's generation stages, ms.
    stages: BTreeMap<String, Vec<f64>>,
    /// Per-plugin stages summed over the plugins of a reload, ms.
    plugin_stages: BTreeMap<String, Vec<f64>>,
    /// Right after each reload, under the same conditions: a copy of each library the reload
    /// loaded to a fresh path plus its `dlopen`, ms.
    paired_baseline: Vec<f64>,
}

impl Samples {
    fn add(&mut self, wall: Duration, report: &ReloadReport, baseline: Duration) {
        self.wall.push(ms(wall));
        self.paired_baseline.push(ms(baseline));
        self.total.push(report.total_ms);
        for (stage, t) in &report.stage_ms {
            self.stages.entry(stage.to_string()).or_default().push(*t);
        }
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for plugin in &report.plugins {
            for (stage, t) in &plugin.stage_ms {
                *sums.entry(stage.to_string()).or_default() += *t;
            }
        }
        for (stage, t) in sums {
            self.plugin_stages.entry(stage).or_default().push(t);
        }
    }

    fn summary(&mut self, plugins: usize, loaded: usize) -> serde_json::Value {
        let stages = |m: &mut BTreeMap<String, Vec<f64>>| -> serde_json::Map<String, serde_json::Value> {
            m.iter_mut().map(|(k, v)| (k.clone(), json!(median(v)))).collect()
        };
        json!({
            "plugins": plugins,
            "loaded_per_reload": loaded,
            "samples": self.wall.len(),
            "median_ms": median(&mut self.wall),
            "p90_ms": percentile(&mut self.wall, 90.0),
            "min_ms": percentile(&mut self.wall, 0.0),
            "report_total_median_ms": median(&mut self.total),
            "paired_baseline_median_ms": median(&mut self.paired_baseline),
            "stage_median_ms": stages(&mut self.stages),
            "plugin_stage_median_ms": stages(&mut self.plugin_stages),
        })
    }
}

/// Runs `reload` `WARM_UP + samples` times; `before(i)` prepares reload `i` outside the timing.
fn measure(
    manager: &PluginManager,
    samples: usize,
    mut before: impl FnMut(usize),
    mut check: impl FnMut(usize, &ReloadReport),
) -> Samples {
    let mut out = Samples::default();
    let work = tempfile::tempdir().unwrap();
    for i in 0..WARM_UP + samples {
        before(i);
        let t = Instant::now();
        let report = manager.reload().expect("reload");
        let wall = t.elapsed();
        check(i, &report);
        let loaded: Vec<&Path> =
            report.plugins.iter().filter(|p| p.note == "loaded").map(|p| p.file.as_path()).collect();
        let baseline = copy_dlopen(&loaded, &work.path().join(i.to_string()));
        if i >= WARM_UP {
            out.add(wall, &report, baseline);
        }
    }
    out
}

/// Copies each library to a fresh path in `dir` and `dlopen`s it (never closed, as the runtime
/// does), and returns the time it took.
fn copy_dlopen(libraries: &[&Path], dir: &Path) -> Duration {
    std::fs::create_dir_all(dir).unwrap();
    let t = Instant::now();
    for (n, library) in libraries.iter().enumerate() {
        let copy = dir.join(format!("{n}.so"));
        std::fs::write(&copy, std::fs::read(library).unwrap()).unwrap();
        // SAFETY: a release build of one of our fixtures, built by this toolchain, that the
        // runtime has just accepted; its initialisers are Rust std's. Never closed.
        let lib =
            unsafe { libloading::os::unix::Library::open(Some(&copy), libc::RTLD_NOW | libc::RTLD_LOCAL) }.unwrap();
        std::mem::forget(lib);
    }
    t.elapsed()
}

fn manager(dir: &Path, reuse_unchanged: bool) -> PluginManager {
    let manager = PluginManager::builder(dir).reuse_unchanged(reuse_unchanged).build().unwrap();
    manager.load_plugins().expect("first load");
    manager
}

fn main() {
    let load_start = common::loadavg();
    let v1 = build_plugin_release("tests/plugins/greeter_v1");
    let v2 = build_plugin_release("tests/plugins/greeter_v2");
    let many: Vec<BuiltPlugin> = (0..10)
        .map(|i| {
            let name = format!("bench_{i:02}");
            build_plugin_release_with_env("tests/plugins/bench_many", &name, &[("BENCH_PLUGIN_NAME", &name)])
        })
        .collect();
    let size_kib = |p: &BuiltPlugin| std::fs::metadata(&p.library).unwrap().len() / 1024;
    eprintln!("greeter release build: {} KiB; bench_many: {} KiB", size_kib(&v1), size_kib(&many[0]));
    let mut results = serde_json::Map::new();
    results.insert("baseline_greeter".into(), baseline(&v1.library, SAMPLES_ONE));
    results.insert("baseline_bench_many".into(), baseline(&many[0].library, SAMPLES_ONE));
    scenarios(&mut results, "", &v1, &v2, &many);
    results.insert("hot_lib_reloader_e2e".into(), hot_lib_reloader_e2e());

    // The same with the debug info kept in the library (`cargo xtask build` with
    // HOTSWAP_KEEP_DEBUGINFO=1, as every build was before it split the debug info out), to
    // show what the split buys. The nine other plugins of `ten_one_changed` are not read
    // (unchanged), so they stay as built; `ten_fresh` is not run again.
    let keep = [("HOTSWAP_KEEP_DEBUGINFO", "1")];
    let k1 = build_plugin_release_with_env("tests/plugins/greeter_v1", "keep", &keep);
    let k2 = build_plugin_release_with_env("tests/plugins/greeter_v2", "keep", &keep);
    eprintln!("greeter with its debug info kept in: {} KiB", size_kib(&k1));
    results.insert("baseline_greeter_kept".into(), baseline(&k1.library, SAMPLES_ONE));
    scenarios(&mut results, "_kept", &k1, &k2, &many);
    // Once more at the end: the page cache and the machine have changed since the first.
    results.insert("baseline_greeter_end".into(), baseline(&v1.library, SAMPLES_ONE));

    results.insert("loadavg_start".into(), json!(load_start));
    results.insert("loadavg_end".into(), json!(common::loadavg()));
    let results = serde_json::Value::Object(results);
    print_table(&results);
    common::write_results("reload", &results);
}

/// The scenarios, on these builds; results named `<scenario><suffix>`.
fn scenarios(
    results: &mut serde_json::Map<String, serde_json::Value>,
    suffix: &str,
    v1: &BuiltPlugin,
    v2: &BuiltPlugin,
    many: &[BuiltPlugin],
) {
    // one_changed. Each alternating scenario takes mtimes from a fresh base in the future, so
    // that the file chosen is newer than any file just installed.
    let base = SystemTime::now() + Duration::from_secs(3600);
    let dir = tempfile::tempdir().unwrap();
    let files = [v1.install(dir.path()), v2.install(dir.path())];
    make_newest(&files[0], base, 0);
    let m = manager(dir.path(), true);
    let mut s = measure(
        &m,
        SAMPLES_ONE,
        |i| make_newest(&files[(i + 1) % 2], base, i as u64 + 1),
        |i, r| {
            let expect = [v1, v2][(i + 1) % 2].version();
            assert!(r.plugins[0].note == "loaded" && r.plugins[0].version == expect, "unexpected reload: {r:?}");
        },
    );
    results.insert(format!("one_changed{suffix}"), s.summary(1, 1));
    drop(m);

    // one_fresh
    let dir = tempfile::tempdir().unwrap();
    v1.install(dir.path());
    let m = manager(dir.path(), false);
    let mut s = measure(&m, SAMPLES_ONE, |_| {}, |_, r| assert_eq!(r.plugins[0].note, "loaded"));
    results.insert(format!("one_fresh{suffix}"), s.summary(1, 1));
    drop(m);

    // ten_fresh (as built only)
    if suffix.is_empty() {
        let dir = tempfile::tempdir().unwrap();
        for p in many {
            p.install(dir.path());
        }
        let m = manager(dir.path(), false);
        let mut s = measure(
            &m,
            SAMPLES_TEN,
            |_| {},
            |_, r| {
                assert_eq!(r.plugins.len(), 10);
                assert!(r.plugins.iter().all(|p| p.note == "loaded"));
            },
        );
        results.insert(format!("ten_fresh{suffix}"), s.summary(10, 10));
        drop(m);
    }

    // ten_one_changed
    let base = SystemTime::now() + Duration::from_secs(3600);
    let dir = tempfile::tempdir().unwrap();
    for p in &many[..9] {
        p.install(dir.path());
    }
    let files = [v1.install(dir.path()), v2.install(dir.path())];
    make_newest(&files[0], base, 0);
    let m = manager(dir.path(), true);
    let mut s = measure(
        &m,
        SAMPLES_TEN,
        |i| make_newest(&files[(i + 1) % 2], base, i as u64 + 1),
        |_, r| {
            assert_eq!(r.plugins.len(), 10);
            assert_eq!(r.plugins.iter().filter(|p| p.note == "loaded").count(), 1, "{r:?}");
        },
    );
    results.insert(format!("ten_one_changed{suffix}"), s.summary(10, 1));
    drop(m);

    results.insert(format!("trigger_e2e{suffix}"), trigger_e2e(v1, v2));
}

/// Spins on `call` until it answers `expected`; the time from `start` to that answer.
fn first_call_seeing<T: PartialEq + std::fmt::Debug>(start: Instant, expected: &T, mut call: impl FnMut() -> T) -> f64 {
    loop {
        let answer = call();
        if answer == *expected {
            return ms(start.elapsed());
        }
        assert!(start.elapsed() < E2E_PATIENCE, "the new build ({expected:?}) was never served; still {answer:?}");
        std::thread::yield_now();
    }
}

fn e2e_summary(samples: &mut [f64]) -> serde_json::Value {
    json!({
        "samples": samples.len(),
        "median_ms": median(samples),
        "p90_ms": percentile(samples, 90.0),
        "min_ms": percentile(samples, 0.0),
    })
}

/// Rename of a new `greeter` build into the folder → first call that sees it, through the
/// built-in trigger. The next build is copied in under a hidden name (and made the newest)
/// before the timing starts, as `cargo xtask build` does.
fn trigger_e2e(v1: &BuiltPlugin, v2: &BuiltPlugin) -> serde_json::Value {
    let folder = common::Alternating::new(v1, v2, |b| b);
    let answers = ["v1".to_string(), "v2".to_string()];
    let mut samples = Vec::new();
    for i in 0..WARM_UP + SAMPLES_E2E {
        let (staged, target) = folder.stage(i);
        std::thread::sleep(Duration::from_millis(20)); // let the previous round settle
        let start = Instant::now();
        std::fs::rename(&staged, &target).unwrap();
        let t = first_call_seeing(start, &answers[(i + 1) % 2], || {
            folder.manager.invoke::<String>("greeter", "answer", args![]).unwrap()
        });
        if i >= WARM_UP {
            samples.push(t);
        }
    }
    assert_eq!(folder.manager.reload_count() as usize, WARM_UP + SAMPLES_E2E, "one reload per rename");
    e2e_summary(&mut samples)
}

/// The same for hot-lib-reloader: its two builds differ by the bias they add.
fn hot_lib_reloader_e2e() -> serde_json::Value {
    let peer = common::HlrPeer::start();
    let mut samples = Vec::new();
    for i in 0..WARM_UP + SAMPLES_E2E {
        let (staged, target) = peer.stage(i);
        std::thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        std::fs::rename(&staged, &target).unwrap();
        let t = first_call_seeing(start, &common::HlrPeer::ANSWERS[(i + 1) % 2], || common::hlr::hlr_add(1, 2));
        if i >= WARM_UP {
            samples.push(t);
        }
    }
    let mut summary = e2e_summary(&mut samples);
    summary["size_kib"] = json!(peer.size_kib());
    summary
}

/// The least a loader does (copy to a fresh path + dlopen), and each part of the runtime's
/// open stage alone.
fn baseline(library: &Path, samples: usize) -> serde_json::Value {
    let work = tempfile::tempdir().unwrap();
    let mut parts: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut copy_dlopen = Vec::new();
    let mut open = Vec::new();
    for i in 0..WARM_UP + samples {
        let copy: PathBuf = work.path().join(format!("copy-{i}.so"));
        let t0 = Instant::now();
        let bytes = std::fs::read(library).unwrap();
        let t1 = Instant::now();
        let sha = hotswap_runtime::inspect::sha256_hex(&bytes);
        let t2 = Instant::now();
        let facts = hotswap_runtime::inspect::inspect(&bytes).unwrap();
        let t3 = Instant::now();
        std::fs::write(&copy, &bytes).unwrap();
        let t4 = Instant::now();
        // SAFETY: a release build of one of our fixtures, built by this toolchain (the
        // fingerprint was just read); its initialisers are Rust std's. Like the runtime, we
        // never close it.
        let lib =
            unsafe { libloading::os::unix::Library::open(Some(&copy), libc::RTLD_NOW | libc::RTLD_LOCAL) }.unwrap();
        let t5 = Instant::now();
        std::mem::forget(lib);
        std::hint::black_box((sha, facts));
        if i >= WARM_UP {
            parts.entry("read").or_default().push(ms(t1 - t0));
            parts.entry("sha256").or_default().push(ms(t2 - t1));
            parts.entry("inspect").or_default().push(ms(t3 - t2));
            parts.entry("copy_write").or_default().push(ms(t4 - t3));
            parts.entry("dlopen").or_default().push(ms(t5 - t4));
            copy_dlopen.push(ms((t1 - t0) + (t4 - t3) + (t5 - t4)));
            open.push(ms(t5 - t0));
        }
    }
    json!({
        "copy_dlopen_median_ms": median(&mut copy_dlopen),
        "all_parts_median_ms": median(&mut open),
        "part_median_ms": parts.iter_mut().map(|(k, v)| (k.to_string(), json!(median(v)))).collect::<serde_json::Map<_, _>>(),
        "size_kib": std::fs::metadata(library).unwrap().len() / 1024,
    })
}

fn print_table(r: &serde_json::Value) {
    println!("\n| scenario | median ms | p90 ms | generation stages (median ms) |");
    println!("| --- | --- | --- | --- |");
    for name in r.as_object().unwrap().keys().filter(|k| !k.starts_with("baseline") && !k.starts_with("loadavg")) {
        let s = &r[name];
        let stages: Vec<String> = s["stage_median_ms"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k} {:.3}", v.as_f64().unwrap())).collect())
            .unwrap_or_default();
        println!(
            "| {name} | {:.3} | {:.3} | {} |",
            s["median_ms"].as_f64().unwrap(),
            s["p90_ms"].as_f64().unwrap(),
            stages.join(", ")
        );
    }
    for (name, value) in r.as_object().unwrap().iter().filter(|(k, _)| k.starts_with("baseline")) {
        println!("{name}: {value}");
    }
}
