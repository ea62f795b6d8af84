//! The first hour, for real: in a fresh workspace outside this repository, `cargo hotswap new`
//! scaffolds a host and a plugin, `cargo hotswap build` builds the plugin, the host runs it,
//! and an edit reaches the running host through `cargo hotswap reload` and then through
//! `cargo hotswap watch`, which also survives a broken edit.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

mod common;
use common::{ok, repo};

const WAIT: Duration = Duration::from_secs(180);

/// `cargo` with our `cargo-hotswap` first on PATH, so `cargo hotswap` runs the binary under test.
fn cargo(ws: &Path, target: &Path, socket: &Path) -> Command {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cargo-hotswap")).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(ws).env("PATH", path).env("CARGO_TARGET_DIR", target).env("HOTSWAP_SOCKET", socket);
    command
}

/// Lines of a child's stdout, as they come.
fn lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns every line seen until then.
fn wait_for(rx: &Receiver<String>, needle: &str, what: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("{what}: no line with `{needle}` in {WAIT:?}; saw:\n{}", seen.join("\n"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{what}: ended before a line with `{needle}`; saw:\n{}", seen.join("\n"))
            }
        }
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_fresh_workspace_scaffolds_builds_runs_and_reloads_its_own_plugin() {
    let temp = tempfile::tempdir().unwrap();
    let ws = temp.path().join("game");
    std::fs::create_dir(&ws).unwrap();
    let socket = temp.path().join("run/control.sock");
    // A target folder of its own that survives between runs (incremental), inside ours.
    let target = repo().join("target/scaffold-test");
    let cargo = |args: &[&str]| {
        let mut c = cargo(&ws, &target, &socket);
        c.args(args);
        c
    };

    // Scaffold from an empty folder: the workspace manifest is created, both crates join it.
    let hotswap_path = repo();
    let out = ok(
        cargo(&["hotswap", "new", "host", "host", "--hotswap-path", hotswap_path.to_str().unwrap()]).output().unwrap(),
        "new host",
    );
    assert!(out.contains("created the workspace") && out.contains("cargo run -p host -- bin"), "{out}");
    let out = ok(cargo(&["hotswap", "new", "plugin", "plugins/greeter"]).output().unwrap(), "new plugin");
    // One recipe in both: a dev host (`cargo run`) and dev plugins (`--debug`).
    for command in
        ["cargo hotswap build plugins/greeter bin --debug", "cargo hotswap watch plugins/greeter bin --debug"]
    {
        assert!(out.contains(command), "`{command}` not in:\n{out}");
    }
    for line in out.lines().filter(|l| l.contains("hotswap build") || l.contains("hotswap watch")) {
        assert!(line.contains("--debug"), "a step of another profile: {line}");
    }
    let manifest = std::fs::read_to_string(ws.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("\"host\"") && manifest.contains("\"plugins/greeter\""), "{manifest}");

    // It refuses to overwrite.
    let lib = ws.join("plugins/greeter/src/lib.rs");
    let before = std::fs::read_to_string(&lib).unwrap();
    let refused = cargo(&["hotswap", "new", "plugin", "plugins/greeter"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already exists and is not empty"));
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), before);

    // Same dependency versions as this repository: no resolution, and shared download cache.
    std::fs::copy(repo().join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    let out = ok(cargo(&["hotswap", "build", "plugins/greeter", "bin", "--debug"]).output().unwrap(), "build");
    assert!(out.contains("built greeter 0.1.0+"), "{out}");
    ok(cargo(&["build", "-p", "host"]).output().unwrap(), "cargo build -p host");

    let mut host = Command::new(target.join("debug/host"));
    host.current_dir(&ws).arg("bin").env("HOTSWAP_SOCKET", &socket).stdout(Stdio::piped());
    let mut host = KillOnDrop(host.spawn().unwrap());
    let host_lines = lines(&mut host.0);
    wait_for(&host_lines, "listening for reloads", "the host's control socket");
    wait_for(&host_lines, "[gen 1] greeter: Hello, world! (greeter)", "the host's first generation");

    // A release build for this dev host stops before building, naming the flag; so does a
    // release watch. Nothing is written to the folder the host loads.
    let before = folder_listing(&ws.join("bin"));
    for command in
        [&["hotswap", "build", "plugins/greeter", "bin"][..], &["hotswap", "watch", "plugins/greeter", "bin"]]
    {
        let refused = cargo(command).output().unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{command:?}: {stderr}");
        let expected = format!(
            "error: the host on {} is a dev (debug assertions on) build: build with --debug (or pass --no-profile-check to build release anyway)",
            socket.display()
        );
        assert_eq!(stderr.trim(), expected, "{command:?}");
        assert!(!stderr.contains("Compiling"), "{command:?} built: {stderr}");
    }
    assert_eq!(folder_listing(&ws.join("bin")), before, "nothing written");

    // Edit, build, reload: the running host serves the new code.
    let edit = |from: &str, to: &str| {
        let text = std::fs::read_to_string(&lib).unwrap();
        assert!(text.contains(from), "`{from}` not in {}", lib.display());
        // Write then rename, as editors do; either way the watcher sees a change.
        std::fs::write(lib.with_extension("rs.new"), text.replacen(from, to, 1)).unwrap();
        std::fs::rename(lib.with_extension("rs.new"), &lib).unwrap();
    };
    edit("Hello, {who}!", "Howdy, {who}!");
    ok(cargo(&["hotswap", "build", "plugins/greeter", "bin", "--debug"]).output().unwrap(), "build after the edit");
    let out = ok(cargo(&["hotswap", "reload"]).output().unwrap(), "reload");
    assert!(out.contains("accepted: generation 2"), "{out}");
    wait_for(&host_lines, "[gen 2] greeter: Howdy, world! (greeter)", "the reloaded plugin");

    // Watch: an edit is rebuilt and reloaded without any other command.
    let mut watch = cargo(&["hotswap", "watch", "plugins/greeter", "bin", "--debug", "--no-initial-build"]);
    watch.stdout(Stdio::piped());
    let mut watch = KillOnDrop(watch.spawn().unwrap());
    let watch_lines = lines(&mut watch.0);
    wait_for(&watch_lines, "watching greeter", "watch start");
    // Give the watcher a moment to have its inotify watches in place before the edit.
    std::thread::sleep(Duration::from_millis(500));
    edit("Howdy, {who}!", "Hi there, {who}!");
    let cycle = wait_for(&watch_lines, "greeter: src/lib.rs", "the watch cycle").pop().unwrap();
    assert!(cycle.contains("built greeter") && cycle.contains("reload accepted: generation 3"), "{cycle}");
    wait_for(&host_lines, "[gen 3] greeter: Hi there, world! (greeter)", "the watched edit");

    // A broken edit: the build fails, the host stays on generation 3, the watch goes on.
    edit("fn greet(who: &str) -> String {", "fn greet(who: &str) -> String { let broken: u32 = \"text\";");
    let failed = wait_for(&watch_lines, "FAILED", "the failed build");
    assert!(
        failed.last().unwrap().contains("build of greeter FAILED: error[E0308]")
            && failed.last().unwrap().contains("the host stays on its current code"),
        "{failed:?}"
    );
    wait_for(&host_lines, "[gen 3] greeter: Hi there", "the host after a failed build");
    edit(" let broken: u32 = \"text\";", "");
    let cycle = wait_for(&watch_lines, "reload", "the repaired build").pop().unwrap();
    assert!(cycle.contains("reload accepted: generation 4"), "{cycle}");

    // Ctrl-C stops the watch cleanly.
    // SAFETY: kill with a valid pid of our own child and a valid signal number.
    assert_eq!(unsafe { libc::kill(watch.0.id() as i32, libc::SIGINT) }, 0);
    wait_for(&watch_lines, "watch stopped", "the watch after Ctrl-C");
    let status = watch.0.wait().unwrap();
    assert!(status.success(), "watch exited with {status}");

    // With the host gone, the libraries in the folder say which profile it needs.
    drop(host);
    let refused = cargo(&["hotswap", "build", "plugins/greeter", "bin"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(" in bin ")
            && stderr.contains("dev (debug assertions on) build")
            && stderr.contains("(no host on the socket loads from it): build with --debug"),
        "{stderr}"
    );
}

/// The names in `dir`, sorted.
fn folder_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}
