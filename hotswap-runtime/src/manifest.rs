//! The JSON manifest `cargo xtask build` writes beside each plugin library.

use std::path::{Path, PathBuf};

/// Describes one built plugin library. Written as `<name>@<version>.json` beside
/// `<name>@<version>.so`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Plugin name.
    pub name: String,
    /// Version stamp: `<crate version>+g<commit>[.dirty].h<inputs>`, derived from the build's
    /// inputs (never from the clock), so the same inputs give the same name.
    pub version: String,
    /// Short git commit of the plugin folder, with `-dirty` when it had uncommitted changes;
    /// `None` outside git.
    pub git_revision: Option<String>,
    /// SHA-256 of the library file, lower-case hex. Checked before loading.
    pub sha256: String,
    /// ABI fingerprint read from the library.
    pub fingerprint: String,
    /// Build time, RFC 3339, UTC: information only. A rebuild that gives the same bytes keeps
    /// the manifest, so this is when these bytes were first built.
    pub built_at: String,
    /// File name of the library.
    pub library: String,
}

impl Manifest {
    /// Where the manifest of `library` lives.
    pub fn path_for(library: &Path) -> PathBuf {
        library.with_extension("json")
    }

    /// File name for a library of this plugin and version (`<name>@<version>.so` on Linux).
    pub fn library_file_name(name: &str, version: &str) -> String {
        format!("{name}@{version}.{}", std::env::consts::DLL_EXTENSION)
    }
}

/// The largest manifest a host reads: real ones are a few hundred bytes.
pub const MAX_MANIFEST_SIZE: u64 = 64 * 1024;

impl Manifest {
    /// Reads the manifest beside `library`, if there is one. The manifest is opened without
    /// following a symbolic link and without blocking (a FIFO cannot hang the reload), must
    /// be a regular file of at most [`MAX_MANIFEST_SIZE`] bytes, and must parse.
    pub fn read_beside(library: &Path) -> Result<Option<Manifest>, String> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = Self::path_for(library);
        let shown = path.to_string_lossy().escape_debug().to_string();
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symbolic link is reported, not taken for "no manifest".
                return match std::fs::symlink_metadata(&path) {
                    Ok(_) => Err(format!("manifest {shown} is a symbolic link; manifests must be regular files")),
                    Err(_) => Ok(None),
                };
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(format!("manifest {shown} is a symbolic link; manifests must be regular files"));
            }
            Err(e) => return Err(format!("cannot read manifest {shown}: {e}")),
        };
        let meta = file.metadata().map_err(|e| format!("cannot read manifest {shown}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("manifest {shown} is not a regular file"));
        }
        if meta.len() > MAX_MANIFEST_SIZE {
            return Err(format!("manifest {shown} is {} bytes, over the limit of {MAX_MANIFEST_SIZE}", meta.len()));
        }
        let mut text = String::new();
        file.take(MAX_MANIFEST_SIZE + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read manifest {shown}: {e}"))?;
        if text.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(format!("manifest {shown} is over the limit of {MAX_MANIFEST_SIZE} bytes"));
        }
        serde_json::from_str(&text).map(Some).map_err(|e| format!("invalid manifest {shown}: {e}"))
    }

    /// Checks every field that describes the library against what the host found: the
    /// plugin name, the library's file name, the ABI fingerprint read from the file, and its
    /// sha256.
    pub fn check(&self, library: &Path, name: &str, fingerprint: &str, sha256: &str) -> Result<(), String> {
        let shown = Self::path_for(library).to_string_lossy().escape_debug().to_string();
        let file_name = library.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if self.name != name {
            return Err(format!("manifest {shown} describes plugin `{}`, not `{name}`", self.name));
        }
        if self.library != file_name {
            return Err(format!("manifest {shown} describes library `{}`, not `{file_name}`", self.library));
        }
        if self.fingerprint != fingerprint {
            return Err(format!(
                "manifest {shown} says ABI fingerprint [{}], the library has [{fingerprint}]",
                self.fingerprint
            ));
        }
        if self.sha256 != sha256 {
            return Err(format!("sha256 mismatch: manifest {shown} says {}, the file is {sha256}", self.sha256));
        }
        Ok(())
    }
}
