//! Refusing, before `dlopen`, a plugin linked against another build of the shared library
//! than the one this process runs (the shared route, guide section 10).
//!
//! On that route host and plugins link one Rust `dylib` crate; a plugin built against another
//! build of it (other features, other flags) would resolve its symbols against the host's copy,
//! and fail in `dlopen` with an undefined mangled symbol only by luck. The build tool records
//! the library's file name and sha256 in the plugin's manifest ([`SharedLibrary`]); here the
//! file this process has mapped under that name is hashed and compared.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::manifest::SharedLibrary;

/// Why a plugin's shared library is not the host's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedLibraryError {
    /// The process has no library of that name mapped.
    #[error(
        "the plugin was linked against the shared library {file} (sha256 {plugin}, its manifest), which this host \
         does not link: build the host with `-C prefer-dynamic` against the same shared crate"
    )]
    NotLoaded {
        /// The library's file name.
        file: String,
        /// Its sha256 in the plugin's manifest.
        plugin: String,
    },
    /// Another build of the library.
    #[error(
        "the plugin was linked against the shared library {file} sha256 {plugin} (its manifest), but the host runs \
         {host_path} sha256 {host}: rebuild the plugin against the host's build of the shared crate (same features \
         and RUSTFLAGS), or restart the host on the new one"
    )]
    Differs {
        /// The library's file name.
        file: String,
        /// Its sha256 in the plugin's manifest.
        plugin: String,
        /// The file the host has mapped.
        host_path: String,
        /// Its sha256.
        host: String,
    },
    /// The file the host mapped was replaced or removed on disk since, so what runs cannot be
    /// hashed.
    #[error(
        "the plugin was linked against the shared library {file} sha256 {plugin} (its manifest), but the host's \
         {host_path} was replaced or removed on disk after the host mapped it, so the library it runs cannot be \
         checked: restore the host's file, or restart the host"
    )]
    Replaced {
        /// The library's file name.
        file: String,
        /// Its sha256 in the plugin's manifest.
        plugin: String,
        /// The path the host mapped it from.
        host_path: String,
    },
    /// Reading the host's file failed.
    #[error("cannot read the host's shared library {host_path}")]
    Read {
        /// The path.
        host_path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// A mapped file: its path, device and inode.
type MappedFile = (PathBuf, u64, u64);

/// The mapped libraries already hashed, and their sha256.
static HASHED: Mutex<Option<HashMap<MappedFile, String>>> = Mutex::new(None);

/// Checks that this process runs the shared library `wanted` (from a plugin's manifest).
pub(crate) fn check(wanted: &SharedLibrary) -> Result<(), SharedLibraryError> {
    let (file, plugin) = (wanted.file.clone(), wanted.sha256.clone());
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|source| SharedLibraryError::Read { host_path: "/proc/self/maps".into(), source })?;
    let Some((path, device, inode)) = mapped(&maps, &wanted.file) else {
        return Err(SharedLibraryError::NotLoaded { file, plugin });
    };
    let host_path = crate::error::escape_path(&path).to_string();
    let on_disk = std::fs::metadata(&path).ok();
    if on_disk.as_ref().is_none_or(|m| m.ino() != inode || dev_of(m.dev()) != device) {
        return Err(SharedLibraryError::Replaced { file, plugin, host_path });
    }
    let key = (path.clone(), device, inode);
    let known = HASHED.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(&key).cloned());
    let host = match known {
        Some(sha256) => sha256,
        None => {
            let bytes = std::fs::read(&path)
                .map_err(|source| SharedLibraryError::Read { host_path: host_path.clone(), source })?;
            let sha256 = crate::inspect::sha256_hex(&bytes);
            HASHED.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().insert(key, sha256.clone());
            sha256
        }
    };
    if host != wanted.sha256 {
        return Err(SharedLibraryError::Differs { file, plugin, host_path, host });
    }
    Ok(())
}

/// The device number as `/proc/self/maps` writes it (`major:minor`, hex), packed like `st_dev`.
fn dev_of(dev: u64) -> u64 {
    // Linux's encoding of a dev_t (glibc's `gnu_dev_major`/`gnu_dev_minor`).
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    (major << 32) | minor
}

/// The first mapping of a file named `file` (path, device as `major << 32 | minor`, inode).
fn mapped(maps: &str, file: &str) -> Option<MappedFile> {
    maps.lines().find_map(|line| {
        // address perms offset dev inode path
        let mut fields = line.splitn(6, ' ');
        let (_, _, _, dev, inode) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        let path = fields.next()?.trim_start();
        let deleted = path.ends_with(" (deleted)");
        let path = Path::new(path.strip_suffix(" (deleted)").unwrap_or(path));
        if path.file_name()? != file {
            return None;
        }
        let (major, minor) = dev.split_once(':')?;
        let device = (u64::from_str_radix(major, 16).ok()? << 32) | u64::from_str_radix(minor, 16).ok()?;
        // A deleted file gets an inode of 0 here, which no file on disk has: reported replaced.
        let inode = if deleted { 0 } else { inode.parse().ok()? };
        Some((path.to_path_buf(), device, inode))
    })
}

#[cfg(test)]
mod tests {
    use super::mapped;

    #[test]
    fn the_mapping_of_a_library_is_found_by_file_name_and_a_deleted_one_gets_no_inode() {
        let maps = "7f00-7f01 r--p 00000000 fd:01 1234 /opt/app/libshared.so\n\
                    7f02-7f03 r-xp 00000000 fd:01 99 /opt/old/libother.so (deleted)\n";
        assert_eq!(mapped(maps, "libshared.so"), Some(("/opt/app/libshared.so".into(), (0xfd << 32) | 1, 1234)));
        assert_eq!(mapped(maps, "libother.so"), Some(("/opt/old/libother.so".into(), (0xfd << 32) | 1, 0)));
        assert_eq!(mapped(maps, "libnone.so"), None);
    }

    #[test]
    fn a_library_this_process_does_not_run_is_refused_naming_it() {
        let wanted = crate::manifest::SharedLibrary { file: "libnot_here_at_all.so".into(), sha256: "ab".into() };
        let reason = super::check(&wanted).unwrap_err().to_string();
        assert!(reason.contains("libnot_here_at_all.so") && reason.contains("does not link"), "{reason}");
    }
}
