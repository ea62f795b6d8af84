//! Splitting a plugin's debug info out of the library `cargo xtask build` installs.
//!
//! A reload reads, hashes and copies the whole library, so its size is most of a reload's
//! cost; in an as-built plugin most of that size is debug info (DWARF), which only debuggers
//! and backtraces read. The library installed is stripped of it (`objcopy --strip-debug`,
//! which keeps the symbol table) and carries a `.gnu_debuglink` naming `<name>@<version>.debug`,
//! written beside it with the debug info (`objcopy --only-keep-debug`). The runtime links that
//! file beside the private copy it loads, where gdb and std's backtraces look for it, so they
//! still find file names and lines.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The debug info of `artifact`, split out: the stripped library's bytes (what to install),
/// and the `.debug` file, written in `scratch` under `<stem>.debug` (the name the library's
/// debug link gives). `None` when `objcopy` (binutils) cannot be run: the library is then
/// installed as built, and a note says so.
pub fn split(artifact: &Path, scratch: &Path, stem: &str) -> Result<Option<(Vec<u8>, std::path::PathBuf)>> {
    let objcopy = std::env::var_os("OBJCOPY").unwrap_or_else(|| "objcopy".into());
    let debug = scratch.join(format!("{stem}.debug"));
    let stripped = scratch.join(format!("{stem}.stripped"));
    let run = |args: &[&std::ffi::OsStr]| Command::new(&objcopy).args(args).output();
    let keep = match run(&["--only-keep-debug".as_ref(), artifact.as_os_str(), debug.as_os_str()]) {
        Ok(out) => out,
        Err(e) => {
            eprintln!(
                "note: cannot run {} ({e}): the library keeps its debug info (install binutils to split it out)",
                objcopy.to_string_lossy()
            );
            return Ok(None);
        }
    };
    if !keep.status.success() {
        bail!("objcopy --only-keep-debug {} failed: {}", artifact.display(), String::from_utf8_lossy(&keep.stderr));
    }
    let link = format!("--add-gnu-debuglink={}", debug.display());
    let strip = run(&["--strip-debug".as_ref(), link.as_ref(), artifact.as_os_str(), stripped.as_os_str()])
        .context("running objcopy --strip-debug")?;
    if !strip.status.success() {
        bail!("objcopy --strip-debug {} failed: {}", artifact.display(), String::from_utf8_lossy(&strip.stderr));
    }
    let bytes = std::fs::read(&stripped).with_context(|| format!("reading {}", stripped.display()))?;
    Ok(Some((bytes, debug)))
}
