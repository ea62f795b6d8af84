//! Shared by the bench targets: where results go, and small statistics.

#![allow(dead_code)] // each bench target uses a different part

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hotswap_runtime::{PluginManager, PluginManagerBuilder};
use hotswap_tests::BuiltPlugin;

/// Where the bench targets leave their results for `report`: `<target>/bench-results/`.
pub fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| hotswap_tests::workspace_root().join("target"));
    let dir = target.join("bench-results");
    std::fs::create_dir_all(&dir).expect("creating the bench results folder");
    dir
}

/// Where criterion keeps its estimates (criterion's own rule: `$CARGO_TARGET_DIR/criterion`,
/// else the workspace's `target/criterion`).
pub fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| hotswap_tests::workspace_root().join("target"))
            .join("criterion")
    })
}

/// Writes `value` as `<results_dir>/<name>.json`.
pub fn write_results(name: &str, value: &serde_json::Value) {
    let path = results_dir().join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).expect("writing bench results");
    eprintln!("results written to {}", path.display());
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> f64 {
    percentile(values, 50.0)
}

/// The `p`th percentile of `values` (nearest rank; sorts them).
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    assert!(!values.is_empty(), "no samples");
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The 1-, 5- and 15-minute load averages, from /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Builds the peer's fixture, `tests/plugins/hlr_peer` (release, with plain cargo: it is not
/// a hotswap plugin), with `$HLR_PEER_BIAS=bias` into a target folder of its own, and returns
/// the library: `lib<name>.so`, as hot-lib-reloader looks for it.
pub fn build_hlr_peer(bias: u32) -> PathBuf {
    let root = hotswap_tests::workspace_root();
    let target = root.join("target").join(format!("hlr-peer-{bias}"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "hlr_peer", "--target-dir"])
        .arg(&target)
        .env("HLR_PEER_BIAS", bias.to_string())
        .current_dir(&root)
        .status()
        .expect("running cargo for hlr_peer");
    assert!(status.success(), "building hlr_peer failed");
    target.join("release").join("libhlr_peer.so")
}

/// Makes `file` the newest library of its plugin: mtime `base + step` seconds.
pub fn make_newest(file: &Path, base: SystemTime, step: u64) {
    let f = std::fs::File::options().write(true).open(file).unwrap();
    f.set_modified(base + Duration::from_secs(step)).unwrap();
}

/// Copies `library` into `dir` under a hidden name (`.next.so`), whence a rename puts it in
/// place as `cargo xtask build` does; returns the copy.
pub fn stage(library: &Path, dir: &Path) -> PathBuf {
    let staged = dir.join(".next.so");
    std::fs::copy(library, &staged).unwrap();
    staged
}

/// A plugin folder holding two builds of one plugin (the first the newest, so it serves
/// first) and a manager on it that reloads on new builds by itself
/// (`reload_on_new_builds(Duration::ZERO)`); round `i` renames build `(i + 1) % 2` over its
/// file, alternating the two.
pub struct Alternating {
    pub manager: PluginManager,
    builds: [PathBuf; 2],
    files: [PathBuf; 2],
    base: SystemTime,
    dir: tempfile::TempDir,
}

impl Alternating {
    /// `configure` sets the rest of the builder.
    pub fn new(
        first: &BuiltPlugin,
        second: &BuiltPlugin,
        configure: impl FnOnce(PluginManagerBuilder) -> PluginManagerBuilder,
    ) -> Self {
        // mtimes from a base in the future, so that the build staged is newer than any file
        // just installed
        let base = SystemTime::now() + Duration::from_secs(3600);
        let dir = tempfile::tempdir().unwrap();
        let files = [first.install(dir.path()), second.install(dir.path())];
        make_newest(&files[0], base, 0);
        let builder = PluginManager::builder(dir.path()).reload_on_new_builds(Duration::ZERO);
        let manager = configure(builder).build().unwrap();
        manager.load_plugins().expect("first load");
        Alternating { manager, builds: [first.library.clone(), second.library.clone()], files, base, dir }
    }

    /// Round `i`, outside the timing: the next build copied in under a hidden name and made
    /// the newest. Returns it and the file it is to be renamed over.
    pub fn stage(&self, i: usize) -> (PathBuf, PathBuf) {
        let next = (i + 1) % 2;
        let staged = stage(&self.builds[next], self.dir.path());
        make_newest(&staged, self.base, i as u64 + 1);
        (staged, self.files[next].clone())
    }
}

/// The peer serving from a folder of its own: its two builds differ by the bias they add
/// (0 and 1000); the first serves. Round `i` renames build `(i + 1) % 2` over the watched
/// file. One per process (hot-lib-reloader's module is a static).
pub struct HlrPeer {
    builds: [PathBuf; 2],
    watched: PathBuf,
    dir: tempfile::TempDir,
}

impl HlrPeer {
    pub fn start() -> Self {
        let builds = [build_hlr_peer(0), build_hlr_peer(1000)];
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().join("libhlr_peer.so");
        std::fs::copy(&builds[0], &watched).unwrap();
        HLR_DIR.set(dir.path().to_path_buf()).expect("one peer per process");
        assert_eq!(hlr::hlr_add(1, 2), 3, "the peer serves its first build");
        HlrPeer { builds, watched, dir }
    }

    /// What `hlr_add(1, 2)` answers with build 0 and with build 1.
    pub const ANSWERS: [i64; 2] = [3, 1003];

    /// Like [`Alternating::stage`].
    pub fn stage(&self, i: usize) -> (PathBuf, PathBuf) {
        (stage(&self.builds[(i + 1) % 2], self.dir.path()), self.watched.clone())
    }

    pub fn size_kib(&self) -> u64 {
        std::fs::metadata(&self.builds[0]).unwrap().len() / 1024
    }
}

/// The folder hot-lib-reloader watches, set before the first call of [`hlr`]'s functions.
pub static HLR_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

pub fn hlr_dir() -> &'static std::path::Path {
    HLR_DIR.get().expect("the peer's folder is set before its first call")
}

/// The peer, hot-lib-reloader 0.8, as its documentation shows it: functions forwarding to the
/// newest build of `libhlr_peer.so` in [`hlr_dir`] (its debounce at its least, 1 ms).
#[allow(static_mut_refs)]
#[hot_lib_reloader::hot_module(dylib = "hlr_peer", lib_dir = crate::common::hlr_dir(), file_watch_debounce = 1)]
pub mod hlr {
    #[hot_functions]
    extern "Rust" {
        pub fn hlr_add(a: i64, b: i64) -> i64;
    }
}
