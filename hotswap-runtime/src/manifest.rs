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
    /// The crate identity record read from the library (`hotswap_abi::identity`): the crates
    /// the plugin links, which the host compares with its own at stage `inspect`. Checked
    /// against the library when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crate_identity: Option<String>,
    /// The shared library (the workspace's shared Rust `dylib`, guide section 10) the plugin
    /// was linked against, on the shared route; the host refuses the plugin at stage `inspect`
    /// unless it runs that very file. The field is named [`hotswap_abi::shared::MANIFEST_FIELD`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_library: Option<SharedLibrary>,
    /// Build time, RFC 3339, UTC: information only. A rebuild that gives the same bytes keeps
    /// the manifest, so this is when these bytes were first built.
    pub built_at: String,
    /// File name of the library.
    pub library: String,
}

/// A shared library a plugin was linked against ([`Manifest::shared_library`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedLibrary {
    /// Its file name (`libmy_shared.so`), as the plugin's `DT_NEEDED` entry names it.
    pub file: String,
    /// SHA-256 of its bytes, lower-case hex.
    pub sha256: String,
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

/// Why the manifest beside a library was refused; the message names the manifest, and the
/// underlying error (reading, parsing) is kept as the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest is a symbolic link (dangling or not).
    #[error("manifest {path} is a symbolic link; manifests must be regular files")]
    Symlink {
        /// The manifest, escaped for display.
        path: String,
    },
    /// Opening or reading it failed.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest, escaped for display.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// It is a FIFO, a folder, a device…
    #[error("manifest {path} is not a regular file")]
    NotRegularFile {
        /// The manifest, escaped for display.
        path: String,
    },
    /// It is larger than [`MAX_MANIFEST_SIZE`] (`size` is `None` when it grew while read).
    #[error("manifest {path} is {}over the limit of {MAX_MANIFEST_SIZE} bytes", size.map_or_else(String::new, |s| format!("{s} bytes, ")))]
    TooLarge {
        /// The manifest, escaped for display.
        path: String,
        /// Its size when opened.
        size: Option<u64>,
    },
    /// It is not a manifest's JSON.
    #[error("invalid manifest {path}: {source}")]
    Invalid {
        /// The manifest, escaped for display.
        path: String,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// A field does not describe the library beside it.
    #[error("{0}")]
    Mismatch(Box<ManifestMismatch>),
}

/// A manifest field that does not describe the library beside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestMismatch {
    /// The plugin name.
    #[error("manifest {path} describes plugin `{manifest}`, not `{library}`")]
    Name {
        /// The manifest, escaped for display.
        path: String,
        /// What the manifest says.
        manifest: String,
        /// What the library is.
        library: String,
    },
    /// The library's file name.
    #[error("manifest {path} describes library `{manifest}`, not `{library}`")]
    Library {
        /// The manifest, escaped for display.
        path: String,
        /// What the manifest says.
        manifest: String,
        /// What the library is.
        library: String,
    },
    /// The ABI fingerprint.
    #[error("manifest {path} says ABI fingerprint [{manifest}], the library has [{library}]")]
    Fingerprint {
        /// The manifest, escaped for display.
        path: String,
        /// What the manifest says.
        manifest: String,
        /// What the library is.
        library: String,
    },
    /// The crate identity record.
    #[error("manifest {path} describes other crates than the library's own record (rebuild the plugin)")]
    CrateIdentity {
        /// The manifest, escaped for display.
        path: String,
    },
    /// The library's sha256.
    #[error("sha256 mismatch: manifest {path} says {manifest}, the file is {library}")]
    Sha256 {
        /// The manifest, escaped for display.
        path: String,
        /// What the manifest says.
        manifest: String,
        /// What the library is.
        library: String,
    },
}

impl Manifest {
    /// Reads the manifest beside `library`, if there is one. The manifest is opened without
    /// following a symbolic link and without blocking (a FIFO cannot hang the reload), must
    /// be a regular file of at most [`MAX_MANIFEST_SIZE`] bytes, and must parse.
    pub fn read_beside(library: &Path) -> Result<Option<Manifest>, ManifestError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = Self::path_for(library);
        let shown = path.to_string_lossy().escape_debug().to_string();
        let read = |source| ManifestError::Read { path: shown.clone(), source };
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symbolic link is reported, not taken for "no manifest".
                return match std::fs::symlink_metadata(&path) {
                    Ok(_) => Err(ManifestError::Symlink { path: shown }),
                    Err(_) => Ok(None),
                };
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(ManifestError::Symlink { path: shown });
            }
            Err(e) => return Err(read(e)),
        };
        let meta = file.metadata().map_err(read)?;
        if !meta.is_file() {
            return Err(ManifestError::NotRegularFile { path: shown });
        }
        if meta.len() > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge { path: shown, size: Some(meta.len()) });
        }
        let mut text = String::new();
        file.take(MAX_MANIFEST_SIZE + 1).read_to_string(&mut text).map_err(read)?;
        if text.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge { path: shown, size: None });
        }
        serde_json::from_str(&text).map(Some).map_err(|source| ManifestError::Invalid { path: shown, source })
    }

    /// Checks every field that describes the library against what the host found: the
    /// plugin name, the library's file name, the ABI fingerprint read from the file, and its
    /// sha256.
    pub fn check(
        &self,
        library: &Path,
        name: &str,
        fingerprint: &str,
        identity: Option<&str>,
        sha256: &str,
    ) -> Result<(), ManifestMismatch> {
        let path = Self::path_for(library).to_string_lossy().escape_debug().to_string();
        let file_name = library.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let pair = |manifest: &str, library: &str| (path.clone(), manifest.to_string(), library.to_string());
        if self.name != name {
            let (path, manifest, library) = pair(&self.name, name);
            return Err(ManifestMismatch::Name { path, manifest, library });
        }
        if self.library != file_name {
            let (path, manifest, library) = pair(&self.library, &file_name);
            return Err(ManifestMismatch::Library { path, manifest, library });
        }
        if self.fingerprint != fingerprint {
            let (path, manifest, library) = pair(&self.fingerprint, fingerprint);
            return Err(ManifestMismatch::Fingerprint { path, manifest, library });
        }
        if self.crate_identity.as_deref().is_some_and(|m| Some(m) != identity) {
            return Err(ManifestMismatch::CrateIdentity { path });
        }
        if self.sha256 != sha256 {
            let (path, manifest, library) = pair(&self.sha256, sha256);
            return Err(ManifestMismatch::Sha256 { path, manifest, library });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shared_library_field_has_the_contract_name() {
        let manifest = super::Manifest {
            name: "p".into(),
            version: "1".into(),
            git_revision: None,
            sha256: "0".into(),
            fingerprint: "f".into(),
            crate_identity: None,
            shared_library: Some(super::SharedLibrary { file: "libs.so".into(), sha256: "1".into() }),
            built_at: "t".into(),
            library: "p@1.so".into(),
        };
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(json[hotswap_abi::shared::MANIFEST_FIELD]["file"], "libs.so", "{json}");
    }
}
