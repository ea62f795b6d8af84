//! What a one-shot `build` spends besides cargo (issue 24), on a scratch copy of the hello demo
//! ([`hotswap_tests::scratch`]) with the real xtask and cargo:
//! - the library is installed as a hard link to cargo's artifact, read once, never written
//!   again; the next build gives the artifact a new file and leaves the installed library (and
//!   its manifest's sha256) as they were;
//! - the debug info is split out in the xtask's own process (no `objcopy` run), giving a
//!   library without DWARF that names its `.debug` file with the CRC `objcopy` would write;
//! - the facts a build needs besides the sources (`cargo metadata`, the toolchain, the lock
//!   closure, file digests, the commit) are kept under the target folder between builds, give
//!   the stamp a cold build gives, and are computed again when their files change.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use hotswap_runtime::Manifest;
use hotswap_tests::scratch::{Scratch, hello_workspace};
use hotswap_tests::workspace_root;

/// One test at a time: they share a cargo target folder (with watch_loop.rs and the bench).
static SERIAL: Mutex<()> = Mutex::new(());

fn xtask() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status =
        Command::new(cargo).current_dir(workspace_root()).args(["build", "--quiet", "-p", "xtask"]).status().unwrap();
    assert!(status.success(), "building xtask");
    workspace_root().join("target/debug/xtask")
}

/// `xtask <args>` in the scratch workspace; its standard output.
fn run(scratch: &Scratch, xtask: &Path, env: &[(&str, &Path)], args: &[&str]) -> String {
    let mut c = Command::new(xtask);
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "xtask {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes foo's source as `original` with `marker` in its greeting.
fn edit(scratch: &Scratch, original: &str, marker: &str) {
    let text = original.replacen("Hello, {who}!", &format!("Hello, {{who}}! {marker}"), 1);
    assert_ne!(text, original, "foo's greeting is not where the test expects it");
    std::fs::write(scratch.foo_source(), text).unwrap();
}

/// The one library of plugin foo in `bin` built with `marker` in its greeting.
fn library_with(bin: &Path, marker: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(bin)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .filter(|p| std::fs::read(p).unwrap().windows(marker.len()).any(|w| w == marker.as_bytes()))
        .collect();
    assert_eq!(found.len(), 1, "libraries with {marker} in {}: {found:?}", bin.display());
    found.into_iter().next().unwrap()
}

fn matches_its_manifest(library: &Path) -> bool {
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(Manifest::path_for(library)).unwrap()).unwrap();
    hotswap_runtime::inspect::sha256_hex(&std::fs::read(library).unwrap()) == manifest.sha256
}

#[test]
fn the_library_is_installed_as_a_link_to_the_artifact_and_outlives_the_next_build() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let xtask = xtask();
    let scratch = hello_workspace("edit-loop");
    let bin = scratch.path().join("bin");
    let artifact = scratch.target.join("debug/libfoo.so");
    let build = ["build", "plugin/foo", "bin", "--debug", "--keep-debuginfo"];
    let original = std::fs::read_to_string(scratch.foo_source()).unwrap();

    edit(&scratch, &original, "first-install");
    run(&scratch, &xtask, &[], &build);
    let first = library_with(&bin, "first-install");
    let (installed, built) = (std::fs::metadata(&first).unwrap(), std::fs::metadata(&artifact).unwrap());
    assert_eq!((installed.dev(), installed.ino()), (built.dev(), built.ino()), "installed by a link, not a copy");
    assert_eq!(installed.mode() & 0o022, 0, "neither group nor others may write it (a host refuses that)");
    assert!(matches_its_manifest(&first));
    let leftovers: Vec<_> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "nothing staged is left behind: {leftovers:?}");

    edit(&scratch, &original, "second-install");
    run(&scratch, &xtask, &[], &build);
    let second = library_with(&bin, "second-install");
    let rebuilt = std::fs::metadata(&artifact).unwrap();
    assert_ne!(rebuilt.ino(), installed.ino(), "cargo wrote the new artifact as a new file");
    assert_eq!(std::fs::metadata(&second).unwrap().ino(), rebuilt.ino());
    assert_eq!(library_with(&bin, "first-install"), first, "the first library is still there");
    assert!(matches_its_manifest(&first), "the first library still has the bytes its manifest names");
    assert!(matches_its_manifest(&second));
}

/// A `cargo` that writes each command line to `log` and runs the real one (the CLI's own
/// `cargo metadata` runs go through it; those of cargo's build scripts do not).
fn logging_cargo(dir: &Path) -> (PathBuf, PathBuf) {
    let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let log = dir.join("log");
    let script = format!("#!/bin/sh\necho \"$@\" >> '{}'\nexec '{real}' \"$@\"\n", log.display());
    let path = dir.join("cargo");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (path, log)
}

fn metadata_runs(log: &Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.starts_with("metadata")).count()
}

#[test]
fn a_one_shot_build_keeps_what_did_not_change_under_the_target_folder() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let xtask = xtask();
    let scratch = hello_workspace("edit-loop");
    let wrapper = tempfile::tempdir().unwrap();
    let (cargo, log) = logging_cargo(wrapper.path());
    let env = [("CARGO", cargo.as_path())];
    let build = ["build", "plugin/foo", "bin", "--debug", "--keep-debuginfo"];
    let version = |out: &str| out.split_whitespace().nth(2).unwrap_or_default().to_string();
    let original = std::fs::read_to_string(scratch.foo_source()).unwrap();

    // Facts are kept only from files modified over a second before they were read (the
    // racy-clean rule): let the new workspace's files age first.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    edit(&scratch, &original, "cache-1");
    run(&scratch, &xtask, &env, &build);
    let cold = metadata_runs(&log);
    assert!(cold >= 1, "a cold build runs cargo metadata");

    edit(&scratch, &original, "cache-2");
    let built = run(&scratch, &xtask, &env, &build);
    assert_eq!(metadata_runs(&log), cold, "the second build took cargo metadata from the cache");
    let stamp = run(&scratch, &xtask, &env, &["build", "--print-stamp", "--debug", "plugin/foo", "bin"]);
    assert_eq!(version(&built), stamp.trim(), "the cached facts give the stamp a cold build gives: {built}");
    assert_eq!(metadata_runs(&log), 2 * cold, "--print-stamp starts cold, as the first build did");

    // A manifest changed: its facts are computed again.
    let manifest = scratch.path().join("plugin/foo/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n# changed\n")).unwrap();
    run(&scratch, &xtask, &env, &build);
    assert!(metadata_runs(&log) > 2 * cold, "a changed Cargo.toml runs cargo metadata again");
}

#[test]
fn the_debug_info_is_split_out_without_running_objcopy() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let xtask = xtask();
    let scratch = hello_workspace("edit-loop");
    // An `objcopy` first on PATH that fails: the build must not need it.
    let tools = tempfile::tempdir().unwrap();
    let fake = tools.path().join("objcopy");
    std::fs::write(&fake, "#!/bin/sh\necho 'objcopy must not run' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(tools.path().to_path_buf()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let original = std::fs::read_to_string(scratch.foo_source()).unwrap();
    edit(&scratch, &original, "split-in-process");
    let mut c = Command::new(&xtask);
    c.current_dir(scratch.path()).env("CARGO_TARGET_DIR", &scratch.target).env("PATH", &path).env_remove("OBJCOPY");
    let out = c.args(["build", "plugin/foo", "bin", "--debug"]).output().unwrap();
    assert!(out.status.success(), "build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let library = library_with(&scratch.path().join("bin"), "split-in-process");
    assert!(matches_its_manifest(&library));
    let debug = library.with_extension("debug");
    let sections = Command::new("objdump").arg("-h").arg(&library).output().expect("objdump (binutils)");
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(!sections.contains(".debug_"), "no DWARF left in the library:\n{sections}");
    assert!(sections.contains(".gnu_debuglink"), "the library names its debug file:\n{sections}");
    // The real objcopy, given the same debug file, writes the same debug link (name and CRC).
    let scratch_dir = tempfile::tempdir().unwrap();
    let reference = scratch_dir.path().join("reference.so");
    let copy = scratch_dir.path().join(debug.file_name().unwrap());
    std::fs::copy(&debug, &copy).unwrap();
    let link = format!("--add-gnu-debuglink={}", copy.display());
    let status = Command::new("objcopy").args(["--strip-debug", &link]).arg(&copy).arg(&reference).status().unwrap();
    assert!(status.success());
    let section = |file: &Path| {
        let out = scratch_dir.path().join("section");
        let status = Command::new("objcopy")
            .args(["-O", "binary", "--only-section=.gnu_debuglink"])
            .arg(file)
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out).unwrap()
    };
    assert_eq!(section(&library), section(&reference), "the debug link is the one objcopy writes");
}
