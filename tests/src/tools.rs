//! The programs tests run besides plugins: the workspace's own binaries, found where cargo put
//! them (so a test works under `CARGO_TARGET_DIR` too), and ansible-core, installed on first
//! use into a venv under `target/` (the one `.ci/run` warms up), so that `cargo test
//! --workspace` on a new machine runs the rollout test for real instead of skipping it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::workspace_root;

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Builds the binary `bin` of the workspace package `package` (dev profile), once per process
/// and binary, and returns its path as cargo's JSON messages give it (`executable` of the
/// `compiler-artifact`), not a guessed `target/debug/<bin>`.
pub fn cargo_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("{package}/{bin}");
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let output = cargo()
        .args(["build", "--quiet", "--message-format=json-render-diagnostics", "--package", package, "--bin", bin])
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo build");
    assert!(output.status.success(), "cargo build --package {package} --bin {bin} failed");
    let path = executable_in(&output.stdout, bin)
        .unwrap_or_else(|| panic!("cargo build --package {package} named no executable {bin}"));
    built.insert(key, path.clone());
    path
}

/// The hotswap CLI as the workspace builds it: binary `xtask` (the CLI under the name `cargo
/// xtask`, the same code as `cargo hotswap`), built once per process.
pub fn cli() -> PathBuf {
    cargo_binary("xtask", "xtask")
}

/// Runs `xtask <args> --json --socket <socket>` and returns its exit code and its answer, which
/// must be one JSON object on one line that states that exit code.
pub fn cli_json(socket: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let output = Command::new(cli()).args(args).arg("--json").arg("--socket").arg(socket).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON object on one line: {stdout}");
    let code = output.status.code().unwrap();
    assert_eq!(json["exit_code"], code, "the JSON says the exit code: {json}");
    (code, json)
}

/// The `executable` of the binary target `bin` in cargo's JSON messages.
fn executable_in(messages: &[u8], bin: &str) -> Option<PathBuf> {
    String::from_utf8_lossy(messages)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// The venv `.ci/run` and [`ansible_playbook`] install ansible-core into.
pub fn ansible_venv() -> PathBuf {
    workspace_root().join("target").join("ansible-venv")
}

/// `ansible-playbook`: `$HOTSWAP_ANSIBLE_PLAYBOOK` if set, else the one in [`ansible_venv`],
/// which is made (`python3 -m venv`, `pip install ansible-core`) when it is missing. A failed
/// install is an `Err` naming the step and its output. Installs are serialised between
/// processes with a lock file beside the venv, and a half-made venv is removed first.
pub fn ansible_playbook() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("HOTSWAP_ANSIBLE_PLAYBOOK") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("HOTSWAP_ANSIBLE_PLAYBOOK={} is not a file", path.display()))
        };
    }
    let venv = ansible_venv();
    let playbook = venv.join("bin").join("ansible-playbook");
    // The marker is written after pip has finished: a venv without it is half made.
    let done = venv.join("hotswap-installed");
    if done.is_file() && playbook.is_file() {
        return Ok(playbook);
    }
    std::fs::create_dir_all(venv.parent().unwrap()).map_err(|e| format!("creating target/: {e}"))?;
    let lock_path = venv.with_extension("lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if done.is_file() && playbook.is_file() {
        return Ok(playbook);
    }
    // A venv from .ci/run (before it wrote the marker) is complete when its playbook runs.
    if playbook.is_file() && run(Command::new(&playbook).arg("--version")).is_ok() {
        std::fs::write(&done, b"").map_err(|e| format!("{}: {e}", done.display()))?;
        return Ok(playbook);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let started = std::time::Instant::now();
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .and_then(|()| run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "ansible-core"])))
        .map_err(|e| {
            let _ = std::fs::remove_dir_all(&venv);
            format!("installing ansible-core into {}: {e}", venv.display())
        })?;
    std::fs::write(&done, b"").map_err(|e| format!("{}: {e}", done.display()))?;
    loud(&format!("installed ansible-core into {} in {:.1?}", venv.display(), started.elapsed()));
    Ok(playbook)
}

/// Runs `command`; an `Err` holds how it failed and what it printed.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Writes `line` to the process's standard error directly, past the test harness's capture,
/// so that it shows in `cargo test`'s output even when the test passes.
pub fn loud(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
