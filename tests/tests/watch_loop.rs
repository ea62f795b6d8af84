//! The watch loop under stress (issue 24), on a scratch copy of the hello demo
//! ([`hotswap_tests::scratch`]) with the real `xtask watch`, cargo and (where it matters) the
//! hello host:
//! - a save made while a build runs builds once more after it, with that save's code;
//! - a burst of saves (a file written in pieces while another is saved) builds once;
//! - the version stamp is computed while a save settles, and a save landing in that time is
//!   built with its own stamp;
//! - the watch writes manifests without syncing them to disk, where a one-shot build syncs;
//! - a failing build leaves the host serving and its line says why;
//! - a refused reload leaves the host serving and its line says why.
//!
//! `cargo` is run through a gate (`CARGO` points to a script) that holds each `cargo build`
//! until the test lets it go, so "during a build" is a fact of the test, not a race. The waits
//! are bounds on a loaded machine, never measurements (the loop's speed is measured by the
//! `edit-loop` benchmark).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use hotswap_tests::scratch::{Scratch, hello_workspace};

const PATIENCE: Duration = Duration::from_secs(600);

/// One test at a time: they share a cargo target folder.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A child whose output lines arrive on a channel; killed on drop.
struct Lines {
    child: Child,
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn start(mut command: Command) -> Lines {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { child, rx, seen: Vec::new() }
    }

    /// The next line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no line with `{needle}` ({e}); lines so far:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Every line that arrives within `time`.
    fn lines_within(&mut self, time: Duration) -> Vec<String> {
        let deadline = Instant::now() + time;
        let mut out = Vec::new();
        while let Ok(line) = self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.seen.push(line.clone());
            out.push(line);
        }
        out
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `cargo` that holds every `cargo build` until the test lets it go: build `n` (from 1)
/// creates `started-n` in the gate folder and waits for `go-n`.
struct Gate {
    dir: tempfile::TempDir,
}

impl Gate {
    fn new() -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = build ]; then\n  n=$(( $(cat '{d}/count' 2>/dev/null || echo 0) + 1 ))\n  echo $n > '{d}/count'\n  touch '{d}/started-'$n\n  while [ ! -e '{d}/go-'$n ]; do sleep 0.01; done\nfi\nexec '{real}' \"$@\"\n",
            d = dir.path().display()
        );
        let path = dir.path().join("cargo");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Gate { dir }
    }

    fn cargo(&self) -> PathBuf {
        self.dir.path().join("cargo")
    }

    fn builds_started(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("count")).map_or(0, |t| t.trim().parse().unwrap())
    }

    fn wait_started(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while !self.dir.path().join(format!("started-{n}")).exists() {
            assert!(Instant::now() < deadline, "build {n} never started");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn go(&self, n: usize) {
        std::fs::write(self.dir.path().join(format!("go-{n}")), "").unwrap();
    }
}

/// foo's source with `marker` in its greeting.
fn greeting(original: &str, marker: &str) -> String {
    let text = original.replacen("Hello, {who}!", &format!("Hello, {{who}}! {marker}"), 1);
    assert_ne!(text, original, "foo's greeting is not where the test expects it");
    text
}

/// `xtask watch plugin/foo bin --debug --no-initial-build`, with the gate's cargo if given.
fn watch(scratch: &Scratch, xtask: &Path, gate: Option<&Gate>, extra: &[&str]) -> Lines {
    let mut c = Command::new(xtask);
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target);
    if let Some(gate) = gate {
        c.env("CARGO", gate.cargo());
    }
    c.args(["watch", "plugin/foo", "bin", "--debug", "--no-initial-build"]).args(extra);
    let mut lines = Lines::start(c);
    lines.wait_for("watching");
    lines
}

/// The newest library in `bin`.
fn newest_library_path(bin: &Path) -> PathBuf {
    std::fs::read_dir(bin)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .expect("a library in bin")
}

fn newest_library(bin: &Path) -> Vec<u8> {
    std::fs::read(newest_library_path(bin)).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The scratch workspace with foo built once into `bin` (dev profile) and the dev host built.
fn prepared() -> (Scratch, PathBuf) {
    let xtask = hotswap_tests::tools::cli();
    let scratch = hello_workspace("edit-loop");
    let mut c = scratch.cargo();
    assert!(c.args(["build", "--quiet", "-p", "hello-host"]).status().unwrap().success());
    let mut c = Command::new(&xtask);
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target);
    assert!(c.args(["build", "plugin/foo", "bin", "--debug"]).status().unwrap().success());
    (scratch, xtask)
}

fn host(scratch: &Scratch) -> Lines {
    let mut c = Command::new(scratch.target.join("debug/hello-host"));
    c.current_dir(scratch.path()).env("RUST_LOG", "warn");
    c.args(["--plugins", "bin", "--interval-ms", "20", "--socket"]).arg(scratch.path().join("control.sock"));
    let mut lines = Lines::start(c);
    lines.wait_for("foo");
    lines
}

/// The hello host serving `foo` from a prepared scratch workspace, and a watch of `foo` that
/// reloads it over the host's control socket; the scratch workspace goes last.
struct Reloading {
    host: Lines,
    watch: Lines,
    /// foo's `src/lib.rs`, and its text before the test.
    source: PathBuf,
    original: String,
    _scratch: Scratch,
}

fn reloading() -> Reloading {
    let (scratch, xtask) = prepared();
    let host = host(&scratch);
    let socket = scratch.path().join("control.sock");
    let watch = watch(&scratch, &xtask, None, &["--socket", socket.to_str().unwrap()]);
    let source = scratch.foo_source();
    let original = std::fs::read_to_string(&source).unwrap();
    Reloading { host, watch, source, original, _scratch: scratch }
}

#[test]
fn a_save_during_a_build_builds_once_more_after_it() {
    let _serial = serial();
    let (scratch, xtask) = prepared();
    let gate = Gate::new();
    let mut watch = watch(&scratch, &xtask, Some(&gate), &["--no-reload"]);
    let source = scratch.foo_source();
    let original = std::fs::read_to_string(&source).unwrap();

    std::fs::write(&source, greeting(&original, "first-save")).unwrap();
    gate.wait_started(1);
    // Saved while build 1 runs (held at the gate).
    std::fs::write(&source, greeting(&original, "second-save")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    gate.go(1);
    watch.wait_for("built foo");
    gate.wait_started(2);
    gate.go(2);
    let second = watch.wait_for("built foo");
    assert!(second.contains("ms after the change"), "{second}");
    assert!(
        contains(&newest_library(&scratch.path().join("bin")), "second-save"),
        "the second build has the second save"
    );
    // The watch splits the debug info out by default, as `build` does.
    let library = newest_library_path(&scratch.path().join("bin"));
    assert!(library.with_extension("debug").is_file(), "{} has its .debug file beside it", library.display());
    // And nothing more.
    gate.go(3);
    let later = watch.lines_within(Duration::from_secs(2));
    assert_eq!(gate.builds_started(), 2, "two builds, no third: {later:?}");
}

#[test]
fn a_burst_of_saves_builds_once() {
    let _serial = serial();
    let (scratch, xtask) = prepared();
    let gate = Gate::new();
    let mut watch = watch(&scratch, &xtask, Some(&gate), &["--no-reload"]);
    for n in 1..=3 {
        gate.go(n);
    }
    let source = scratch.foo_source();
    let original = std::fs::read_to_string(&source).unwrap();
    let text = greeting(&original, "burst-save");
    let (head, tail) = text.split_at(text.len() / 2);
    // An editor writing lib.rs in two pieces, 300 ms apart (far beyond the settle time), while
    // another file of the crate is saved: one save.
    let mut file = std::fs::File::create(&source).unwrap();
    file.write_all(head.as_bytes()).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    std::fs::write(scratch.path().join("plugin/foo/src/notes.txt"), "a note").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    file.write_all(tail.as_bytes()).unwrap();
    drop(file);
    let line = watch.wait_for("built foo");
    assert!(line.contains("src/lib.rs") && line.contains("src/notes.txt"), "{line}");
    let later = watch.lines_within(Duration::from_secs(2));
    assert_eq!(gate.builds_started(), 1, "one build for the burst: {later:?}");
    assert!(contains(&newest_library(&scratch.path().join("bin")), "burst-save"));
}

#[test]
fn a_save_while_the_last_one_settles_is_built_with_its_own_stamp() {
    let _serial = serial();
    let (scratch, xtask) = prepared();
    let gate = Gate::new();
    // A long settle time, so that the second save surely lands in it after the first save's
    // stamp was computed.
    let mut watch = watch(&scratch, &xtask, Some(&gate), &["--no-reload", "--debounce-ms", "1500"]);
    for n in 1..=3 {
        gate.go(n);
    }
    let source = scratch.foo_source();
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, greeting(&original, "settling-first")).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(&source, greeting(&original, "settling-second")).unwrap();
    let line = watch.wait_for("built foo");
    // Stamped while the save settled: no stamp time left in the build.
    assert!(line.contains("stamped meanwhile in") && line.contains("stamp 0,"), "{line}");
    let later = watch.lines_within(Duration::from_secs(2));
    assert_eq!(gate.builds_started(), 1, "one build for both saves: {later:?}");
    let library = newest_library_path(&scratch.path().join("bin"));
    let bytes = std::fs::read(&library).unwrap();
    assert!(contains(&bytes, "settling-second") && !contains(&bytes, "settling-first"));
    // The stamp is the one of the files built, as a one-shot build computes it now.
    let mut c = Command::new(&xtask);
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target);
    let out = c.args(["build", "--print-stamp", "plugin/foo", "bin", "--debug"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let version = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(library.file_name().unwrap().to_str().unwrap(), format!("foo@{version}.so"), "{line}");
}

/// The `fsync`/`fdatasync` calls in an strace log.
fn syncs(log: &Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines().filter(|l| l.starts_with("fsync(") || l.starts_with("fdatasync(")).count()
}

#[test]
fn the_watch_does_not_sync_manifests_to_disk_and_a_one_shot_build_does() {
    let _serial = serial();
    if Command::new("strace").arg("-V").output().is_err() {
        return hotswap_tests::skip_unless_ci("strace is not installed");
    }
    let (scratch, xtask) = prepared();
    let logs = tempfile::tempdir().unwrap();
    let source = scratch.foo_source();
    let original = std::fs::read_to_string(&source).unwrap();
    // A one-shot build syncs the manifest (and strace sees it: the check below can fail).
    std::fs::write(&source, greeting(&original, "one-shot")).unwrap();
    let one_shot = logs.path().join("build.strace");
    let mut c = Command::new("strace");
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target);
    c.arg("-o").arg(&one_shot).args(["-e", "trace=fsync,fdatasync"]).arg(&xtask);
    assert!(c.args(["build", "plugin/foo", "bin", "--debug"]).status().unwrap().success());
    assert!(syncs(&one_shot) >= 1, "{}", std::fs::read_to_string(&one_shot).unwrap());
    // The watch's builds run on its main thread, the one strace follows.
    let mut watch = watch(&scratch, &xtask, None, &["--no-reload"]);
    let traced = logs.path().join("watch.strace");
    let mut strace = Command::new("strace")
        .arg("-o")
        .arg(&traced)
        .args(["-e", "trace=fsync,fdatasync", "-p"])
        .arg(watch.child.id().to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut attached = String::new();
    std::io::BufReader::new(strace.stderr.take().unwrap()).read_line(&mut attached).unwrap();
    assert!(attached.contains("attached"), "{attached}");
    std::fs::write(&source, greeting(&original, "watched")).unwrap();
    watch.wait_for("built foo");
    let library = newest_library_path(&scratch.path().join("bin"));
    assert!(contains(&std::fs::read(&library).unwrap(), "watched"));
    assert!(library.with_extension("json").is_file());
    let _ = strace.kill();
    let _ = strace.wait();
    assert_eq!(syncs(&traced), 0, "{}", std::fs::read_to_string(&traced).unwrap());
}

#[test]
fn a_failing_build_keeps_the_host_serving_and_says_why_in_one_line() {
    let _serial = serial();
    let Reloading { mut host, mut watch, source, original, _scratch } = reloading();
    let broken = greeting(&original, "broken-save").replacen(
        "fn greet(who: &str) -> String {",
        "fn greet(who: &str) -> String {\n    let wrong: u32 = \"text\";",
        1,
    );
    std::fs::write(&source, broken).unwrap();
    let line = watch.wait_for("FAILED");
    assert!(line.contains("build of foo FAILED: error[E0308]: mismatched types at "), "{line}");
    assert!(line.contains("src/lib.rs:"), "{line}");
    assert!(line.contains("the host stays on its current code"), "{line}");
    // The host still serves the old code, and keeps answering.
    let served = host.lines_within(Duration::from_millis(500));
    assert!(served.iter().any(|l| l.contains("Hello, world!")), "{served:?}");
    assert!(!served.iter().any(|l| l.contains("broken-save")));
    // Mended, it serves the new code.
    std::fs::write(&source, greeting(&original, "mended-save")).unwrap();
    let line = watch.wait_for("reload");
    assert!(line.contains("reload accepted") && line.contains("serving"), "{line}");
    host.wait_for("mended-save");
}

#[test]
fn a_refused_reload_keeps_the_host_serving_and_says_why_in_one_line() {
    let _serial = serial();
    let Reloading { mut host, mut watch, source, original, _scratch } = reloading();
    let refusing = greeting(&original, "refused-save").replacen(
        "pub fn on_load(ctx: &LoadContext) -> HookResult {",
        "pub fn on_load(ctx: &LoadContext) -> HookResult {\n    if !ctx.version.is_empty() {\n        return Err(\"not in this test\".into());\n    }",
        1,
    );
    std::fs::write(&source, refusing).unwrap();
    let line = watch.wait_for("reload");
    assert!(line.contains("built foo"), "{line}");
    assert!(line.contains("reload REFUSED:") && line.contains("not in this test"), "{line}");
    assert!(line.contains("the previous generation keeps serving"), "{line}");
    let served = host.lines_within(Duration::from_millis(500));
    assert!(served.iter().any(|l| l.contains("Hello, world!")), "{served:?}");
    assert!(!served.iter().any(|l| l.contains("refused-save")));
}
