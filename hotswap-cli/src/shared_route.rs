//! The shared route (guide, section 10: one tokio for the process): plugins built with
//! `-C prefer-dynamic` against the host's build of the workspace's shared Rust `dylib` crate,
//! named in the workspace's `Cargo.toml`:
//!
//! ```toml
//! [workspace.metadata.hotswap]
//! shared = "my_shared"                      # the dylib crate host and plugins link
//! rustflags = ["--cfg", "tokio_unstable"]   # the host's other flags
//! ```
//!
//! The host is built first, with `RUSTFLAGS="-C prefer-dynamic <rustflags>"`, in the same
//! target folder. A plugin build gets the same flags, and must not rebuild the shared
//! library: cargo rebuilds it (into the same file, a `dylib` has no hash in its name) when a
//! plugin resolves other features or flags for a crate in it. That build is refused, naming
//! the plugin, and the host's file is put back. The library's sha256 goes into the plugin's
//! manifest ([`hotswap_runtime::SharedLibrary`]) and its version stamp.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use cargo_metadata::{Artifact, Metadata};
use hotswap_abi::shared::{METADATA_RUSTFLAGS, METADATA_SHARED, METADATA_TABLE, PREFER_DYNAMIC, library_file_name};
use hotswap_runtime::SharedLibrary;
use hotswap_runtime::inspect::sha256_hex;

use crate::options::Profile;

/// The workspace's shared route, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRoute {
    /// The shared `dylib` crate's name.
    pub crate_name: String,
    /// Flags besides `-C prefer-dynamic`.
    pub rustflags: Vec<String>,
}

impl SharedRoute {
    /// Reads `[workspace.metadata.hotswap]` of `metadata`'s workspace.
    pub fn of(metadata: &Metadata) -> Result<Option<SharedRoute>> {
        let table = &metadata.workspace_metadata[METADATA_TABLE];
        let Some(shared) = table.get(METADATA_SHARED) else {
            return Ok(None);
        };
        let at = format!("[workspace.metadata.{METADATA_TABLE}] in {}/Cargo.toml", metadata.workspace_root);
        let crate_name = shared.as_str().with_context(|| format!("`{METADATA_SHARED}` in {at} is not a crate name"))?;
        let rustflags = match table.get(METADATA_RUSTFLAGS) {
            None => Vec::new(),
            Some(flags) => flags
                .as_array()
                .and_then(|a| a.iter().map(|f| f.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
                .with_context(|| format!("`{METADATA_RUSTFLAGS}` in {at} is not a list of strings"))?,
        };
        Ok(Some(SharedRoute { crate_name: crate_name.to_string(), rustflags }))
    }

    /// The host's build of the shared library in `target_dir` for `profile`.
    pub fn library(&self, target_dir: &Path, profile: Profile) -> PathBuf {
        let folder = if profile == Profile::Release { "release" } else { "debug" };
        target_dir.join(folder).join("deps").join(library_file_name(&self.crate_name))
    }

    /// Every flag a build on this route needs.
    pub fn flags(&self) -> Vec<String> {
        PREFER_DYNAMIC.iter().map(|f| f.to_string()).chain(self.rustflags.iter().cloned()).collect()
    }

    /// Adds [`SharedRoute::flags`] to `command`'s `RUSTFLAGS` (or `CARGO_ENCODED_RUSTFLAGS`,
    /// whichever this process has), leaving out those already there.
    pub fn apply(&self, command: &mut Command) {
        let (key, separator) = if std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_some() {
            ("CARGO_ENCODED_RUSTFLAGS", "\u{1f}")
        } else {
            ("RUSTFLAGS", " ")
        };
        let current = std::env::var(key).unwrap_or_default();
        let mut flags: Vec<String> = current.split(separator).filter(|f| !f.is_empty()).map(str::to_string).collect();
        for pair in self.flags().chunks(2) {
            let present = flags.windows(pair.len()).any(|w| w == pair);
            if !present {
                flags.extend(pair.iter().cloned());
            }
        }
        command.env(key, flags.join(separator));
    }
}

/// The host's shared library before a plugin build: its hash, and a second name (a hard link)
/// that keeps its bytes should the build rebuild it.
#[derive(Debug)]
pub struct Before {
    path: PathBuf,
    /// Its sha256; `None` when the host has not been built yet.
    pub sha256: Option<String>,
    key: Option<String>,
    backup: Option<PathBuf>,
}

/// What identifies a file's bytes without reading them: device, inode, size and modification
/// time to the nanosecond (not the change time, which the backup link itself changes).
fn file_key(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!("{} {} {} {}.{:09}", m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The library's sha256, from the note beside it (`.hotswap-sha256-<file>`: its key and hash)
/// while the file is unchanged, else read, hashed and noted: the library is large (11 MB for
/// the test's, debug) and would be hashed on every plugin build.
fn sha256_of(path: &Path, key: &str) -> Result<String> {
    let note = path.with_file_name(format!(".hotswap-sha256-{}", library_name(path)));
    if let Ok(text) = std::fs::read_to_string(&note)
        && let Some((noted, sha256)) = text.trim_end().split_once('\n')
        && noted == key
    {
        return Ok(sha256.to_string());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading the shared library {}", path.display()))?;
    let sha256 = sha256_hex(&bytes);
    // Only a cache: a note that cannot be written costs the next build a hash.
    let _ = crate::atomic::write_atomically(&note, format!("{key}\n{sha256}\n").as_bytes());
    Ok(sha256)
}

impl Before {
    /// Hashes the library at `path` (if there is one) and links it to a backup name.
    pub fn take(path: PathBuf) -> Result<Before> {
        let Some(key) = file_key(&path) else {
            return Ok(Before { path, sha256: None, key: None, backup: None });
        };
        let sha256 = sha256_of(&path, &key)?;
        let backup = path.with_file_name(format!(".hotswap-kept-{}-{}", std::process::id(), library_name(&path)));
        let _ = std::fs::remove_file(&backup);
        let backup = std::fs::hard_link(&path, &backup).ok().map(|()| backup);
        Ok(Before { path, sha256: Some(sha256), key: Some(key), backup })
    }

    /// After the build: refuses it when it rebuilt the library into other bytes (putting the
    /// host's file back), else returns the record for the plugin's manifest.
    pub fn finish(mut self, plugin: &str, rebuilt: Option<&Artifact>) -> Result<SharedLibrary> {
        let file = library_name(&self.path);
        let key = file_key(&self.path).with_context(|| {
            format!("plugin {plugin}: the shared library {} is missing after the build", self.path.display())
        })?;
        let after = match (&self.key, &self.sha256) {
            (Some(before), Some(sha256)) if *before == key => sha256.clone(),
            _ => sha256_of(&self.path, &key)?,
        };
        if let Some(before) = self.sha256.clone()
            && before != after
        {
            let restored = match self.backup.take() {
                Some(backup) => std::fs::rename(&backup, &self.path).is_ok(),
                None => false,
            };
            let why = if rebuilt.is_some_and(|a| !a.fresh) {
                "cargo rebuilt it for this plugin: the plugin resolves other features or flags for a crate in it"
            } else {
                "its file changed during the build"
            };
            bail!(
                "plugin {plugin} would change the shared library {file} the host links ({}, sha256 {before} before, \
                 {after} after): {why}. Give the plugin the host's features for the shared crates (compare `cargo \
                 tree -e features` of both) and the host's RUSTFLAGS; {}",
                self.path.display(),
                if restored { "the host's file was put back" } else { "rebuild the host" }
            );
        }
        Ok(SharedLibrary { file, sha256: after })
    }
}

impl Drop for Before {
    fn drop(&mut self) {
        if let Some(backup) = self.backup.take() {
            let _ = std::fs::remove_file(backup);
        }
    }
}

fn library_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Whether `artifact` is the shared crate's `dylib`.
pub fn is_shared(artifact: &Artifact, route: &SharedRoute) -> bool {
    artifact.target.name.replace('-', "_") == route.crate_name.replace('-', "_")
        && artifact.target.crate_types.iter().any(|t| t.to_string() == "dylib")
}
