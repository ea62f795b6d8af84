//! What the build tool costs, on the hello demo's plugin `foo` (demo/hello/plugin/foo):
//!
//! * `plain`: `cargo build --release --manifest-path …/foo/Cargo.toml --lib`;
//! * `xtask`: `cargo xtask build demo/hello/plugin/foo <folder>` (what users run: cargo's
//!   `run` of the xtask binary, then xtask's own `cargo metadata`, git stamp, `cargo build`,
//!   ELF inspection, sha256 and manifest);
//! * `xtask_binary`: the same xtask binary run directly, without `cargo run` in front;
//! * `cargo_run_noop`: `cargo xtask --help`, the cost of `cargo run` alone.
//!
//! The source file is touched (its mtime set to now) before every build, so every build
//! really recompiles the plugin crate (and re-runs its build script). The variants are
//! interleaved, after a warm-up build of each, so drift (other load, caches) hits them alike.
//!
//! Then `edit_to_running`: a `PluginManager` on a fresh folder serving `foo`; the source is
//! edited (the greeting changed to a new marker), and the clock runs until the manager serves
//! the new code: `cargo xtask build` into the folder, `manager.reload()`, and a call of
//! `greet` that returns the new greeting. The file is restored afterwards (also on panic).
//!
//! All builds use their own target folder (`target/bench-build`), so a cargo run elsewhere
//! in the workspace cannot hold the build lock during a measurement.
//!
//! Writes `target/bench-results/build_time.json` for `report` and prints a summary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use common::{median, ms};
use hotswap_runtime::{PluginManager, args};
use hotswap_tests::workspace_root;
use serde_json::json;

const PLUGIN: &str = "demo/hello/plugin/foo";
const ROUNDS: usize = 5;
const EDITS: usize = 4;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn target_dir() -> PathBuf {
    workspace_root().join("target").join("bench-build")
}

/// Runs `command` (with the bench target folder), panics on failure, returns its wall time in ms.
fn timed(mut command: Command, what: &str) -> f64 {
    command.current_dir(workspace_root()).env("CARGO_TARGET_DIR", target_dir());
    let t = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let elapsed = ms(t.elapsed());
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Blocking waiting for file lock"), "{what} waited for a cargo lock; the figure is void");
    elapsed
}

fn touch(file: &Path) {
    let f = std::fs::File::options().write(true).open(file).unwrap();
    f.set_modified(SystemTime::now()).unwrap();
}

fn plain_build() -> Command {
    let mut c = Command::new(cargo());
    c.args(["build", "--release", "--lib", "--manifest-path"]).arg(workspace_root().join(PLUGIN).join("Cargo.toml"));
    c
}

fn xtask_build(out: &Path) -> Command {
    let mut c = Command::new(cargo());
    c.args(["xtask", "build", PLUGIN]).arg(out);
    c
}

fn xtask_binary_build(out: &Path) -> Command {
    let mut c = Command::new(target_dir().join("debug").join("xtask"));
    c.args(["build", PLUGIN]).arg(out);
    c
}

fn cargo_run_noop() -> Command {
    let mut c = Command::new(cargo());
    c.args(["xtask", "--help"]);
    c
}

/// Puts the original source back when dropped.
struct Restore {
    file: PathBuf,
    original: Vec<u8>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        std::fs::write(&self.file, &self.original).expect("restoring the demo plugin's source");
        eprintln!("restored {}", self.file.display());
    }
}

fn main() {
    let load_start = common::loadavg();
    let source = workspace_root().join(PLUGIN).join("src/lib.rs");
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("xtask-out");

    // Warm-up: builds the dependencies and xtask itself in the bench target folder.
    eprintln!("warm-up builds in {} (the first one compiles the dependencies)", target_dir().display());
    for _ in 0..2 {
        touch(&source);
        timed(plain_build(), "cargo build");
        touch(&source);
        timed(xtask_build(&out), "cargo xtask build");
    }
    timed(cargo_run_noop(), "cargo xtask --help");

    let (mut plain, mut xtask, mut binary, mut noop) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        touch(&source);
        plain.push(timed(plain_build(), "cargo build"));
        touch(&source);
        xtask.push(timed(xtask_build(&out), "cargo xtask build"));
        touch(&source);
        binary.push(timed(xtask_binary_build(&out), "xtask build"));
        noop.push(timed(cargo_run_noop(), "cargo xtask --help"));
        eprintln!(
            "round {round}: plain {:.0} ms, cargo xtask {:.0} ms, xtask binary {:.0} ms, cargo run no-op {:.0} ms",
            plain[round], xtask[round], binary[round], noop[round]
        );
    }

    let edit = edit_to_running(&source, scratch.path());

    let results = json!({
        "plugin": PLUGIN,
        "rounds": ROUNDS,
        "plain_median_ms": median(&mut plain),
        "xtask_median_ms": median(&mut xtask),
        "xtask_binary_median_ms": median(&mut binary),
        "cargo_run_noop_median_ms": median(&mut noop),
        "plain_ms": plain,
        "xtask_ms": xtask,
        "xtask_binary_ms": binary,
        "cargo_run_noop_ms": noop,
        "edit_to_running": edit,
        "loadavg_start": load_start,
        "loadavg_end": common::loadavg(),
    });
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
    common::write_results("build_time", &results);
}

/// Edits the source, and times until a manager on a fresh folder serves the new greeting.
fn edit_to_running(source: &Path, scratch: &Path) -> serde_json::Value {
    let original = std::fs::read(source).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    assert!(text.contains("\"Hello, {who}!"), "{} no longer has the greeting this benchmark edits", source.display());
    let _restore = Restore { file: source.to_path_buf(), original };

    let folder = scratch.join("serving");
    std::fs::create_dir_all(&folder).unwrap();
    timed(xtask_build(&folder), "cargo xtask build");
    let manager = PluginManager::builder(&folder).build().unwrap();
    manager.load_plugins().expect("first load");
    let greet = |m: &PluginManager| -> String {
        m.find_plugin("foo").expect("foo is served").invoke::<String>("greet", args!["bench".to_string()]).unwrap()
    };
    assert!(greet(&manager).starts_with("Hello, bench!"));

    let (mut total, mut build, mut reload) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..EDITS {
        let marker = format!("Edit {k}");
        std::fs::write(source, text.replace("\"Hello, {who}!", &format!("\"{marker}, {{who}}!"))).unwrap();
        let t0 = Instant::now();
        build.push(timed(xtask_build(&folder), "cargo xtask build"));
        let t1 = Instant::now();
        let report = manager.reload().expect("reload");
        let answer = greet(&manager);
        let t2 = Instant::now();
        assert!(
            answer.starts_with(&format!("{marker}, bench!")),
            "served {answer:?} after generation {}",
            report.generation
        );
        total.push(ms(t2 - t0));
        reload.push(ms(t2 - t1));
        eprintln!(
            "edit {k}: new code serving after {:.0} ms (build {:.0} ms, reload + first call {:.2} ms)",
            total[k], build[k], reload[k]
        );
    }
    json!({
        "edits": EDITS,
        "total_median_ms": median(&mut total),
        "build_median_ms": median(&mut build),
        "reload_and_call_median_ms": median(&mut reload),
    })
}
