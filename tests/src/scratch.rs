//! A scratch copy of the hello demo (demo/hello: its host and plugin `foo`) in a workspace of
//! its own, in a temporary folder, committed to a git repository of its own: what a user's
//! project looks like to `watch` (edits there touch nothing in this repository). The hotswap
//! crates are path dependencies on this repository; the target folder is shared between runs
//! (`target/<name>` of this repository), so only the first run compiles the dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

/// The scratch workspace ([`hello_workspace`]); removed on drop.
#[derive(Debug)]
pub struct Scratch {
    /// The workspace folder (holding `host/` and `plugin/foo/`).
    pub dir: tempfile::TempDir,
    /// The cargo target folder its builds use (set `CARGO_TARGET_DIR` to it).
    pub target: PathBuf,
}

impl Scratch {
    /// The workspace folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Plugin `foo`'s source file, the one to edit.
    pub fn foo_source(&self) -> PathBuf {
        self.path().join("plugin/foo/src/lib.rs")
    }

    /// A `cargo` command run in the workspace with its target folder.
    pub fn cargo(&self) -> Command {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(self.path()).env("CARGO_TARGET_DIR", &self.target);
        c
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Copies the hello demo's host and plugin `foo` into a new workspace, with the target folder
/// `target/<target_name>` of this repository, and commits it to a new git repository.
pub fn hello_workspace(target_name: &str) -> Scratch {
    let root = workspace_root();
    let dir = tempfile::Builder::new().prefix("hotswap-scratch-").tempdir().unwrap();
    copy_dir(&root.join("demo/hello/host"), &dir.path().join("host"));
    copy_dir(&root.join("demo/hello/plugin/foo"), &dir.path().join("plugin/foo"));
    let manifest = format!(
        r#"[workspace]
resolver = "3"
members = ["host", "plugin/foo"]

[workspace.dependencies]
hotswap-runtime = {{ path = "{root}/hotswap-runtime", default-features = false }}
hotswap-build = {{ path = "{root}/hotswap-build" }}
clap = {{ version = "4", features = ["derive"] }}
tracing-subscriber = {{ version = "0.3", features = ["env-filter"] }}

[profile.release]
debug = "line-tables-only"

[profile.dev.package.sha2]
opt-level = 3
"#,
        root = root.display()
    );
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    // The same dependency versions as this repository, so nothing new is downloaded.
    std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    std::fs::write(dir.path().join(".gitignore"), "/bin\n").unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.name=scratch", "-c", "user.email=scratch@localhost"])
            .args(args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?} failed");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "scratch copy of the hello demo"]);
    Scratch { dir, target: root.join("target").join(target_name) }
}
