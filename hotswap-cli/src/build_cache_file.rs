//! The [`BuildCache`] kept between one-shot builds (issue 24): `cargo xtask build` would
//! otherwise run `cargo metadata`, `rustc -vV`, `rustc --print sysroot` and `git log`, parse
//! `Cargo.lock` and hash every input file on every invocation, where a running `watch` does
//! each once. The cache is a JSON file under the target folder,
//! `<target>/hotswap/build-cache/<key>.json`.
//!
//! Nothing in it is trusted beyond what the in-memory cache trusts: every entry still carries
//! the identity of the files it came from and is computed afresh when they changed (see
//! [`crate::build_cache`]). What the entries cannot see is in the file's `<key>`: the cache
//! format, the plugin folder, the working folder (cargo finds its configuration from there),
//! and every environment variable named `CARGO*` or `RUST*` plus `PATH` and `HOME` (which
//! `cargo`, which `rustc`, which target folder). Another environment reads another file.
//!
//! Where: `$CARGO_TARGET_DIR` when set, else `target/` beside the nearest `Cargo.lock` above
//! the plugin folder; the file is written to the target folder `cargo metadata` names, so a
//! target folder set in a configuration file is a miss every time (correct, only slower).
//! A missing, unreadable or outdated file is a cold cache; writing it is best effort.

use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::build_cache::BuildCache;

/// Bumped whenever [`BuildCache`]'s serialized form or meaning changes.
const FORMAT: &str = "hotswap build cache 1";

/// The file holding the cache for builds of `plugin_dir` from here, in this environment,
/// under `target_dir`.
fn file_in(target_dir: &Path, plugin_dir: &Path) -> PathBuf {
    let mut h = sha2::Sha256::new();
    let mut put = |part: &[u8]| {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    };
    put(FORMAT.as_bytes());
    put(std::path::absolute(plugin_dir).unwrap_or_else(|_| plugin_dir.to_path_buf()).as_os_str().as_encoded_bytes());
    put(std::env::current_dir().unwrap_or_default().as_os_str().as_encoded_bytes());
    let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            k.starts_with("CARGO") || k.starts_with("RUST") || k == "PATH" || k == "HOME"
        })
        .collect();
    vars.sort();
    for (k, v) in vars {
        put(k.as_encoded_bytes());
        put(v.as_encoded_bytes());
    }
    let key: String = h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
    target_dir.join("hotswap").join("build-cache").join(format!("{key}.json"))
}

/// Where a cache for `plugin_dir` is looked for before `cargo metadata` has named the target
/// folder: `$CARGO_TARGET_DIR`, else `target/` beside the nearest `Cargo.lock` above.
fn likely_target_dir(plugin_dir: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return std::path::absolute(dir).ok();
    }
    let dir = std::path::absolute(plugin_dir).ok()?;
    dir.ancestors().find(|a| a.join("Cargo.lock").is_file()).map(|a| a.join("target"))
}

/// The cache saved for builds of `plugin_dir`, or an empty one.
pub fn load(plugin_dir: &Path) -> BuildCache {
    let Some(target) = likely_target_dir(plugin_dir) else { return BuildCache::default() };
    let path = file_in(&target, plugin_dir);
    let Ok(text) = std::fs::read(&path) else { return BuildCache::default() };
    serde_json::from_slice(&text).unwrap_or_else(|e| {
        tracing::debug!(file = %path.display(), "build cache not read, starting cold: {e}");
        BuildCache::default()
    })
}

/// Saves `cache` for the next build of `plugin_dir`, in the target folder its `cargo metadata`
/// named (best effort: a failure is logged at debug level and costs the next build its cache).
pub fn save(cache: &BuildCache, plugin_dir: &Path) {
    let Some(target_dir) = cache.target_dir(plugin_dir).or_else(|| likely_target_dir(plugin_dir)) else { return };
    let path = file_in(&target_dir, plugin_dir);
    let result = (|| -> anyhow::Result<()> {
        let dir = path.parent().expect("a cache file has a folder");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), cache)?;
        tmp.persist(&path)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::debug!(file = %path.display(), "build cache not saved: {e:#}");
    }
}
