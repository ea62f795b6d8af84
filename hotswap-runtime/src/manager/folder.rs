//! The plugin folder: which file is each plugin's newest build, what was passed over and why,
//! and whether another user could have changed the files.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::report::{IgnoredFile, IgnoredReason};
use crate::error::{LoadError, Stage};

/// The chosen library file of each plugin name, and the entries passed over.
pub(super) struct ScanResult {
    pub files: BTreeMap<String, PathBuf>,
    pub ignored: Vec<IgnoredFile>,
}

/// The plugin name and version part that a library file name gives: `<plugin>@<version>.so`
/// belongs to `<plugin>`; any other `<stem>.so` to `<stem>` without a leading `lib`.
fn plugin_name_and_version(stem: &str) -> (String, &str) {
    match stem.split_once('@') {
        Some((name, version)) => (name.to_string(), version),
        None => (stem.strip_prefix("lib").unwrap_or(stem).to_string(), ""),
    }
}

/// Compares two version stamps so that runs of digits compare as numbers (`1.10` after `1.9`).
pub(super) fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|c| **c == b'0').count();
    &digits[zeros.min(digits.len().saturating_sub(1))..]
}

/// The newest library file of each plugin name in `dir`: the latest modification time, ties
/// broken by the version stamp (numerically, so `1.10` beats `1.9`), then by the path.
///
/// Hidden files (a leading `.`) are skipped silently: that is where `cargo xtask build` writes
/// before its atomic rename. Symbolic links, entries that are not regular files and names
/// that are not UTF-8 are listed in the result's `ignored` with the reason.
pub(super) fn scan(dir: &Path, whitelist: Option<&BTreeSet<String>>) -> Result<ScanResult, LoadError> {
    let fail = |reason: String| LoadError::new(None, dir, Stage::Scan, reason);
    let entries =
        std::fs::read_dir(dir).map_err(|e| fail(format!("cannot read the plugin folder: {e}")).caused_by(e))?;
    let extension = std::env::consts::DLL_EXTENSION;
    let mut newest: BTreeMap<String, (SystemTime, String, PathBuf)> = BTreeMap::new();
    let mut ignored = Vec::new();
    let mut manifests = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| fail(format!("cannot read the plugin folder: {e}")).caused_by(e))?;
        let path = entry.path();
        let ext = path.extension().map(|e| e.as_encoded_bytes());
        if ext == Some(b"json".as_slice()) {
            manifests.push(path);
            continue;
        }
        if ext == Some(b"partial".as_slice()) {
            remove_if_stale_partial(&entry);
            continue;
        }
        if ext != Some(extension.as_bytes()) {
            continue;
        }
        let raw_name = entry.file_name();
        if raw_name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let Some(file_name) = raw_name.to_str() else {
            let lossy = raw_name.to_string_lossy().into_owned();
            ignored.push(IgnoredFile::new(lossy, path, IgnoredReason::NonUtf8Name));
            continue;
        };
        let stem = &file_name[..file_name.len() - extension.len() - 1];
        let (name, version) = plugin_name_and_version(stem);
        // `DirEntry::metadata` does not follow symbolic links.
        let metadata = match entry.metadata() {
            Ok(m) => m,
            Err(_) => continue, // gone since the listing
        };
        if metadata.file_type().is_symlink() {
            ignored.push(IgnoredFile::new(name, path, IgnoredReason::Symlink));
            continue;
        }
        if !metadata.is_file() {
            ignored.push(IgnoredFile::new(name, path, IgnoredReason::NotRegularFile));
            continue;
        }
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let newer = match newest.get(&name) {
            Some((t, v, p)) => {
                modified.cmp(t).then_with(|| compare_versions(version, v)).then_with(|| path.cmp(p))
                    == Ordering::Greater
            }
            None => true,
        };
        if newer {
            newest.insert(name, (modified, version.to_string(), path));
        }
    }
    if let Some(whitelist) = whitelist {
        newest.retain(|name, (_, _, file)| {
            let keep = whitelist.contains(name);
            if !keep {
                ignored.push(IgnoredFile::new(name.clone(), file.clone(), IgnoredReason::NotWhitelisted));
            }
            keep
        });
    }
    for manifest in manifests {
        let library = manifest.with_extension(extension);
        let is_build_manifest = manifest.file_name().is_some_and(|n| n.as_encoded_bytes().contains(&b'@'));
        if is_build_manifest && std::fs::symlink_metadata(&library).is_err() {
            let name = manifest.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
            let name = name.split_once('@').map_or(&*name, |(n, _)| n).to_string();
            ignored.push(IgnoredFile::new(name, manifest, IgnoredReason::OrphanManifest));
        }
    }
    ignored.sort_by(|a, b| a.file.cmp(&b.file));
    if newest.is_empty() {
        let mut reason = format!("no plugin libraries (*.{extension}) in the folder");
        if !ignored.is_empty() {
            reason.push_str("; passed over: ");
            let listed: Vec<String> =
                ignored.iter().map(|f| format!("{} ({})", crate::error::escape_path(&f.file), f.note)).collect();
            reason.push_str(&listed.join(", "));
        }
        return Err(fail(reason));
    }
    Ok(ScanResult { files: newest.into_iter().map(|(name, (_, _, path))| (name, path)).collect(), ignored })
}

/// Removes `.hotswap-<pid>-*.partial`, the temporary file of a `cargo hotswap build` that was
/// killed while writing, when it is ours and its process is gone. Best effort: a plugin folder
/// the host may not write is left as it is.
fn remove_if_stale_partial(entry: &std::fs::DirEntry) {
    use std::os::unix::fs::MetadataExt;
    if !super::workdir::left_by_dead_process(&entry.file_name(), ".hotswap-") {
        return;
    }
    let Ok(meta) = entry.metadata() else { return };
    let ours = meta.uid() == rustix::process::geteuid().as_raw();
    if meta.is_file() && ours && std::fs::remove_file(entry.path()).is_ok() {
        tracing::info!(file = %crate::error::escape_path(&entry.path()), "removed the temporary file of a build that died");
    }
}

/// Refuses `path` if another user could change it: it, or any folder above it up to `/`, is
/// writable by group or others or owned by neither this process's user nor root (as sshd's
/// `StrictModes` checks). A root-owned folder with the sticky bit (such as `/tmp`) is
/// accepted above the plugin folder: others may add entries there but not replace ours.
pub(super) fn check_modes(path: &Path, plugin: Option<&str>) -> Result<(), LoadError> {
    use std::os::unix::fs::MetadataExt;
    let what = if plugin.is_some() { "plugin file" } else { "plugin folder" };
    let fail = |reason: String| {
        LoadError::new(
            plugin.map(str::to_string),
            path,
            Stage::Scan,
            format!("{reason}; or, to accept it anyway, build the manager with `strict_modes(false)`"),
        )
    };
    let uid = rustix::process::geteuid().as_raw();
    let absolute =
        std::path::absolute(path).map_err(|e| fail(format!("cannot resolve the {what}'s path: {e}")).caused_by(e))?;
    let mut checked: Option<&Path> = Some(&absolute);
    let mut first = true;
    while let Some(current) = checked {
        let meta = std::fs::symlink_metadata(current).map_err(|e| {
            fail(format!("cannot read the permissions of {}: {e}", crate::error::escape_path(current))).caused_by(e)
        })?;
        // The plugin file and folder themselves are checked where they point; the folders
        // above are checked as they are (a symbolic link's own mode means nothing).
        let meta = if meta.file_type().is_symlink() {
            std::fs::metadata(current).map_err(|e| {
                fail(format!("cannot read the permissions of {}: {e}", crate::error::escape_path(current))).caused_by(e)
            })?
        } else {
            meta
        };
        let subject = if first {
            format!("the {what}")
        } else {
            format!("the folder {} above the {what}", crate::error::escape_path(current))
        };
        if meta.uid() != uid && meta.uid() != 0 {
            return Err(fail(format!(
                "{subject} is owned by uid {}, not by this process's user ({uid}) or root, so its owner could run code in this host; fix: `chown {uid} {}`",
                meta.uid(),
                crate::error::escape_path(current)
            )));
        }
        let mode = meta.mode() & 0o7777;
        let sticky_root_folder = !first && meta.uid() == 0 && meta.is_dir() && mode & 0o1000 != 0;
        if mode & 0o022 != 0 && !sticky_root_folder {
            return Err(fail(format!(
                "{subject} is writable by group or others (mode {mode:o}), so they could run code in this host; fix: `chmod go-w {}`",
                crate::error::escape_path(current)
            )));
        }
        if plugin.is_some() {
            // A plugin file's folders are checked once, with the plugin folder.
            break;
        }
        first = false;
        checked = current.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_stamps_compare_numerically() {
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.9", "1.10"), Ordering::Less);
        assert_eq!(compare_versions("0.1.0-abc", "0.1.0-abc"), Ordering::Equal);
        assert_eq!(compare_versions("0.1.0-002", "0.1.0-10"), Ordering::Less);
        assert_eq!(compare_versions("2", "10"), Ordering::Less);
    }

    #[test]
    fn plugin_names_come_from_file_names() {
        assert_eq!(plugin_name_and_version("rtp@1.9"), ("rtp".to_string(), "1.9"));
        assert_eq!(plugin_name_and_version("libfoo"), ("foo".to_string(), ""));
    }

    #[test]
    fn io_errors_stay_reachable_as_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let Err(error) = scan(&missing, None) else { panic!("a missing folder scans") };
        assert!(error.reason.starts_with("cannot read the plugin folder: "), "{error}");
        let source = std::error::Error::source(&error).expect("the io error");
        let io = source.downcast_ref::<std::io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
