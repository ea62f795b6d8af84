//! Support for the workspace integration tests: builds the fixture plugin crates under
//! `tests/plugins/` with the real `cargo xtask build`, once per test binary, and installs the
//! results into per-test plugin folders.

#![warn(missing_docs, missing_debug_implementations)]

pub mod child_case;
pub mod http_client;
pub mod keep_alive;
pub mod scratch;
pub mod service_process;
pub mod shared_route;
pub mod stream_clients;
pub mod tools;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// A library and manifest written by `cargo xtask build`.
#[derive(Debug, Clone)]
pub struct BuiltPlugin {
    /// The `<name>@<version>.so` file.
    pub library: PathBuf,
    /// Its manifest.
    pub manifest: PathBuf,
}

impl BuiltPlugin {
    /// The version stamp, from the file name.
    pub fn version(&self) -> String {
        let stem = self.library.file_stem().unwrap().to_string_lossy().into_owned();
        stem.split_once('@').unwrap().1.to_string()
    }

    /// Copies library and manifest into `dir` under their own names, each through a temporary
    /// file and a rename, as `cargo xtask build` does.
    pub fn install(&self, dir: &Path) -> PathBuf {
        for file in [&self.manifest, &self.library] {
            copy_atomically(file, &dir.join(file.file_name().unwrap()));
        }
        dir.join(self.library.file_name().unwrap())
    }

    /// [`install`](Self::install), then makes the library its plugin's newest file (see
    /// [`make_newest`]); returns the library's path.
    pub fn install_newest(&self, dir: &Path) -> PathBuf {
        let library = self.install(dir);
        make_newest(&library);
        library
    }
}

/// Gives `file` a modification time later than every other library in its folder, so that the
/// scan picks it as its plugin's newest file however coarse the file system's clock is.
pub fn make_newest(file: &Path) {
    let dir = file.parent().unwrap();
    let mut newest = std::time::SystemTime::now();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path != file && path.extension().is_some_and(|e| e == std::env::consts::DLL_EXTENSION) {
            newest = newest.max(std::fs::metadata(&path).unwrap().modified().unwrap());
        }
    }
    let file = std::fs::File::options().write(true).open(file).unwrap();
    file.set_modified(newest + std::time::Duration::from_secs(1)).unwrap();
}

/// A manager on `dir` that loads every plugin afresh on each reload, frees a replaced
/// generation within the reload (zero free delay) and keeps `retain` released libraries
/// mapped: for tests of what is released and closed when.
pub fn unloading_manager(dir: &Path, retain: usize) -> hotswap_runtime::PluginManager {
    hotswap_runtime::PluginManager::builder(dir)
        .free_delay(std::time::Duration::ZERO)
        .reuse_unchanged(false)
        .retain_released_libraries(retain)
        .build()
        .unwrap()
}

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), for benchmarks and profiling loops.
/// Through libc, not rustix: rustix reads the vDSO itself, which crashes under valgrind.
pub fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The host's `tracing` log (the runtime's own events, and plugins' forwarded ones), with
/// thread names, captured for the whole test process (the first call installs the global
/// subscriber, at DEBUG unless [`runtime_log::capture_at`] chose another level first): for
/// tests that check which thread did what, or what reached the host.
pub mod runtime_log {
    use std::io::Write;
    use std::sync::{Arc, Mutex, OnceLock};

    use tracing_subscriber::filter::LevelFilter;

    fn log() -> &'static Arc<Mutex<Vec<u8>>> {
        install(LevelFilter::DEBUG)
    }

    fn install(level: LevelFilter) -> &'static Arc<Mutex<Vec<u8>>> {
        static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = Arc::new(Mutex::new(Vec::new()));
            let writer = Arc::clone(&log);
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_thread_names(true)
                .with_ansi(false)
                .with_writer(move || SharedLog(Arc::clone(&writer)))
                .init();
            log
        })
    }

    struct SharedLog(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedLog {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Starts capturing, if not started yet.
    pub fn capture() {
        log();
    }

    /// Starts capturing at `level`, if not started yet (the first call in a process decides
    /// the level: a test binary uses one).
    pub fn capture_at(level: LevelFilter) {
        install(level);
    }

    /// The lines logged so far that mention both `a` and `b`.
    pub fn logged(a: &str, b: &str) -> Vec<String> {
        let log = log().lock().unwrap();
        String::from_utf8_lossy(&log).lines().filter(|l| l.contains(a) && l.contains(b)).map(String::from).collect()
    }
}

/// Copies `from` to `to` through a hidden temporary file and a rename.
pub fn copy_atomically(from: &Path, to: &Path) {
    let tmp = to.with_file_name(format!(".{}.tmp", to.file_name().unwrap().to_string_lossy()));
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds the plugin crate at `crate_dir` (relative to the workspace root) with
/// `cargo xtask build`, in the profile this crate was built in (`--debug` in a dev build), once
/// per process.
pub fn build_plugin(crate_dir: &str) -> BuiltPlugin {
    static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<BuiltPlugin>>>>> = OnceLock::new();
    let cell = {
        let mut map = BUILT.get_or_init(Default::default).lock().unwrap();
        Arc::clone(map.entry(crate_dir.to_string()).or_default())
    };
    cell.get_or_init(|| build_now(crate_dir)).clone()
}

/// Builds the plugin crate at `crate_dir` (relative to the workspace root) with a release
/// `cargo xtask build` (no `--debug`), once per process, into its own per-process folder.
/// For benchmarks: debug builds would measure the optimiser's absence.
pub fn build_plugin_release(crate_dir: &str) -> BuiltPlugin {
    build_plugin_release_with_env(crate_dir, "", &[])
}

/// [`build_plugin_release`] with extra environment variables for the build (for example a
/// plugin name read by the crate's `build.rs`). `label` tells builds of the same crate with
/// different variables apart: each `(crate_dir, label)` pair is built once per process, into
/// its own folder. Builds of one crate must not run at the same time (they share cargo's
/// artifact), so they are serialised.
pub fn build_plugin_release_with_env(crate_dir: &str, label: &str, env: &[(&str, &str)]) -> BuiltPlugin {
    build_labelled(crate_dir, &format!("release-{label}"), false, env, &[])
}

/// Builds the plugin crate at `crate_dir` with `cargo xtask build [--debug] <crate> <out> --
/// <cargo_args>` (for example `--config profile.dev.panic="abort"`), once per process and
/// `label`, into its own folder, serialised like [`build_plugin_release_with_env`].
pub fn build_plugin_with_cargo_args(crate_dir: &str, label: &str, debug: bool, cargo_args: &[&str]) -> BuiltPlugin {
    build_labelled(crate_dir, label, debug, &[], cargo_args)
}

/// Builds the plugin crate at `crate_dir` with the cargo features `features` (none: its default
/// build), in release or, with `debug`, dev (`cfg!(debug_assertions)` for the test's own
/// profile), once per process, feature list and profile. A crate built with several feature
/// lists writes the same cargo artifact each time, so every build of it should come through
/// here (or another serialised build of this module), never [`build_plugin`].
pub fn build_plugin_with_features(crate_dir: &str, features: &[&str], debug: bool) -> BuiltPlugin {
    let joined = features.join(",");
    let args: &[&str] = if features.is_empty() { &[] } else { &["--features", &joined] };
    let profile = if debug { "dev" } else { "release" };
    build_labelled(crate_dir, &format!("{profile}-features-{}", features.join("+")), debug, &[], args)
}

/// The three builds of fixture `tests/plugins/dep_cycle`, in the test's profile: plugins
/// `dep_cyc_a`, `dep_cyc_b` (feature `b`) and `dep_cyc_c` (feature `c`), each importing the
/// next, so that together they are an import cycle.
pub fn build_import_cycle() -> Vec<BuiltPlugin> {
    [&[][..], &["b"], &["c"]]
        .iter()
        .map(|features| build_plugin_with_features("tests/plugins/dep_cycle", features, cfg!(debug_assertions)))
        .collect()
}

/// The folder every test process builds its plugins into, one subfolder per crate, label and
/// process: `<crate>[-<label>]-<pid>`. The folders of processes that have ended are removed
/// the first time a process asks for it, so they do not pile up under `target/` run after run.
fn plugins_build_root() -> PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let root = workspace_root().join("target").join("hotswap-test-plugins");
    ONCE.call_once(|| remove_folders_of_ended_processes(&root));
    root
}

/// Removes the subfolders of `parent` whose name ends in `-<pid>` of a process that no longer
/// exists (a live process's folder, or one not named so, is kept).
pub fn remove_folders_of_ended_processes(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.rsplit_once('-')).and_then(|(_, pid)| pid.parse::<i32>().ok());
        let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) else { continue };
        if rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn build_labelled(crate_dir: &str, label: &str, debug: bool, env: &[(&str, &str)], cargo_args: &[&str]) -> BuiltPlugin {
    static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<BuiltPlugin>>>>> = OnceLock::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    let key = format!("{crate_dir}#{label}");
    let cell = {
        let mut map = BUILT.get_or_init(Default::default).lock().unwrap();
        Arc::clone(map.entry(key).or_default())
    };
    cell.get_or_init(|| {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let out = plugins_build_root().join(format!("{}-{label}-{}", crate_dir.replace('/', "_"), std::process::id()));
        run_xtask_build(crate_dir, &out, debug, env, cargo_args)
    })
    .clone()
}

/// `cargo xtask build` of the crate at `crate_dir` (relative to the workspace, or absolute) in
/// the profile this crate was built in, with `env` added, once per process and `label`.
pub fn build_plugin_with_env(crate_dir: &str, label: &str, env: &[(&str, &str)]) -> BuiltPlugin {
    build_labelled(crate_dir, label, cfg!(debug_assertions), env, &[])
}

/// Runs `cargo xtask build [--debug] <crate_dir> <out> [-- <cargo_args>]` with `env` added,
/// into a fresh `out`, and returns what it wrote.
fn run_xtask_build(crate_dir: &str, out: &Path, debug: bool, env: &[(&str, &str)], cargo_args: &[&str]) -> BuiltPlugin {
    let root = workspace_root();
    let _ = std::fs::remove_dir_all(out);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&root).args(["run", "--quiet", "--package", "xtask", "--", "build"]);
    if debug {
        command.arg("--debug");
    }
    command.arg(root.join(crate_dir)).arg(out).envs(env.iter().copied());
    if !cargo_args.is_empty() {
        command.arg("--").args(cargo_args);
    }
    let output = command.output().expect("running cargo xtask build");
    assert!(
        output.status.success(),
        "cargo xtask build {crate_dir} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut library = None;
    let mut manifest = None;
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("so") => library = Some(path),
            Some("json") => manifest = Some(path),
            _ => {}
        }
    }
    BuiltPlugin {
        library: library.expect("xtask wrote a library"),
        manifest: manifest.expect("xtask wrote a manifest"),
    }
}

fn build_now(crate_dir: &str) -> BuiltPlugin {
    // One folder per process: test binaries (or developers) running at the same time must not
    // clobber each other's builds.
    let out = plugins_build_root().join(format!("{}-{}", crate_dir.replace('/', "_"), std::process::id()));
    // In the host's profile: the runtime refuses a release plugin in a dev host and the reverse.
    run_xtask_build(crate_dir, &out, cfg!(debug_assertions), &[], &[])
}

/// For a test that cannot make its real check on this machine (no gdb, not root, ...): when the
/// environment variable `CI` is set (to anything but empty, `0` or `false`), it fails the test,
/// so a CI run never passes without the check; elsewhere it prints `skipped: <why>` past the
/// test harness's capture (so the line shows in `cargo test`'s output beside the test's "ok")
/// and the test returns. Use as `return hotswap_tests::skip_unless_ci("why");`.
pub fn skip_unless_ci(why: &str) {
    if ci() {
        panic!("cannot run here, and CI is set, so this is a failure, not a skip: {why}");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    tools::loud(&format!("skipped: {test}: {why}"));
}

/// Whether the environment variable `CI` is set to anything but empty, `0` or `false`.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| !matches!(ci.as_str(), "" | "0" | "false"))
}

/// The distinct files under `dir` mapped into this process, from `/proc/self/maps` (a deleted
/// copy shows as its path followed by ` (deleted)`, which still starts with `dir`).
pub fn mapped_under(dir: &Path) -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let dir = dir.to_string_lossy().into_owned();
    let mut files: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with(&dir))
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_build_folders_of_ended_processes_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let mut child = Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let names = [
            format!("tests_plugins_greeter_v1-{ended}"),
            format!("tests_plugins_greeter_v1-release--{ended}"),
            format!("tests_plugins_greeter_v1-{}", std::process::id()),
            "tests_plugins_greeter_v1-notapid".to_string(),
        ];
        for name in &names {
            std::fs::create_dir(parent.path().join(name)).unwrap();
        }
        remove_folders_of_ended_processes(parent.path());
        let left: Vec<bool> = names.iter().map(|n| parent.path().join(n).exists()).collect();
        assert_eq!(left, [false, false, true, true]);
    }
}
