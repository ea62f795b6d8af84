//! Issue 23 §1, the shared route on the real toolkit: host and plugin share ONE compiled tokio
//! (the `dylib` crate of `tests/shared_tokio/`, everything built with `-C prefer-dynamic
//! --cfg tokio_unstable`, the plugin with `cargo xtask build`). A task the plugin's code starts
//! with raw `tokio::spawn` sleeps past three reloads that each free the generation it came
//! from, and finishes on the code that spawned it: its library stays mapped because the host's
//! task hook pins the library a spawn comes from (`tests/shared_tokio/host/src/main.rs`).
//! Without that hook the same run dies with SIGSEGV (the replaced library is unmapped under
//! the sleeping task), checked by hand with `SHARED_HOST_NO_PIN=1`.
//!
//! The same run checks the logs: `tracing` and `log` are one copy too, so the plugin's
//! `tracing::warn!` (with a field), its `log::warn!` and the spawned task's `tracing::info!`
//! reach the host's subscriber, inside the span `plugin{name, generation}` the host enters
//! around the call, which the host's poll hooks keep current in the task.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FLAGS: &str = "-C prefer-dynamic --cfg tokio_unstable";

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // The fixture's flags replace any the caller set; none may leak into the toolkit's build.
    command.env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS").env_remove("CARGO_BUILD_RUSTFLAGS");
    command
}

fn check(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The toolkit's own target folder (`CARGO_TARGET_DIR` if set).
fn toolkit_target(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

#[test]
fn a_raw_tokio_spawn_task_outlives_three_reloads_on_its_code_and_plugin_logs_reach_the_host() {
    let root = hotswap_tests::workspace_root();
    let fixture = root.join("tests/shared_tokio");
    let target = toolkit_target(&root).join("shared-tokio");

    // The host, and with it the shared dylib, in the fixture's own workspace and target folder.
    check(
        cargo()
            .args(["build", "--quiet", "--manifest-path"])
            .arg(fixture.join("Cargo.toml"))
            .args(["-p", "shared_host"])
            .env("RUSTFLAGS", FLAGS)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap(),
        "building the shared-tokio host",
    );
    let shared = target.join("debug/deps/libshared_tokio.so");
    let shared_before = std::fs::read(&shared).unwrap();

    // The plugin's two builds, with the real `cargo xtask build` (built without the flags).
    check(cargo().current_dir(&root).args(["build", "--quiet", "-p", "xtask"]).output().unwrap(), "building xtask");
    let xtask = toolkit_target(&root).join("debug/xtask");
    let out = tempfile::tempdir().unwrap();
    for (build, extra) in [("v1", &[][..]), ("v2", &["--", "--features", "v2"][..])] {
        check(
            Command::new(&xtask)
                .current_dir(&root)
                .args(["build", "--debug"])
                .arg(fixture.join("plugin"))
                .arg(out.path().join(build))
                .args(extra)
                .env("RUSTFLAGS", FLAGS)
                .env("CARGO_TARGET_DIR", &target)
                .output()
                .unwrap(),
            &format!("cargo xtask build of spawner {build}"),
        );
    }
    // Building the plugin must not have rebuilt the shared library the host links (cargo
    // would, had the plugin resolved tokio's or libc's features otherwise).
    assert!(std::fs::read(&shared).unwrap() == shared_before, "building the plugin rebuilt {}", shared.display());

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = check(Command::new(rustc).args(["--print", "target-libdir"]).output().unwrap(), "rustc --print");
    let dirs = tempfile::tempdir().unwrap();
    let (folder, work) = (dirs.path().join("plugins"), dirs.path().join("work"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let stdout = check(
        Command::new(target.join("debug/shared_host"))
            .args([&folder, &work, &out.path().join("v1"), &out.path().join("v2")])
            .env("LD_LIBRARY_PATH", format!("{}:{}", target.join("debug/deps").display(), libdir.trim()))
            .env_remove("SHARED_HOST_NO_PIN")
            .output()
            .unwrap(),
        "the shared-tokio host",
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "LOADED build=v1 libraries=1",
            "RELOAD 1 build=v2 first_library_mapped=true",
            "RELOAD 2 build=v1 first_library_mapped=true",
            "RELOAD 3 build=v2 first_library_mapped=true",
            "TASK task spawned by v1 finished",
            "PINNED libraries=1 first_library_mapped=true",
            r#"EVENT WARN start called answer=42 in plugin{name="spawner" generation=1}"#,
            r#"EVENT WARN log record from start in plugin{name="spawner" generation=1}"#,
            r#"EVENT INFO task finished in plugin{name="spawner" generation=1}"#,
        ],
        "{stdout}"
    );
}
