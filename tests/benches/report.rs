//! Reads what `per_call`, `reload`, `stall` and `build_time` left in `target/bench-results/` and
//! rewrites the part of BENCHMARKS.md between `<!-- bench:start -->` and `<!-- bench:end -->`
//! (or of the file named by `$BENCHMARKS_MD`). Run by tests/benches/update-benchmarks.sh.

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const START: &str = "<!-- bench:start -->";
const END: &str = "<!-- bench:end -->";

const CALLS: [(&str, &str); 11] = [
    ("direct", "direct Rust call `add(a, b)`"),
    ("dyn_fn", "`Box<dyn Fn(i64, i64) -> i64>` call"),
    ("arcswap_floor", "the floor for following reloads: `ArcSwap::load` + the plugin's fn pointer"),
    ("hot_fn", "`HotFn` (follows reloads): `add.call((a, b))`"),
    ("invoke_by_name", "by name, follows reloads: `manager.invoke::<i64>(\"greeter\", \"add\", args![a, b])`"),
    ("cached_invoke", "cached `Plugin` handle: `invoke::<i64>(\"add\", args![a, b])`"),
    ("hot_lib_reloader", "hot-lib-reloader 0.8 `hot_module` function (follows reloads)"),
    ("cached_handle", "cached `Plugin` handle: `invoke_func(\"add\", args![a, b])` + downcast"),
    ("find_plugin", "`manager.find_plugin(\"greeter\")` + invoke, on every call"),
    ("live_fn", "live function handle fetched once (pins its generation): `handle.call((a, b))`"),
    ("mutex_libloading", "`Mutex<libloading::Library>` lock + `get(b\"bench_add\")` on every call"),
];

/// The paths a host makes plugin calls through, for the threads target.
const HOTSWAP_CALLS: [&str; 3] = ["cached_handle", "find_plugin", "live_fn"];

/// The rows set against the floor and the peer, and whether each follows reloads.
const AGAINST: [(&str, &str); 7] = [
    ("arcswap_floor", "yes"),
    ("hot_fn", "yes"),
    ("invoke_by_name", "yes"),
    ("find_plugin", "yes"),
    ("hot_lib_reloader", "yes"),
    ("cached_invoke", "no (pins its generation)"),
    ("live_fn", "no (pins its generation)"),
];

fn load(name: &str) -> Option<Value> {
    let path = common::results_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A number with about three significant digits.
fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn ratio(x: f64) -> String {
    format!("{}×", num(x))
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

/// The line under each part: its load averages (1, 5, 15 min) at its start and end.
fn load_average(w: &mut String, part: &Value) {
    let at = |key: &str| part[key].as_str().unwrap_or("?").to_string();
    writeln!(
        w,
        "Load average (1, 5, 15 min) at the start and end of this part: {} / {}.\n",
        at("loadavg_start"),
        at("loadavg_end")
    )
    .unwrap();
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).current_dir(hotswap_tests::workspace_root()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "?".into());
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string())))
        .unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let rustc = command_output("rustc", &["-V"]).unwrap_or_else(|| "?".into());
    let revision = std::env::var("HOTSWAP_BENCH_REVISION").ok().or_else(|| {
        let head = command_output("git", &["rev-parse", "--short", "HEAD"])?;
        let dirty = command_output(
            "git",
            &["status", "--porcelain", "--", "hotswap-runtime", "hotswap-build", "xtask", "templates", "tests"],
        )
        .is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{head} with uncommitted changes") } else { head })
    });
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "?".into());
    format!(
        "Run of {date} on commit {}: {nproc} CPUs (`nproc`), {model} (/proc/cpuinfo), {mem} memory, Linux {kernel}, {rustc}.",
        revision.unwrap_or_else(|| "?".into())
    )
}

/// The calls that follow reloads (and two that do not), as ratios to the floor and to
/// hot-lib-reloader, on thread CPU time; and their targets.
fn calls_against_floor_and_peer(w: &mut String, cpu: &Value, targets: &mut Vec<(String, String, String)>) {
    let t = |key: &str, n: &str| f(&cpu[key][n]);
    let (floor, peer) = (t("arcswap_floor", "1"), t("hot_lib_reloader", "1"));
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => ratio(a / b),
        _ => "–".into(),
    };
    writeln!(w, "#### Against the floor and hot-lib-reloader (thread CPU time, same run)\n").unwrap();
    writeln!(w, "| call | follows reloads? | 1 thread (ns) | 2 threads (ns) | 2 thr. ÷ 1 | ÷ floor (1 thr.) | ÷ hot-lib-reloader (1 thr.) |").unwrap();
    writeln!(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: |").unwrap();
    for (key, follows) in AGAINST {
        let label = CALLS.iter().find(|(k, _)| *k == key).map(|(_, l)| *l).unwrap_or(key);
        let cell = |x: Option<f64>| x.map(num).unwrap_or_else(|| "–".into());
        writeln!(
            w,
            "| {label} | {follows} | {} | {} | {} | {} | {} |",
            cell(t(key, "1")),
            cell(t(key, "2")),
            div(t(key, "2"), t(key, "1")),
            div(t(key, "1"), floor),
            div(t(key, "1"), peer)
        )
        .unwrap();
    }
    writeln!(w).unwrap();
    if let (Some(h1), Some(h2), Some(fl)) = (t("hot_fn", "1"), t("hot_fn", "2"), floor) {
        let vs_peer = peer.map(|p| format!("; {} hot-lib-reloader", ratio(h1 / p))).unwrap_or_default();
        targets.push((
            "`HotFn` ≤ 2× the `ArcSwap::load` + fn pointer floor (1 thread)".into(),
            format!("{} ({} ns against {} ns{vs_peer})", ratio(h1 / fl), num(h1), num(fl)),
            verdict(h1 / fl <= 2.0).into(),
        ));
        targets.push((
            "`HotFn` at 2 threads within 1.2× of 1 thread".into(),
            format!("{} ({} ns against {} ns)", ratio(h2 / h1), num(h2), num(h1)),
            verdict(h2 / h1 <= 1.2).into(),
        ));
    }
    if let (Some(i1), Some(i2)) = (t("invoke_by_name", "1"), t("invoke_by_name", "2")) {
        targets.push((
            "`manager.invoke::<T>` by name ≤ 25 ns (1 thread)".into(),
            format!("{} ns = {} the target", num(i1), ratio(i1 / 25.0)),
            verdict(i1 <= 25.0).into(),
        ));
        if let Some(p) = peer {
            targets.push((
                "`manager.invoke::<T>` by name ≥ 2× cheaper than hot-lib-reloader (1 thread)".into(),
                format!("{} hot-lib-reloader ({} ns against {} ns; target ≤ 0.5×)", ratio(i1 / p), num(i1), num(p)),
                verdict(i1 / p <= 0.5).into(),
            ));
        }
        targets.push((
            "`manager.invoke::<T>` at 2 threads within 1.2× of 1 thread".into(),
            format!("{} ({} ns against {} ns)", ratio(i2 / i1), num(i2), num(i1)),
            verdict(i2 / i1 <= 1.2).into(),
        ));
    }
}

/// Rename of a new build into the folder → first call that sees it.
fn end_to_end(w: &mut String, r: &Value, targets: &mut Vec<(String, String, String)>) {
    let peer = f(&r["hot_lib_reloader_e2e"]["median_ms"]);
    writeln!(w, "#### New build renamed into the folder → first call that sees it (ms)\n").unwrap();
    writeln!(w, "| how | library | median | p90 | min | ÷ hot-lib-reloader |").unwrap();
    writeln!(w, "| --- | --- | ---: | ---: | ---: | ---: |").unwrap();
    for (key, label, library) in [
        ("trigger_e2e", "hotswap, `reload_on_new_builds(Duration::ZERO)`", "greeter as built"),
        ("trigger_e2e_kept", "hotswap, `reload_on_new_builds(Duration::ZERO)`", "greeter, debug info kept in"),
        ("hot_lib_reloader_e2e", "hot-lib-reloader 0.8, debounce 1 ms (its least)", "hlr_peer as built by cargo"),
    ] {
        let s = &r[key];
        let Some(median) = f(&s["median_ms"]) else { continue };
        let size = s["size_kib"].as_u64().map(|k| format!(" ({k} KiB)")).unwrap_or_default();
        writeln!(
            w,
            "| {label} | {library}{size} | {} | {} | {} | {} |",
            num(median),
            num(f(&s["p90_ms"]).unwrap()),
            num(f(&s["min_ms"]).unwrap()),
            peer.map(|p| ratio(median / p)).unwrap_or_else(|| "–".into())
        )
        .unwrap();
    }
    writeln!(w).unwrap();
    if let Some(m) = f(&r["trigger_e2e"]["median_ms"]) {
        let vs_peer = peer.map(|p| format!("; {} hot-lib-reloader's {} ms", ratio(m / p), num(p))).unwrap_or_default();
        targets.push((
            "rename → first call that sees the new build ≤ 3 ms, as built".into(),
            format!("{} ms = {} the target{vs_peer}", num(m), ratio(m / 3.0)),
            verdict(m <= 3.0).into(),
        ));
    }
}

/// The calls of the stall benchmark, hotswap's first; the last is the peer.
const STALL_CALLS: [(&str, &str); 5] = [
    ("hot_fn", "`HotFn` `add.call((a, b))`"),
    ("invoke_by_name", "by name: `manager.invoke::<i64>(\"greeter\", \"add\", args![a, b])`"),
    ("hot_fn_free_now", "`HotFn`, manager with `free_delay(ZERO)`"),
    ("invoke_by_name_free_now", "by name, manager with `free_delay(ZERO)`"),
    ("hot_lib_reloader", "hot-lib-reloader 0.8 `hot_module` function"),
];

/// Callers calling without pause while the library is replaced: the worst call per reload
/// window against equally long windows without a reload.
fn caller_stall(w: &mut String, s: &Value, targets: &mut Vec<(String, String, String)>) {
    // "median / max" of the worst call per window, µs.
    let pair = |x: &Value| match (f(&x["median"]), f(&x["max"])) {
        (Some(m), Some(x)) => format!("{} / {}", num(m), num(x)),
        _ => "–".into(),
    };
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => ratio(a / b),
        _ => "–".into(),
    };
    let reloads = s.as_object().unwrap().values().find_map(|v| v["reloads"].as_u64()).unwrap_or(0);
    writeln!(
        w,
        "#### Caller stall during reloads (worst call per window, µs, median / max of {reloads} reloads; wall clock)\n"
    )
    .unwrap();
    writeln!(
        w,
        "| call | callers | reload window (median ms) | worst call per reload | … less waiting for a CPU | worst call per window without reload | … less waiting for a CPU | ÷ hot-lib-reloader: worst per reload (median), less waiting; as timed |"
    )
    .unwrap();
    writeln!(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |").unwrap();
    let mut percentiles = String::new();
    for callers in ["1", "2"] {
        let peer = &s[format!("hot_lib_reloader/{callers}")]["reload"];
        for (key, label) in STALL_CALLS {
            let row = &s[format!("{key}/{callers}")];
            if row.is_null() {
                continue;
            }
            let (r, st) = (&row["reload"], &row["steady"]);
            let vs_peer = |what: &str| div(f(&r[what]["median"]), f(&peer[what]["median"]));
            writeln!(
                w,
                "| {label} | {callers} | {} | {} | {} | {} | {} | {}; {} |",
                f(&r["window_median_ms"]).map(num).unwrap_or_else(|| "–".into()),
                pair(&r["worst_us"]),
                pair(&r["worst_on_cpu_us"]),
                pair(&st["worst_us"]),
                pair(&st["worst_on_cpu_us"]),
                vs_peer("worst_on_cpu_us"),
                vs_peer("worst_us")
            )
            .unwrap();
            let p = |c: &Value| format!("{} / {} / {}", c["p50_ns"], c["p99_ns"], c["p999_ns"]);
            writeln!(
                percentiles,
                "| {label} | {callers} | {} | {} | {} | {} |",
                p(&r["calls"]),
                p(&st["calls"]),
                r["calls"]["calls"],
                st["calls"]["calls"]
            )
            .unwrap();
        }
    }
    writeln!(w).unwrap();
    let ms_of = |key: &str| s[key].as_f64().map(num).unwrap_or_else(|| "?".into());
    writeln!(
        w,
        "Callers call without pause while each reload renames the next of two release builds into place \
         (greeter v1 ↔ v2 for the call by name, `jobs` live_v1 ↔ live_v2 for `HotFn`, hlr_peer with two biases \
         for hot-lib-reloader) and the library's own watcher reloads it (hotswap: \
         `reload_on_new_builds(Duration::ZERO)` and the manager's defaults otherwise, or `free_delay(ZERO)` where \
         marked, which frees the replaced generation within the reload; hot-lib-reloader: debounce 1 ms). A reload window runs from the rename to {} ms after the \
         last caller's first answer from the new build; a call's time runs from the end of the previous call \
         (one `Instant::now()` included). Each reload window has a twin of the same length, {} ms later, with \
         no reload: its worst call is the machine's own noise (a caller preempted on 2 CPUs shared with other \
         work, interrupts), so a reload stalls callers only by what its column exceeds the twin's. \
         \"Less waiting for a CPU\": a call longer than 5 µs minus the time its thread spent runnable but not \
         running meanwhile (`run_delay` in /proc/thread-self/schedstat), which leaves time blocked (a lock, a \
         page fault) or running; it is the column that tells a loader's stall from the machine's.\n",
        ms_of("tail_ms"),
        ms_of("settle_ms")
    )
    .unwrap();
    writeln!(w, "Every call in the windows (ns, as timed): p50 / p99 / p99.9\n").unwrap();
    writeln!(w, "| call | callers | during reloads | without reload | calls during reloads | calls without |").unwrap();
    writeln!(w, "| --- | ---: | ---: | ---: | ---: | ---: |").unwrap();
    writeln!(w, "{percentiles}").unwrap();
    load_average(w, s);

    let median = |key: &str, kind: &str, what: &str| f(&s[format!("{key}/1")][kind][what]["median"]);
    let (Some(hot), Some(by_name), Some(peer)) = (
        median("hot_fn", "reload", "worst_on_cpu_us"),
        median("invoke_by_name", "reload", "worst_on_cpu_us"),
        median("hot_lib_reloader", "reload", "worst_on_cpu_us"),
    ) else {
        return;
    };
    let cell = |key: &str| {
        let or_dash = |x: Option<f64>| x.map(num).unwrap_or_else(|| "–".into());
        format!(
            "{} µs (as timed {}, without reload {})",
            or_dash(median(key, "reload", "worst_on_cpu_us")),
            or_dash(median(key, "reload", "worst_us")),
            or_dash(median(key, "steady", "worst_us"))
        )
    };
    let free_now = match (
        median("hot_fn_free_now", "reload", "worst_on_cpu_us"),
        median("invoke_by_name_free_now", "reload", "worst_on_cpu_us"),
    ) {
        (Some(h), Some(b)) => format!(
            "; with `free_delay(ZERO)` {} and {} µs ({} and {})",
            num(h),
            num(b),
            ratio(h / peer),
            ratio(b / peer)
        ),
        _ => String::new(),
    };
    targets.push((
        "callers are not stalled by a reload: worst call per reload ≤ hot-lib-reloader's (issue: 20–25 µs against 480–495 µs)"
            .into(),
        format!(
            "median of {reloads} reloads, 1 caller, less waiting for a CPU: `HotFn` {}, by name {}, hot-lib-reloader {}: {} and {} hot-lib-reloader{free_now}",
            cell("hot_fn"),
            cell("invoke_by_name"),
            cell("hot_lib_reloader"),
            ratio(hot / peer),
            ratio(by_name / peer)
        ),
        verdict(hot <= peer && by_name <= peer).into(),
    ));
}

fn main() {
    let per_call = load("per_call");
    let reload = load("reload");
    let stall = load("stall");
    let build = load("build_time");
    let mut out = String::new();
    let mut targets: Vec<(String, String, String)> = Vec::new();
    let w = &mut out;
    writeln!(w, "_Generated by `tests/benches/update-benchmarks.sh`; do not edit by hand._\n").unwrap();
    writeln!(w, "{}\n", machine()).unwrap();

    // Per-call cost.
    match &per_call {
        Some(pc) => {
            for (group, title) in [
                ("per_call_cpu", "Per-call cost, thread CPU time (ns per call, per thread; criterion median)"),
                (
                    "per_call",
                    "Per-call cost, wall clock (ns per call, per thread: time for N threads to make the same number of calls each ÷ that number)",
                ),
            ] {
                let g = &pc["groups"][group];
                writeln!(w, "#### {title}\n").unwrap();
                writeln!(
                    w,
                    "| call | 1 thread | 2 threads | 4 threads | ÷ `dyn Fn` (1 thread) | 2 thr. ÷ 1 | 4 thr. ÷ 1 |"
                )
                .unwrap();
                writeln!(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |").unwrap();
                let dyn1 = f(&g["dyn_fn"]["1"]);
                for (key, label) in CALLS {
                    let t = |n: &str| f(&g[key][n]);
                    let cell = |x: Option<f64>| x.map(num).unwrap_or_else(|| "–".into());
                    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
                        (Some(a), Some(b)) if b > 0.0 => ratio(a / b),
                        _ => "–".into(),
                    };
                    writeln!(
                        w,
                        "| {label} | {} | {} | {} | {} | {} | {} |",
                        cell(t("1")),
                        cell(t("2")),
                        cell(t("4")),
                        div(t("1"), dyn1),
                        div(t("2"), t("1")),
                        div(t("4"), t("1"))
                    )
                    .unwrap();
                }
                writeln!(w).unwrap();
            }
            load_average(w, pc);
            let cpu = &pc["groups"]["per_call_cpu"];
            let wall = &pc["groups"]["per_call"];
            calls_against_floor_and_peer(w, cpu, &mut targets);
            if let (Some(c), Some(d), Some(cw), Some(dw)) = (
                f(&cpu["cached_handle"]["1"]),
                f(&cpu["dyn_fn"]["1"]),
                f(&wall["cached_handle"]["1"]),
                f(&wall["dyn_fn"]["1"]),
            ) {
                targets.push((
                    "cached handle ≤ 2× a `dyn Fn` call".into(),
                    format!("{} (CPU time; wall clock {})", ratio(c / d), ratio(cw / dw)),
                    verdict(c / d <= 2.0).into(),
                ));
            }
            for key in HOTSWAP_CALLS {
                if let (Some(c1), Some(c4), Some(w1), Some(w4)) =
                    (f(&cpu[key]["1"]), f(&cpu[key]["4"]), f(&wall[key]["1"]), f(&wall[key]["4"]))
                {
                    let label = CALLS.iter().find(|(k, _)| *k == key).map(|(_, l)| *l).unwrap_or(key);
                    targets.push((
                        format!("per-thread cost at 4 threads ≤ 1.5× 1 thread: {label}"),
                        format!("{} (CPU time; wall clock {})", ratio(c4 / c1), ratio(w4 / w1)),
                        format!("{} on CPU time; {} on wall clock", verdict(c4 / c1 <= 1.5), verdict(w4 / w1 <= 1.5)),
                    ));
                }
            }
        }
        None => writeln!(w, "Per-call benchmarks: not run.\n").unwrap(),
    }

    // Reload.
    match &reload {
        Some(r) => {
            writeln!(w, "#### Reload latency, excluding cargo (`manager.reload()`, ms)\n").unwrap();
            writeln!(
                w,
                "| scenario | plugins loaded / in folder | median | p90 | ÷ copy + `dlopen` of the loaded files (same run) | main stage (median) |"
            )
            .unwrap();
            writeln!(w, "| --- | ---: | ---: | ---: | ---: | --- |").unwrap();
            let rows = [
                ("one_changed", "1 plugin, its file changed (greeter v1 ↔ v2)"),
                ("one_fresh", "1 plugin, same file, `reuse_unchanged(false)`"),
                ("ten_fresh", "10 plugins, all loaded afresh, `reuse_unchanged(false)`"),
                ("ten_one_changed", "10 plugins, 1 changed (default `reuse_unchanged(true)`)"),
            ];
            for (suffix, note) in [
                ("", "as built (`cargo xtask build`: release, line tables split out into `<plugin>@<version>.debug`)"),
                ("_kept", "debug info kept in the library (`HOTSWAP_KEEP_DEBUGINFO=1`)"),
            ] {
                for (key, label) in rows {
                    let s = &r[format!("{key}{suffix}")];
                    if s.is_null() {
                        continue;
                    }
                    let median = f(&s["median_ms"]).unwrap();
                    let paired = f(&s["paired_baseline_median_ms"]);
                    let (stage, t) = s["stage_median_ms"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .unwrap();
                    writeln!(
                        w,
                        "| {label}; {note} | {} / {} | {} | {} | {} | {stage}: {} |",
                        s["loaded_per_reload"],
                        s["plugins"],
                        num(median),
                        num(f(&s["p90_ms"]).unwrap()),
                        paired.map(|p| ratio(median / p)).unwrap_or_else(|| "–".into()),
                        num(t)
                    )
                    .unwrap();
                }
            }
            writeln!(w).unwrap();
            let mut parts = String::new();
            for (key, label) in [
                ("baseline_greeter", "greeter as built, before the scenarios"),
                ("baseline_greeter_end", "greeter as built, after them"),
                ("baseline_greeter_kept", "greeter, debug info kept in"),
            ] {
                let b = &r[key];
                if b.is_null() {
                    continue;
                }
                let p = &b["part_median_ms"];
                writeln!(
                    parts,
                    "| {label} ({} KiB) | {} | {} | {} | {} | {} |",
                    b["size_kib"],
                    num(f(&p["read"]).unwrap()),
                    num(f(&p["sha256"]).unwrap()),
                    num(f(&p["inspect"]).unwrap()),
                    num(f(&p["copy_write"]).unwrap()),
                    num(f(&p["dlopen"]).unwrap())
                )
                .unwrap();
            }
            writeln!(w, "The open stage's parts, timed alone on the same file (median ms):\n").unwrap();
            writeln!(w, "| library | read | sha256 | inspect | write the copy | `dlopen` |").unwrap();
            writeln!(w, "| --- | ---: | ---: | ---: | ---: | ---: |").unwrap();
            writeln!(w, "{parts}").unwrap();
            load_average(w, r);
            for (key, limit, label) in [
                ("one_changed", 2.0, "one changed plugin reloads in ≤ 2 ms, as built"),
                ("ten_one_changed", 5.0, "10 plugins, 1 changed, reload in ≤ 5 ms, as built"),
            ] {
                let Some(m) = f(&r[key]["median_ms"]) else { continue };
                let kept = f(&r[format!("{key}_kept")]["median_ms"])
                    .map(|k| format!("; {} ms with the debug info kept in the library", num(k)))
                    .unwrap_or_default();
                targets.push((
                    label.into(),
                    format!("{} ms = {} the target{kept}", num(m), ratio(m / limit)),
                    verdict(m <= limit).into(),
                ));
            }
            end_to_end(w, r, &mut targets);
        }
        None => writeln!(w, "Reload benchmarks: not run.\n").unwrap(),
    }

    // Caller stall.
    match &stall {
        Some(s) => caller_stall(w, s, &mut targets),
        None => writeln!(w, "Caller-stall benchmarks: not run.\n").unwrap(),
    }

    // Build.
    match &build {
        Some(b) => {
            let plain = f(&b["plain_median_ms"]).unwrap();
            writeln!(
                w,
                "#### Build (`{}`, every build recompiles the plugin crate; median of {} rounds, ms)\n",
                b["plugin"].as_str().unwrap(),
                b["rounds"]
            )
            .unwrap();
            writeln!(w, "| what | median | ÷ plain `cargo build --release` |").unwrap();
            writeln!(w, "| --- | ---: | ---: |").unwrap();
            let e = &b["edit_to_running"];
            for (label, v) in [
                ("plain `cargo build --release --lib`", &b["plain_median_ms"]),
                ("`cargo xtask build`", &b["xtask_median_ms"]),
                ("the xtask binary run directly (no `cargo run`)", &b["xtask_binary_median_ms"]),
                ("`cargo xtask --help` (the `cargo run` step alone)", &b["cargo_run_noop_median_ms"]),
                ("edit → new code serving: `cargo xtask build` + `reload()` + first call", &e["total_median_ms"]),
                ("… of which `reload()` + first call", &e["reload_and_call_median_ms"]),
            ] {
                if let Some(v) = f(v) {
                    writeln!(w, "| {label} | {} | {} |", num(v), ratio(v / plain)).unwrap();
                }
            }
            writeln!(w).unwrap();
            load_average(w, b);
            let xtask = f(&b["xtask_median_ms"]).unwrap();
            let overhead = xtask / plain - 1.0;
            targets.push((
                "`cargo xtask build` adds < 10% to a plain `cargo build`".into(),
                format!(
                    "+{:.1}% ({} ms against {} ms; {})",
                    overhead * 100.0,
                    num(xtask),
                    num(plain),
                    ratio(xtask / plain)
                ),
                verdict(overhead < 0.10).into(),
            ));
        }
        None => writeln!(w, "Build benchmarks: not run.\n").unwrap(),
    }

    writeln!(w, "#### Targets\n").unwrap();
    writeln!(w, "| target | measured | verdict |").unwrap();
    writeln!(w, "| --- | --- | --- |").unwrap();
    for (target, measured, verdict) in &targets {
        writeln!(w, "| {target} | {measured} | {verdict} |").unwrap();
    }

    let path = std::env::var_os("BENCHMARKS_MD")
        .map(PathBuf::from)
        .unwrap_or_else(|| hotswap_tests::workspace_root().join("BENCHMARKS.md"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        panic!("{} has no `{START}` … `{END}` section", path.display());
    };
    assert!(start < end, "{}: the end marker comes before the start marker", path.display());
    let new = format!("{}{START}\n{}\n{}", &text[..start], out.trim_end(), &text[end..]);
    std::fs::write(&path, new).unwrap();
    println!("{out}");
    eprintln!("rewrote the table in {}", path.display());
}
