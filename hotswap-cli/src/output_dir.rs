//! The build's output folder: creating it with the modes a host accepts, cleaning the
//! temporaries of builds that died (written by [`crate::atomic`]), reporting manifests
//! without a library, and installing a library only when its bytes are new.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use hotswap_runtime::Manifest;

use crate::atomic::{PARTIAL_PREFIX, PARTIAL_SUFFIX, write_atomically_with};
use crate::staged::StagedLibrary;
/// A temporary file without a process id in its name (written by an older hotswap) is
/// removed once it is this old.
pub const UNOWNED_PARTIAL_AGE: Duration = Duration::from_secs(3600);

/// Creates `dir` (and its parents) if needed, mode 0755 whatever the umask allows beyond it:
/// the runtime refuses a plugin folder that group or others can write (strict modes).
pub fn create(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("cannot create the output folder {}", dir.display()))
}

/// What [`tidy`] found in an output folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tidied {
    /// Temporary files of builds that died, removed.
    pub removed_partials: Vec<PathBuf>,
    /// Manifests whose library is not there (a build killed between the two renames, a
    /// library removed by hand, or a build writing right now), left in place.
    pub orphan_manifests: Vec<PathBuf>,
}

/// Removes the temporaries of dead writers in `dir` and lists manifests without a library.
/// A temporary whose writer still runs (its process id is alive) is left alone.
pub fn tidy(dir: &Path) -> Result<Tidied> {
    let mut tidied = Tidied::default();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading the output folder {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if let Some(middle) = name.strip_prefix(PARTIAL_PREFIX).and_then(|n| n.strip_suffix(PARTIAL_SUFFIX)) {
            if partial_is_stale(middle, &entry) {
                match std::fs::remove_file(&path) {
                    Ok(()) => tidied.removed_partials.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // its writer renamed it
                    Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
                }
            }
        } else if name.ends_with(".json") && !name.starts_with('.') {
            // Only plugin manifests: other JSON files (a static host's manifest) are not ours.
            let Ok(text) = std::fs::read(&path) else { continue };
            let Ok(manifest) = serde_json::from_slice::<Manifest>(&text) else { continue };
            let library = dir.join(&manifest.library);
            if manifest.library.contains('/') || !library.exists() {
                tidied.orphan_manifests.push(path);
            }
        }
    }
    tidied.removed_partials.sort();
    tidied.orphan_manifests.sort();
    Ok(tidied)
}

/// `middle` is what lies between the prefix and the suffix: `<pid>-<random>` when written by
/// [`write_atomically`].
fn partial_is_stale(middle: &str, entry: &std::fs::DirEntry) -> bool {
    let pid = middle.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok());
    match pid {
        // /proc/<pid> exists for every live process of this pid namespace.
        Some(pid) => pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists(),
        None => entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() > UNOWNED_PARTIAL_AGE),
    }
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Installed {
    /// The library and its manifest were written.
    Written,
    /// A byte-identical library of this name was already there and was kept as it was, so a
    /// host reports it `unchanged`; `since` is its manifest's build time.
    Unchanged {
        /// When the kept bytes were built (RFC 3339), from the kept manifest.
        since: String,
        /// Whether its manifest had to be written again (missing or not matching).
        manifest_rewritten: bool,
        /// Whether its modification time was set to now, because a newer file of the same
        /// plugin (another version) would otherwise be the one a host loads.
        touched: bool,
    },
}

/// Why [`install`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The name is taken by different bytes.
    #[error(
        "{} already exists with other bytes (sha256 {existing}, this build {built}): the same version stamp gave a different library, so an input the stamp does not cover changed (see the notes above) or the build is not reproducible; the file was left as it is (a host may be serving it). Remove it to install this build", library.display()
    )]
    NameTaken {
        /// The library in the way.
        library: PathBuf,
        /// Its sha256.
        existing: String,
        /// The new build's sha256.
        built: String,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// Installs `staged` (a library staged in `dir`) as `dir/manifest.library` with its manifest
/// (manifest first, then the library, each by rename), unless the same bytes are there
/// already (then `staged` is removed).
///
/// The manifest is synced to disk before the library is renamed, unless `sync` is false (what
/// `watch` asks: in the edit loop the sync cost up to 16 ms per cycle on a loaded machine, see
/// BENCHMARKS.md). The library itself is never synced ([`crate::staged`]): after a power loss
/// an incomplete library, or without the sync an incomplete manifest, is refused by a host
/// naming the file, and the next build writes both again.
pub fn install(dir: &Path, staged: StagedLibrary, manifest: &Manifest, sync: bool) -> Result<Installed, InstallError> {
    let library = dir.join(&manifest.library);
    let manifest_path = Manifest::path_for(&library);
    match std::fs::read(&library) {
        Ok(existing) => {
            let existing_sha = hotswap_runtime::inspect::sha256_hex(&existing);
            if existing_sha != manifest.sha256 {
                return Err(InstallError::NameTaken {
                    library,
                    existing: existing_sha,
                    built: manifest.sha256.clone(),
                });
            }
            let kept: Option<Manifest> =
                std::fs::read(&manifest_path).ok().and_then(|t| serde_json::from_slice(&t).ok());
            let matches =
                kept.as_ref().is_some_and(|k| Manifest { built_at: k.built_at.clone(), ..manifest.clone() } == *k);
            if !matches {
                write_manifest(&manifest_path, manifest, sync)?;
            }
            let since = kept.filter(|_| matches).map(|k| k.built_at).unwrap_or_else(|| manifest.built_at.clone());
            let touched = make_newest(dir, &library, &manifest.name)?;
            Ok(Installed::Unchanged { since, manifest_rewritten: !matches, touched })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_manifest(&manifest_path, manifest, sync)?;
            staged.persist(&library)?;
            Ok(Installed::Written)
        }
        Err(e) => Err(InstallError::Io(anyhow::Error::new(e).context(format!("reading {}", library.display())))),
    }
}

fn write_manifest(path: &Path, manifest: &Manifest, sync: bool) -> Result<()> {
    write_atomically_with(path, serde_json::to_string_pretty(manifest)?.as_bytes(), sync)
}

/// Sets the modification time of `library` to now if another library of plugin `name` in
/// `dir` is at least as new (a host loads the newest file of each plugin). Returns whether it
/// did.
fn make_newest(dir: &Path, library: &Path, name: &str) -> Result<bool> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let ours = mtime(library).unwrap_or(SystemTime::UNIX_EPOCH);
    let prefix = format!("{name}@");
    let extension = std::env::consts::DLL_EXTENSION;
    let newer_rival = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.path()).any(|p| {
        p != library
            && p.extension().is_some_and(|e| e == extension)
            && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix))
            && mtime(&p).is_some_and(|t| t >= ours)
    });
    if newer_rival {
        let file = std::fs::File::options().write(true).open(library)?;
        file.set_modified(SystemTime::now())?;
    }
    Ok(newer_rival)
}
