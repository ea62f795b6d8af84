//! The library a build installs, staged in the output folder under a hidden temporary name
//! and read once (issue 24): its bytes serve the checks, the manifest's sha256 and the notes,
//! and the staged file itself is renamed into place, so the library is never written twice.
//!
//! The stage is a hard link to cargo's artifact when the output folder is on the same file
//! system (no copy at all), else a copy. A link is safe for the reason a copy was: cargo's
//! linkers never write an existing output in place (rustc's linker writes a new file and cargo
//! replaces `target/…/lib<name>.so` by a new link), so the next build gives the artifact's path
//! a new inode and leaves the installed one as it was; and a host never maps the installed file
//! itself, only a private copy of it. Should something still write the artifact in place
//! afterwards, the installed library no longer matches its manifest's sha256 and a host
//! refuses it, naming the file. The linked inode is the artifact's: its mode loses group and
//! others' write permission, which a host refuses (strict modes).
//!
//! The library is not synced to disk (a copy was, at the cost of writing it through): after a
//! power loss the installed file may be incomplete, which a host refuses at its sha256 check;
//! build again after removing it. The manifest is still written and synced before the library
//! is renamed into place, except by `watch` ([`crate::options::BuildOptions::no_sync`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::TempPath;

use crate::atomic::{PARTIAL_PREFIX, PARTIAL_SUFFIX};

/// A library staged in the output folder ([`StagedLibrary::link`]), removed on drop unless
/// renamed into place ([`StagedLibrary::persist`]).
#[derive(Debug)]
pub struct StagedLibrary {
    file: TempPath,
    /// Its bytes, read once.
    pub bytes: Vec<u8>,
    sha256: std::sync::OnceLock<String>,
    /// Whether it is a hard link to the artifact (else a copy).
    pub linked: bool,
}

impl StagedLibrary {
    /// Stages `artifact` in `dir` (a hard link, else a copy), and reads it.
    pub fn link(artifact: &Path, dir: &Path) -> Result<StagedLibrary> {
        let mut linked = true;
        let file = tempfile::Builder::new()
            .prefix(&format!("{PARTIAL_PREFIX}{}-", std::process::id()))
            .suffix(PARTIAL_SUFFIX)
            .make_in(dir, |path| match std::fs::hard_link(artifact, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
                // Another file system, or links not allowed: copy.
                Err(_) => {
                    linked = false;
                    std::fs::copy(artifact, path).map(|_| ())
                }
            })
            .with_context(|| format!("staging {} in {}", artifact.display(), dir.display()))?
            .into_temp_path();
        Self::read(file, linked)
    }

    /// Stages `file`, a new file in the output folder nothing else holds (the stripped library
    /// `objcopy` wrote), and reads it.
    pub fn adopt(file: PathBuf) -> Result<StagedLibrary> {
        Self::read(TempPath::try_from_path(file)?, false)
    }

    fn read(file: TempPath, linked: bool) -> Result<StagedLibrary> {
        use std::os::unix::fs::PermissionsExt;
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let mode = std::fs::metadata(&file)?.permissions().mode();
        if mode & 0o022 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & !0o022 & 0o7777))
                .with_context(|| format!("chmod go-w {}", file.display()))?;
        }
        Ok(StagedLibrary { file, bytes, sha256: std::sync::OnceLock::new(), linked })
    }

    /// The sha256 of its bytes (hex), computed once, when first asked.
    pub fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| hotswap_runtime::inspect::sha256_hex(&self.bytes))
    }

    /// Where it is staged.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Renames it to `to`.
    pub fn persist(self, to: &Path) -> Result<()> {
        self.file.persist(to).map_err(|e| e.error).with_context(|| format!("renaming into {}", to.display()))
    }
}
