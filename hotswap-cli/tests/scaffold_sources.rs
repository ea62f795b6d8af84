//! Where `new` takes the hotswap crates from, in a workspace outside this repository: a path
//! (`--hotswap-path`) or the registry (`--hotswap-version`). Each generated workspace is then
//! resolved by cargo itself (offline, with this repository's lock file): by path, and by
//! version with the registry crates patched to this checkout, which cargo applies only when
//! the version requirement the scaffold wrote matches. Plugins get the runtime without its
//! `host` feature, hosts with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use toml_edit::{DocumentMut, Item};

/// `cargo hotswap <args>` in `ws`, as cargo runs the subcommand.
mod common;
use common::{ok, repo};

fn hotswap(ws: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-hotswap")).current_dir(ws).arg("hotswap").args(args).output().unwrap()
}

fn manifest(path: &Path) -> DocumentMut {
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

/// A fresh workspace with a host and a plugin, scaffolded with `source_args`.
fn scaffold(source_args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let ws = temp.path().join("game");
    std::fs::create_dir(&ws).unwrap();
    let mut host = vec!["new", "host", "host"];
    host.extend_from_slice(source_args);
    ok(hotswap(&ws, &host), "new host");
    ok(hotswap(&ws, &["new", "plugin", "plugins/greeter"]), "new plugin");
    // The same dependency versions as this repository, so cargo resolves offline.
    std::fs::copy(repo().join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    (temp, ws)
}

/// The host asks for the runtime's host side; the plugin takes the workspace entry as it is.
fn assert_members_use_the_workspace_entries(ws: &Path) {
    let host = manifest(&ws.join("host/Cargo.toml"));
    let runtime = host["dependencies"]["hotswap-runtime"].as_inline_table().expect("an inline table");
    assert_eq!(runtime.get("workspace").and_then(|v| v.as_bool()), Some(true), "{host}");
    let features: Vec<&str> =
        runtime.get("features").unwrap().as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert_eq!(features, ["host"], "{host}");

    let plugin = manifest(&ws.join("plugins/greeter/Cargo.toml"));
    assert_eq!(plugin["dependencies"]["hotswap-runtime"]["workspace"].as_bool(), Some(true), "{plugin}");
    assert!(plugin["dependencies"]["hotswap-runtime"].get("features").is_none(), "{plugin}");
    assert_eq!(plugin["build-dependencies"]["hotswap-build"]["workspace"].as_bool(), Some(true), "{plugin}");
}

/// The crates `package` depends on (normal dependencies), resolved by cargo.
fn tree(ws: &Path, package: &str, config: &[String]) -> String {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(ws).args(["tree", "--offline", "-e", "normal", "--prefix", "none", "-p", package]);
    for c in config {
        command.arg("--config").arg(c);
    }
    ok(command.output().unwrap(), &format!("cargo tree -p {package}"))
}

/// The plugin resolves to the runtime in `runtime_dir`, without the host side; the host with it.
fn assert_resolves(ws: &Path, config: &[String]) {
    let runtime = format!("hotswap-runtime v0.1.0 ({})", repo().join("hotswap-runtime").display());
    let plugin = tree(ws, "greeter", config);
    assert!(plugin.contains(&runtime), "{plugin}");
    for host_only in ["libloading", "arc-swap", "sha2", "object", "tempfile", "signal-hook"] {
        assert!(
            !plugin.lines().any(|l| l.starts_with(&format!("{host_only} v"))),
            "{host_only} in the plugin:\n{plugin}"
        );
    }
    let host = tree(ws, "host", config);
    assert!(host.contains(&runtime), "{host}");
    assert!(host.lines().any(|l| l.starts_with("libloading v")), "the host side is missing:\n{host}");
}

#[test]
fn by_path_the_workspace_depends_on_the_checkout() {
    let repo = repo().canonicalize().unwrap();
    let (_temp, ws) = scaffold(&["--hotswap-path", repo.to_str().unwrap()]);
    let root = manifest(&ws.join("Cargo.toml"));
    let deps = &root["workspace"]["dependencies"];
    let runtime = deps["hotswap-runtime"].as_inline_table().unwrap();
    assert_eq!(runtime.get("path").and_then(|v| v.as_str()), Some(repo.join("hotswap-runtime").to_str().unwrap()));
    assert_eq!(runtime.get("default-features").and_then(|v| v.as_bool()), Some(false), "{root}");
    assert!(runtime.get("version").is_none(), "{root}");
    let build = deps["hotswap-build"].as_inline_table().unwrap();
    assert_eq!(build.get("path").and_then(|v| v.as_str()), Some(repo.join("hotswap-build").to_str().unwrap()));
    assert_members_use_the_workspace_entries(&ws);
    assert_resolves(&ws, &[]);
}

#[test]
fn by_version_the_workspace_depends_on_the_registry() {
    let (_temp, ws) = scaffold(&["--hotswap-version", "0.1"]);
    let root = manifest(&ws.join("Cargo.toml"));
    let deps = &root["workspace"]["dependencies"];
    for krate in ["hotswap-runtime", "hotswap-build"] {
        let entry = deps[krate].as_inline_table().unwrap();
        assert_eq!(entry.get("version").and_then(|v| v.as_str()), Some("0.1"), "{root}");
        assert!(entry.get("path").is_none() && entry.get("git").is_none(), "{root}");
    }
    let runtime = deps["hotswap-runtime"].as_inline_table().unwrap();
    assert_eq!(runtime.get("default-features").and_then(|v| v.as_bool()), Some(false), "{root}");
    assert_members_use_the_workspace_entries(&ws);

    // Cargo takes both crates from crates.io by version; the patch stands in for the registry
    // and applies only if the requirement `new` wrote accepts this checkout's version.
    let patch = |krate: &str| format!("patch.crates-io.{krate}.path={:?}", repo().join(krate).to_str().unwrap());
    assert_resolves(&ws, &[patch("hotswap-runtime"), patch("hotswap-build")]);
}

#[test]
fn a_version_that_is_no_requirement_or_both_sources_are_refused_and_nothing_is_written() {
    let temp = tempfile::tempdir().unwrap();
    let refused = hotswap(temp.path(), &["new", "host", "host", "--hotswap-version", "not a version"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--hotswap-version not a version is not a version requirement"), "{stderr}");

    let both = hotswap(temp.path(), &["new", "host", "host", "--hotswap-version", "0.1", "--hotswap-path", "."]);
    assert!(!both.status.success());
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0, "nothing is written");
}

#[test]
fn an_existing_entry_in_the_workspace_is_kept() {
    let temp = tempfile::tempdir().unwrap();
    let ws = temp.path();
    let existing =
        "[workspace]\nmembers = []\n\n[workspace.dependencies]\nhotswap-runtime = \"0.1\"\nhotswap-build = \"0.1\"\n";
    std::fs::write(ws.join("Cargo.toml"), existing).unwrap();
    ok(hotswap(ws, &["new", "plugin", "p"]), "new plugin");
    let root = manifest(&ws.join("Cargo.toml"));
    assert!(
        matches!(&root["workspace"]["dependencies"]["hotswap-runtime"], Item::Value(v) if v.as_str() == Some("0.1")),
        "{root}"
    );
    assert!(root.get("profile").is_none(), "{root}");
}
