//! Atomic writes: a file is written as a hidden `.hotswap-<pid>-<random>.partial` in its
//! folder and renamed into place, so a reader never sees half a file and a later build can
//! tell a dead writer's temporary from a live one's (`output_dir::tidy`).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Prefix of the hidden temporary files; the writer's process id follows.
pub const PARTIAL_PREFIX: &str = ".hotswap-";
/// Suffix of the hidden temporary files.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Writes `path` by writing a hidden temporary file `.hotswap-<pid>-<random>.partial` in the
/// same folder, syncing it and renaming it, so a reader (or a host mapping the old file) never
/// sees a partial file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomically_with(path, contents, true)
}

/// [`write_atomically`], syncing the file to disk before the rename only when `sync`: without
/// it, a reader still never sees a partial file, but after a power loss the file may be
/// empty or incomplete.
pub fn write_atomically_with(path: &Path, contents: &[u8], sync: bool) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{PARTIAL_PREFIX}{}-", std::process::id()))
        .suffix(PARTIAL_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)?;
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
