//! Splitting a plugin's debug info out of the library `cargo xtask build` installs.
//!
//! A reload reads, hashes and copies the whole library, so its size is most of a reload's
//! cost; in an as-built plugin most of that size is debug info (DWARF), which only debuggers
//! and backtraces read. The library installed is stripped of it (`objcopy --strip-debug`,
//! which keeps the symbol table) and carries a `.gnu_debuglink` naming `<name>@<version>.debug`,
//! written beside it. That file is the library as cargo built it (a hard link to the artifact
//! where the file system allows, else a copy): gdb and std's backtraces take the DWARF from a
//! full library as from the debug-only file `objcopy --only-keep-debug` would write, and not
//! writing that one saves an `objcopy` run per build (issue 24); the stripping itself is done
//! in this process for the usual layout ([`crate::strip_debug`]), else by `objcopy` (always
//! by `$OBJCOPY` when that variable is set). The runtime links the file
//! beside the private copy it loads, where gdb and std's backtraces look for it, so they still
//! find file names and lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The debug info of `artifact`, split out: the stripped library (what to install), written
/// in `scratch` as `<stem>.stripped`, and the `.debug` file (the artifact itself, linked or
/// copied), there under `<stem>.debug` (the name the library's debug link gives). `None` when
/// `objcopy` (binutils) cannot be run: the library is then installed as built, and a note
/// says so.
///
/// `bytes` are the artifact's content: for the layout rustc's linkers give, the library is
/// stripped in this process ([`crate::strip_debug`]) and `objcopy` is not run at all.
pub fn split(artifact: &Path, bytes: &[u8], scratch: &Path, stem: &str) -> Result<Option<(PathBuf, PathBuf)>> {
    let objcopy = std::env::var_os("OBJCOPY").unwrap_or_else(|| "objcopy".into());
    let debug = scratch.join(format!("{stem}.debug"));
    let stripped = scratch.join(format!("{stem}.stripped"));
    if std::fs::hard_link(artifact, &debug).is_err() {
        std::fs::copy(artifact, &debug)
            .with_context(|| format!("copying {} to {}", artifact.display(), debug.display()))?;
    }
    if std::env::var_os("OBJCOPY").is_none()
        && let Some(library) = crate::strip_debug::strip_debug(bytes, &format!("{stem}.debug"), bytes)
    {
        std::fs::write(&stripped, library).with_context(|| format!("writing {}", stripped.display()))?;
        return Ok(Some((stripped, debug)));
    }
    let link = format!("--add-gnu-debuglink={}", debug.display());
    let strip = match Command::new(&objcopy)
        .args(["--strip-debug".as_ref(), link.as_ref(), artifact.as_os_str(), stripped.as_os_str()])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!(
                "note: cannot run {} ({e}): the library keeps its debug info (install binutils to split it out)",
                objcopy.to_string_lossy()
            );
            let _ = std::fs::remove_file(&debug);
            return Ok(None);
        }
    };
    if !strip.status.success() {
        bail!("objcopy --strip-debug {} failed: {}", artifact.display(), String::from_utf8_lossy(&strip.stderr));
    }
    Ok(Some((stripped, debug)))
}
