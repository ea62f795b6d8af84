//! Shared by the bench targets: where results go, and small statistics.

#![allow(dead_code)] // each bench target uses a different part

use std::path::PathBuf;
use std::time::Duration;

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
