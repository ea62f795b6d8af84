//! Static linking: the slink demo host built with its plugins linked in behaves like the same
//! host loading the same plugins with dlopen, refuses reloads clearly, and can be debugged.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hotswap_tests::{build_plugin, workspace_root};

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run_ok(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{command:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The slink host built by `cargo xtask build --static-linking --debug`, once per process.
fn static_host() -> PathBuf {
    static HOST: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    HOST.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let stdout = run_ok(
            cargo()
                .args(["run", "--quiet", "--package", "xtask", "--", "build", "--static-linking", "--debug"])
                .arg(workspace_root().join("demo/slink/host"))
                .arg(out.path()),
        );
        assert!(stdout.contains("built static host slink-host"), "{stdout}");
        let binary = out.path().join("slink-host");
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("slink-host.json")).unwrap()).unwrap();
        let linked: Vec<&str> =
            manifest["plugins"].as_array().unwrap().iter().map(|p| p["package"].as_str().unwrap()).collect();
        assert_eq!(linked, ["slink_store", "slink_shop"]);
        assert_eq!(manifest["profile"], "debug");
        (out, binary)
    })
    .1
    .clone()
}

/// The same host built normally, and a folder with the plugins built by `cargo xtask build`.
fn dynamic_host() -> (PathBuf, tempfile::TempDir) {
    let plugins = tempfile::tempdir().unwrap();
    build_plugin("demo/slink/plugin/store").install(plugins.path());
    build_plugin("demo/slink/plugin/shop").install(plugins.path());
    (hotswap_tests::tools::cargo_binary("slink-host", "slink-host"), plugins)
}

fn run_host(binary: &Path, args: &[&str]) -> Vec<String> {
    let stdout = run_ok(Command::new(binary).args(args));
    stdout.lines().map(str::to_string).collect()
}

#[test]
fn dynamic_and_static_builds_give_the_same_results() {
    let (dynamic, plugins) = dynamic_host();
    let plugin_dir = plugins.path().to_str().unwrap();
    let scenario = ["--rounds", "3", "--reload-after", "0", "--plugins", plugin_dir];
    let from_files = run_host(&dynamic, &scenario);
    let linked = run_host(&static_host(), &scenario);
    assert_eq!(from_files[0], "mode: dynamic (plugins loaded from a folder)");
    assert_eq!(linked[0], "mode: static (plugins linked in)");
    assert_eq!(from_files[1..], linked[1..], "every call gives the same result in both modes");
    // The scenario exercised hook order, dependencies, the vault's extension and imports,
    // invoke_func, invoke_each and live items:
    let text = linked.join("\n");
    for expected in [
        "[slink_store] on_load in generation 1\n[slink_shop] on_load in generation 1\n[slink_store] on_init\n[slink_shop] on_init",
        "generation 1: load order slink_store, slink_shop",
        "round 3: 5 items cost 1250 (checkout #3 of generation 1)",
        "round 1: slink_store says store: 4 items cost 1000\nround 1: slink_shop says shop: sells through slink_store",
        "round 2: live_discount(1500) = 1350",
        "round 3: live type struct LiveReceipt { items: u64, total: u64 }",
        "[slink_shop] on_free\n[slink_store] on_free",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn a_static_host_refuses_a_reload_and_keeps_serving() {
    let lines = run_host(&static_host(), &["--rounds", "2", "--reload-after", "1"]).join("\n");
    assert!(lines.contains("reload refused: ") && lines.contains("built with --static-linking"), "{lines}");
    assert!(lines.contains("round 2: 4 items cost 1000 (checkout #2 of generation 1)"), "{lines}");
}

#[test]
fn gdb_stops_in_plugin_code_with_its_source_file() {
    if Command::new("gdb").arg("--version").output().is_err() {
        return hotswap_tests::skip_unless_ci("gdb is not installed (.ci/run installs it)");
    }
    let output = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", "break slink_shop::checkout", "-ex", "run", "-ex", "bt", "--args"])
        .arg(static_host())
        .args(["--rounds", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Breakpoint 1, slink_shop::checkout"), "breakpoint not hit:\n{stdout}");
    let frame0 = stdout.lines().find(|l| l.starts_with("#0")).unwrap_or_default();
    assert!(frame0.contains("demo/slink/plugin/shop/src/lib.rs"), "plugin source not in the backtrace: {frame0}");
}

/// `--static-linking` in a workspace on the shared route (`[workspace.metadata.hotswap]
/// shared`) is refused in one line naming the workspace's shared crate, why and what to do,
/// before anything is built: such a host links the shared crate and std as shared libraries
/// (a binary cannot link a `dylib`-only crate otherwise), so it is never one self-contained
/// binary.
#[test]
fn a_static_build_on_the_shared_route_is_refused_before_building() {
    let out = tempfile::tempdir().unwrap();
    let output = cargo()
        .args(["run", "--quiet", "--package", "xtask", "--", "build", "--static-linking", "--debug"])
        .arg(workspace_root().join("tests/shared_tokio/host"))
        .arg(out.path().join("bin"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the build was not refused:\n{stderr}");
    let expected = format!(
        "--static-linking cannot build shared_host: its workspace is on the shared route \
         ([workspace.metadata.hotswap] shared = \"shared_tokio\" in {}/Cargo.toml), so the host links shared_tokio \
         and std as shared libraries and is never one self-contained binary; build the host as on the shared route \
         (RUSTFLAGS=\"-C prefer-dynamic --cfg tokio_unstable\" cargo build) and its plugins with `build`",
        workspace_root().join("tests/shared_tokio").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!out.path().join("bin").exists(), "the refused build wrote its output folder");
}
