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
