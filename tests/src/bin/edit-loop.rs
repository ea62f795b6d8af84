//! Edit → new code serving, measured the way a developer lives it (issue 24).
//!
//! ```sh
//! cargo run -p hotswap-tests --bin edit-loop -- --edits 5
//! ```
//!
//! Copies the hello demo (its host and plugin `foo`) into a scratch workspace
//! ([`hotswap_tests::scratch`]), and for each profile (dev: host and plugin `--debug`; release):
//!
//! 1. `plain`: edits `foo`'s source N times, each followed by a plain
//!    `cargo build --lib -p foo` (the compiler's own cost, the yardstick);
//! 2. `build`: the same with the xtask binary's `build` run directly (one-shot build: stamp,
//!    cargo, split debug info, install; without `cargo run`'s own check of the xtask);
//! 3. `loop`: runs the hello host (a round of calls every 10 ms) and a long-lived
//!    `xtask watch plugin/foo bin`, edits the source N times, and times each edit until the
//!    host prints the new greeting. The watch's line for the cycle gives the breakdown: the
//!    wait before the build, cargo, our own steps (stamp, split debug info, install) and the
//!    reload as the host reported it; the bench adds the time until the watch saw the change
//!    and the time from the reload's answer to the host's first output of the new code (a wait
//!    for the bench host's next 10 ms tick, so the table gives "all but cargo" with and
//!    without it).
//!
//! Every edit rewrites the file in place with a new marker in the greeting (as most editors
//! save), one second after the previous cycle ended. The xtask binary is
//! `target/debug/xtask` of this repository (built first), or `--xtask PATH`.
//! Prints a table and writes `target/bench-results/edit_loop.json`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use hotswap_tests::scratch::{Scratch, hello_workspace};
use hotswap_tests::workspace_root;

const PATIENCE: Duration = Duration::from_secs(180);

struct Options {
    edits: usize,
    profiles: Vec<String>,
    xtask: Option<PathBuf>,
    watch_args: Vec<String>,
}

fn parse() -> Options {
    let mut o = Options { edits: 5, profiles: vec!["dev".into(), "release".into()], xtask: None, watch_args: vec![] };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--edits" => o.edits = value("--edits").parse().expect("--edits N"),
            "--profiles" => o.profiles = value("--profiles").split(',').map(String::from).collect(),
            "--xtask" => o.xtask = Some(PathBuf::from(value("--xtask"))),
            "--watch-arg" => o.watch_args.push(value("--watch-arg")),
            "--help" | "-h" => {
                println!("usage: edit-loop [--edits N (5)] [--profiles dev,release] [--xtask PATH] [--watch-arg ARG]…");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}; see --help"),
        }
    }
    o
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn range(v: &[f64]) -> (f64, f64) {
    (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rewrites `foo`'s greeting with `marker` in it, in place.
fn edit(source: &Path, original: &str, marker: &str) {
    let text = original.replacen("Hello, {who}!", &format!("Hello, {{who}}! {marker}"), 1);
    assert_ne!(text, original, "foo's greeting is not where the bench expects it");
    std::fs::write(source, text).unwrap();
}

fn run_ok(mut c: Command, what: &str) -> Duration {
    let t = Instant::now();
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// A child whose standard output lines arrive, timestamped, on a channel; killed on drop.
struct Lines {
    child: Child,
    rx: Receiver<(Instant, String)>,
}

impl Lines {
    fn start(mut command: Command) -> Lines {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("starting a child");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Lines { child, rx }
    }

    /// The first line (from now on) containing `needle`.
    fn wait_for(&self, needle: &str) -> (Instant, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, line)) if line.contains(needle) => return (t, line),
                Ok(_) => {}
                Err(e) => panic!("no line with `{needle}` ({e})"),
            }
        }
    }

    fn drain(&self) {
        while self.rx.try_recv().is_ok() {}
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The parts a watch cycle's line reports (milliseconds).
#[derive(Default, Clone, Debug)]
struct Parts {
    /// From the first change the watch saw to the reload's answer.
    serving_after_change: f64,
    /// Waiting for the save to settle, before the build.
    waited: f64,
    cargo: f64,
    ours: f64,
    stamp: f64,
    split: f64,
    install: f64,
    /// The reload, as the host reported it.
    reload: f64,
}

fn number(line: &str, before: &str, after: &str) -> Option<f64> {
    let start = line.find(before)? + before.len();
    let rest = &line[start..];
    let end = rest.find(after)?;
    rest[..end].trim().parse().ok()
}

fn parts(line: &str) -> Option<Parts> {
    Some(Parts {
        serving_after_change: number(&line[line.rfind("· serving ")?..], "serving ", " ms")?,
        waited: number(line, "waited ", " ms")?,
        cargo: number(line, "(cargo ", " ms")?,
        ours: number(line, "ours ", " ms")?,
        stamp: number(line, "stamp ", ",")?,
        split: number(line, "split ", ",")?,
        install: number(line, "install ", ")")?,
        reload: number(&line[line.find("reload accepted:")?..], " in ", " ms")?,
    })
}

#[derive(Default)]
struct ProfileResult {
    profile: String,
    plain: Vec<f64>,
    build: Vec<f64>,
    edit_to_serving: Vec<f64>,
    noticed: Vec<f64>,
    first_call: Vec<f64>,
    parts: Vec<Parts>,
    watch_lines: Vec<String>,
}

fn profile_flag(profile: &str) -> Option<&'static str> {
    (profile == "release").then_some("--release")
}

fn measure(scratch: &Scratch, xtask: &Path, profile: &str, options: &Options) -> ProfileResult {
    let mut result = ProfileResult { profile: profile.into(), ..Default::default() };
    let source = scratch.foo_source();
    let original = std::fs::read_to_string(&source).unwrap();
    let debug: &[&str] = if profile == "dev" { &["--debug"] } else { &[] };
    let n = options.edits;
    let mut host_build = scratch.cargo();
    host_build.args(["build", "--quiet", "-p", "hello-host"]).args(profile_flag(profile));
    run_ok(host_build, "building the host");

    // 1. Plain cargo build, after a warm-up.
    for i in 0..=n {
        edit(&source, &original, &format!("plain-{profile}-{i}"));
        let mut c = scratch.cargo();
        c.args(["build", "--quiet", "--lib", "-p", "foo"]).args(profile_flag(profile));
        let t = run_ok(c, "plain cargo build");
        if i > 0 {
            result.plain.push(ms(t));
        }
    }
    // 2. One-shot xtask build.
    // An output folder per profile: `build` refuses to mix dev and release libraries.
    let out = scratch.path().join(format!("bin-oneshot-{profile}"));
    for i in 0..=n {
        edit(&source, &original, &format!("build-{profile}-{i}"));
        let mut c = Command::new(xtask);
        c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target);
        c.args(["build", "plugin/foo"]).arg(&out).args(debug);
        let t = run_ok(c, "xtask build");
        if i > 0 {
            result.build.push(ms(t));
        }
    }
    // 3. The loop: host + watch.
    let bin = scratch.path().join(format!("bin-{profile}"));
    let _ = std::fs::remove_dir_all(&bin);
    edit(&source, &original, &format!("start-{profile}"));
    let mut c = Command::new(xtask);
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target);
    c.args(["build", "plugin/foo"]).arg(&bin).args(debug);
    run_ok(c, "first xtask build");
    let socket = scratch.path().join(format!("control-{profile}.sock"));
    let host_bin = scratch.target.join(if profile == "release" { "release" } else { "debug" }).join("hello-host");
    let mut c = Command::new(host_bin);
    c.current_dir(scratch.path()).env("RUST_LOG", "warn");
    c.arg("--plugins").arg(&bin).arg("--socket").arg(&socket).args(["--interval-ms", "10"]);
    let host = Lines::start(c);
    host.wait_for(&format!("start-{profile}"));
    let mut c = Command::new(xtask);
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target);
    c.args(["watch", "plugin/foo"]).arg(&bin).arg("--socket").arg(&socket).arg("--no-initial-build").args(debug);
    c.args(&options.watch_args);
    let watch = Lines::start(c);
    watch.wait_for("watching");
    for i in 0..n {
        std::thread::sleep(Duration::from_secs(1));
        host.drain();
        watch.drain();
        let marker = format!("loop-{profile}-{i}-{}", std::process::id());
        let t0 = Instant::now();
        edit(&source, &original, &marker);
        let (served, _) = host.wait_for(&marker);
        let (printed, line) = watch.wait_for("reload");
        let total = ms(served - t0);
        result.edit_to_serving.push(total);
        let p = parts(&line).unwrap_or_default();
        // The watch prints its line right after the host's answer.
        let answered = ms(printed - t0);
        result.noticed.push((answered - p.serving_after_change).max(0.0));
        result.first_call.push(total - answered);
        result.parts.push(p);
        result.watch_lines.push(line);
    }
    drop(watch);
    drop(host);
    std::fs::write(&source, &original).unwrap();
    result
}

fn main() {
    let options = parse();
    let root = workspace_root();
    let xtask = options.xtask.clone().unwrap_or_else(|| {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(&root).args(["build", "--quiet", "-p", "xtask"]);
        run_ok(c, "building xtask");
        root.join("target/debug/xtask")
    });
    let scratch = hello_workspace("edit-loop");
    println!("scratch workspace {} (target {})", scratch.path().display(), scratch.target.display());
    let load_before = load_average();
    let results: Vec<ProfileResult> = options.profiles.iter().map(|p| measure(&scratch, &xtask, p, &options)).collect();
    let load_after = load_average();
    println!("xtask {}", xtask.display());

    println!("\nedit → new code serving, hello plugin foo, {} edits per profile (ms, median; min–max)", options.edits);
    for r in &results {
        let plain = median(&r.plain);
        let med = |f: &dyn Fn(&Parts) -> f64| median(&r.parts.iter().map(f).collect::<Vec<_>>());
        let total = median(&r.edit_to_serving);
        let (lo, hi) = range(&r.edit_to_serving);
        let noticed = median(&r.noticed);
        let first = median(&r.first_call);
        let ours_total = noticed + med(&|p| p.waited) + med(&|p| p.ours) + med(&|p| p.reload) + first.max(0.0);
        println!("\n[{}]", r.profile);
        println!("  plain cargo build --lib          {plain:8.1}   1.00×");
        println!("  xtask build (binary, one-shot)   {:8.1}   {:.2}×", median(&r.build), median(&r.build) / plain);
        println!("  edit → new output (watch + host) {total:8.1}   {:.2}×   ({lo:.0}–{hi:.0})", total / plain);
        println!("    the watch sees the change      {noticed:8.1}");
        println!("    settling before the build      {:8.1}", med(&|p| p.waited));
        println!("    cargo build                    {:8.1}", med(&|p| p.cargo));
        println!(
            "    ours: stamp / split / install   {:8.1}   ({:.1} / {:.1} / {:.1})",
            med(&|p| p.ours),
            med(&|p| p.stamp),
            med(&|p| p.split),
            med(&|p| p.install)
        );
        println!("    reload (host's report)         {:8.1}", med(&|p| p.reload));
        println!("    reload answer → first new call {first:8.1}");
        println!("    all but cargo                  {ours_total:8.1}");
        // The first call waits for the bench host's next 10 ms tick: the bench's, not the tools'.
        println!("    … without the first call       {:8.1}", ours_total - first.max(0.0));
        if let Some(line) = r.watch_lines.last() {
            println!("  last watch line: {line}");
        }
    }
    println!("\nload average (1, 5, 15 min) before / after: {load_before} / {load_after}");
    let dir = root.join("target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "profile": r.profile, "plain_ms": r.plain, "build_ms": r.build,
                "edit_to_serving_ms": r.edit_to_serving, "noticed_ms": r.noticed,
                "first_call_ms": r.first_call, "watch_lines": r.watch_lines,
                "parts": r.parts.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>(),
            })
        })
        .collect();
    let json = serde_json::json!({ "load_before": load_before, "load_after": load_after, "results": results });
    std::fs::write(dir.join("edit_loop.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
}
