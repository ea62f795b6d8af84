//! What the published crates carry, and what a plugin compiles.
//!
//! * The templates live once, in the top-level `templates/` folder; `hotswap-build` and
//!   `hotswap-cli` carry the ones they need as symbolic links to those files, which
//!   `cargo package` packs as plain files. No source file reaches outside its crate (`.ci/run`
//!   runs `cargo package` with verification, which would fail on such a path).
//! * A plugin depends on `hotswap-runtime` without its `host` feature: none of the host-side
//!   crates is compiled into it, and a host built with the feature loads it (same fingerprint).

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use hotswap_runtime::PluginManager;
use hotswap_tests::{build_plugin, workspace_root};

/// The crates `cargo package` publishes.
const PUBLISHED: [&str; 3] = ["hotswap-runtime", "hotswap-build", "hotswap-cli"];

/// Crates only the host side of the runtime needs (`tracing` is on both sides, without its
/// proc-macro `attributes` feature: a plugin logs a value's drop that panicked).
const HOST_ONLY: [&str; 8] =
    ["libloading", "arc-swap", "object", "sha2", "tempfile", "signal-hook", "sd-notify", "tracing-attributes"];

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// `a/b/../c` → `a/c`, lexically: a symbolic link is not followed.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => assert!(out.pop(), "{} climbs above the root", path.display()),
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn each_crate_carries_its_templates_as_links_to_the_one_templates_folder() {
    let root = workspace_root().canonicalize().unwrap();
    let templates = root.join("templates");
    let mut linked = Vec::new();
    for krate in ["hotswap-build", "hotswap-cli"] {
        let carried = files_under(&root.join(krate).join("templates"));
        assert!(!carried.is_empty(), "{krate} carries no templates");
        for file in carried {
            let meta = std::fs::symlink_metadata(&file).unwrap();
            assert!(meta.file_type().is_symlink(), "{} is a copy; make it a link into templates/", file.display());
            let target = file.canonicalize().unwrap();
            assert!(target.starts_with(&templates), "{} points to {}", file.display(), target.display());
            // The link keeps the layout: <crate>/templates/x points to templates/x.
            let relative = file.strip_prefix(root.join(krate).join("templates")).unwrap();
            assert_eq!(target, templates.join(relative), "{}", file.display());
            linked.push(target);
        }
    }
    for template in files_under(&templates) {
        assert!(linked.contains(&template), "{} is carried by no crate", template.display());
    }
}

#[test]
fn no_published_source_includes_a_file_outside_its_crate() {
    let root = workspace_root().canonicalize().unwrap();
    let mut includes = 0;
    for krate in PUBLISHED {
        let crate_dir = root.join(krate);
        for file in files_under(&crate_dir.join("src")).into_iter().filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = std::fs::read_to_string(&file).unwrap();
            for macro_name in ["include_str!(\"", "include_bytes!(\"", "include!(\""] {
                for (at, _) in text.match_indices(macro_name) {
                    let rest = &text[at + macro_name.len()..];
                    let path = &rest[..rest.find('"').unwrap()];
                    if path.starts_with("concat!") || path.is_empty() {
                        continue;
                    }
                    includes += 1;
                    let resolved = lexical(&file.parent().unwrap().join(path));
                    assert!(
                        resolved.starts_with(&crate_dir),
                        "{}: `{macro_name}{path}\")` reaches outside {krate}/, so its package cannot build",
                        file.display()
                    );
                    assert!(resolved.exists(), "{}: {path} does not exist", file.display());
                }
            }
        }
    }
    assert!(includes >= 9, "found only {includes} includes: the scan is broken");
}

/// `cargo tree` over every plugin crate of the workspace at once: features are unified over the
/// packages asked for, so one plugin asking for the host side would bring it to all of them.
#[test]
fn every_plugin_in_the_workspace_depends_on_the_runtime_without_its_host_side() {
    let root = workspace_root();
    let mut plugins = Vec::new();
    for group in [
        "tests/plugins",
        "demo/hello/plugin",
        "demo/trine/plugin",
        "demo/livex/plugin",
        "demo/extension/plugin",
        "demo/slink/plugin",
    ] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let manifest = entry.unwrap().path().join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).unwrap();
            if text.contains("cdylib") && text.contains("hotswap-runtime") {
                plugins.push(manifest);
            }
        }
    }
    assert!(plugins.len() >= 30, "found {} plugins", plugins.len());
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(&root).args(["tree", "--offline", "-e", "normal", "--prefix", "none", "-f", "{p}|{f}"]);
    for manifest in &plugins {
        let text = std::fs::read_to_string(manifest).unwrap();
        let name = text.lines().find_map(|l| l.strip_prefix("name = \"")).unwrap().trim_end_matches('"');
        command.args(["-p", name]);
    }
    let output = command.output().unwrap();
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    let runtime: Vec<&str> = tree.lines().filter(|l| l.starts_with("hotswap-runtime v")).collect();
    assert!(!runtime.is_empty(), "{tree}");
    for line in runtime {
        let features = line.rsplit_once('|').unwrap().1;
        assert!(!features.split(',').any(|f| f == "host"), "a plugin turns on the runtime's host side: {line}");
    }
    for krate in HOST_ONLY {
        assert!(
            !tree.lines().any(|l| l.starts_with(&format!("{krate} v"))),
            "{krate} is compiled for a plugin:\n{tree}"
        );
    }
}

/// The library `cargo xtask build` makes holds no host-side code, and the host (these tests are
/// built with the `host` feature) accepts its fingerprint and calls it.
#[test]
fn a_plugin_built_without_the_host_side_loads_in_a_host_built_with_it() {
    let built = build_plugin("tests/plugins/greeter_v1");
    let bytes = std::fs::read(&built.library).unwrap();
    // Debug builds name every crate whose code they hold (symbols and debug info).
    for name in ["libloading", "arc_swap", "signal_hook", "tempfile", "PluginManager"] {
        assert!(
            !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
            "{} holds `{name}`: host-side code in a plugin",
            built.library.display()
        );
    }
    // Still a real plugin: it names the runtime's code it does use.
    assert!(bytes.windows(15).any(|w| w == b"hotswap_runtime"), "the check above looks at the wrong file");

    let dir = tempfile::tempdir().unwrap();
    built.install(dir.path());
    let manager = PluginManager::builder(dir.path()).build().unwrap();
    manager.load_plugins().expect("the fingerprints match");
    let greeter = manager.find_plugin("greeter").unwrap();
    let text: String = greeter.invoke("answer", hotswap_runtime::args![]).unwrap();
    assert_eq!(text, "v1");
    let sum: i64 = greeter.invoke("add", hotswap_runtime::args![6_i64, 7_i64]).unwrap();
    assert_eq!(sum, 13);
}
