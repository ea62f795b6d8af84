//! Issue 23 §1, the shared route on the real toolkit: host and plugin share ONE compiled tokio
//! (the `dylib` crate of `tests/shared_tokio/`, named in its `[workspace.metadata.hotswap]`).
//! The host is built by hand with `RUSTFLAGS="-C prefer-dynamic --cfg tokio_unstable"`; the
//! plugin with the real `cargo xtask build`, which reads the route from the workspace, adds the
//! same flags, and records the host's shared library in the manifest.
//!
//! 1. A task the plugin's code starts with raw `tokio::spawn` sleeps past three reloads that
//!    each free the generation it came from, and finishes on the code that spawned it: its
//!    library stays mapped because the host's runtime has `hotswap_tokio::PluginTasks`' hooks,
//!    which also count it as a live task of generation 1 until it ends. Without the hooks the
//!    same run dies with SIGSEGV (the replaced library is unmapped under the sleeping task),
//!    checked by hand with `SHARED_HOST_NO_PIN=1`. A task in the plugin's
//!    `hotswap_tokio::TaskGroup` is cancelled by its `on_free` when generation 1 is replaced.
//!    `tracing` and `log` are one copy too, so the plugin's events (with their fields), and
//!    the spawned task's, reach the host's subscriber inside the span `plugin{name,
//!    generation}` the host enters around the call, which the hooks keep current in the task.
//! 2. After the host is rebuilt against another build of the shared library (the shared
//!    crate's feature `other`), the plugin built before is refused at stage `inspect`, naming
//!    the library and both hashes, and nothing of it is mapped.
//! 3. A plugin build that would rebuild the host's shared library (cargo resolves the shared
//!    crate without `other` for the plugin) is refused by the build tool, naming the plugin and
//!    the library, and the host's file is put back.
//!
//! One test, because the three steps share the fixture's target folder and build on each other.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hotswap_tests::shared_route::{FLAGS, cargo, check, toolkit_target};

struct Fixture {
    root: PathBuf,
    dir: PathBuf,
    target: PathBuf,
    xtask: PathBuf,
}

impl Fixture {
    /// Builds the host (with `features`) in the fixture's own workspace and target folder,
    /// after removing every earlier build of the shared crate (cargo names a `dylib` without a
    /// hash, so builds with other features share one file).
    fn build_host(&self, features: &[&str]) {
        let manifest = self.dir.join("Cargo.toml");
        check(
            cargo()
                .args(["clean", "--quiet", "-p", "shared_tokio", "--manifest-path"])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &self.target)
                .output()
                .unwrap(),
            "cleaning the shared crate",
        );
        check(
            cargo()
                .args(["build", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .args(["-p", "shared_host"])
                .args(features)
                .env("RUSTFLAGS", FLAGS)
                .env("CARGO_TARGET_DIR", &self.target)
                .output()
                .unwrap(),
            "building the shared-tokio host",
        );
    }

    fn shared_library(&self) -> PathBuf {
        self.target.join("debug/deps/libshared_tokio.so")
    }

    /// `cargo xtask build --debug` of the plugin into `out`, without RUSTFLAGS (the tool adds
    /// the route's).
    fn build_plugin(&self, out: &Path, extra: &[&str]) -> Output {
        Command::new(&self.xtask)
            .current_dir(&self.root)
            .args(["build", "--debug"])
            .arg(self.dir.join("plugin"))
            .arg(out)
            .args(extra)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("CARGO_TARGET_DIR", &self.target)
            .output()
            .unwrap()
    }

    fn host(&self, args: &[&Path]) -> String {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let libdir = check(Command::new(rustc).args(["--print", "target-libdir"]).output().unwrap(), "rustc --print");
        check(
            Command::new(self.target.join("debug/shared_host"))
                .args(args)
                .env("LD_LIBRARY_PATH", format!("{}:{}", self.target.join("debug/deps").display(), libdir.trim()))
                .env_remove("SHARED_HOST_NO_PIN")
                .output()
                .unwrap(),
            "the shared-tokio host",
        )
    }
}

fn sha256(path: &Path) -> String {
    hotswap_runtime::inspect::sha256_hex(&std::fs::read(path).unwrap())
}

#[test]
fn shared_route_tasks_outlive_reloads_logs_reach_the_host_and_other_shared_libraries_are_refused() {
    let root = hotswap_tests::workspace_root();
    check(cargo().current_dir(&root).args(["build", "--quiet", "-p", "xtask"]).output().unwrap(), "building xtask");
    let fixture = Fixture {
        dir: root.join("tests/shared_tokio"),
        target: toolkit_target(&root).join("shared-tokio"),
        xtask: toolkit_target(&root).join("debug/xtask"),
        root,
    };

    // 1. Tasks, task groups and logs across three reloads.
    fixture.build_host(&[]);
    let host_library = sha256(&fixture.shared_library());
    let out = tempfile::tempdir().unwrap();
    for (build, extra) in [("v1", &[][..]), ("v2", &["--", "--features", "v2"][..])] {
        let built = fixture.build_plugin(&out.path().join(build), extra);
        check(built, &format!("cargo xtask build of spawner {build}"));
        let manifest = manifest_in(&out.path().join(build));
        let record = manifest.shared_library.expect("the manifest records the shared library");
        assert_eq!((record.file.as_str(), record.sha256.as_str()), ("libshared_tokio.so", host_library.as_str()));
    }
    // Building the plugin must not have rebuilt the shared library the host links.
    assert_eq!(sha256(&fixture.shared_library()), host_library, "building the plugin rebuilt the shared library");
    let dirs = tempfile::tempdir().unwrap();
    let (folder, work) = (dirs.path().join("plugins"), dirs.path().join("work"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let stdout = fixture.host(&[&folder, &work, &out.path().join("v1"), &out.path().join("v2")]);
    let lines: Vec<&str> = stdout.lines().collect();
    let on_free = "EVENT INFO on_free cancelled the task group left=0 in ";
    assert_eq!(
        lines,
        [
            "LOADED build=v1 libraries=1",
            "TASKS spawner@1=2",
            "RELOAD 1 build=v2 first_library_mapped=true",
            "GROUP cancelled; TASKS spawner@1=1",
            r#"STATUS tasks=[{"generation":1,"live":1,"plugin":"spawner"}]"#,
            "RELOAD 2 build=v1 first_library_mapped=true",
            "RELOAD 3 build=v2 first_library_mapped=true",
            "TASK task spawned by v1 finished",
            "PINNED libraries=1 first_library_mapped=true; TASKS none",
            r#"EVENT WARN start called answer=42 in plugin{name="spawner" generation=1}"#,
            r#"EVENT WARN log record from start in plugin{name="spawner" generation=1}"#,
            on_free,
            on_free,
            on_free,
            r#"EVENT INFO task finished in plugin{name="spawner" generation=1}"#,
        ],
        "{stdout}"
    );

    // 2. The host rebuilt against another build of the shared library refuses the plugin.
    fixture.build_host(&["--features", "shared_tokio/other"]);
    let other_library = sha256(&fixture.shared_library());
    assert_ne!(other_library, host_library, "the `other` build of the shared crate is another file");
    let dirs = tempfile::tempdir().unwrap();
    let (folder, work) = (dirs.path().join("plugins"), dirs.path().join("work"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let stdout = fixture.host(&[Path::new("refuse"), &folder, &work, &out.path().join("v1")]);
    let refused = stdout.lines().next().unwrap_or_default();
    assert!(refused.starts_with("REFUSED at inspect: plugin `spawner` "), "{stdout}");
    for part in ["libshared_tokio.so", &host_library, &other_library, "rebuild the plugin against the host's build"] {
        assert!(refused.contains(part), "the refusal names {part}: {stdout}");
    }
    assert!(stdout.lines().any(|l| l == "MAPPED 0"), "nothing of the refused plugin is mapped: {stdout}");

    // 3. A plugin build that would rebuild the host's shared library is refused, and the
    // host's file put back.
    let third = out.path().join("v3");
    let built = fixture.build_plugin(&third, &[]);
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(!built.status.success(), "the build is refused: {stderr}");
    assert!(
        stderr.contains("plugin shared_spawner would change the shared library libshared_tokio.so the host links"),
        "{stderr}"
    );
    assert!(stderr.contains("the host's file was put back"), "{stderr}");
    assert_eq!(sha256(&fixture.shared_library()), other_library, "the host's shared library is as it was");
    let installed = std::fs::read_dir(&third).map(|d| d.filter_map(Result::ok).count()).unwrap_or(0);
    assert_eq!(installed, 0, "nothing was installed from the refused build");
}

/// The one manifest in a build folder.
fn manifest_in(dir: &Path) -> hotswap_runtime::Manifest {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a manifest");
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}
