//! Test fixture: plugin `mem_cache`, which keeps a cache in a static, as plugins do, and
//! behaves as files in its plugin folder say, read when a hook runs:
//!
//! - `on_init` fills the static `CACHE` with [`CACHE_BYTES`] of heap (or as many MiB as the
//!   file `cache-mib` says), every page written (so it is resident). A static is never dropped when its library is unloaded, so that heap
//!   stays allocated unless `on_free` lets go of it.
//! - `on_free` lets go of it (the pattern the guide recommends) when the file `cache-mode`
//!   says `free`; otherwise (`leak`, or no file) it keeps it, as a plugin that forgets to does.
//! - `on_free` appends `entered <generation>` to `on_free.log` when it starts and
//!   `returned <generation>` when it ends, and in between, while a file `stall-on-free`
//!   exists, loops until a file `release` exists: an `on_free` that does not return.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// Bytes of heap the cache holds: above glibc's largest mmap threshold (32 MiB), so the
/// allocation is its own mapping and freeing it gives it back to the system at once.
pub const CACHE_BYTES: usize = 36 << 20;

static CACHE: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FOLDER: OnceLock<PathBuf> = OnceLock::new();
static GENERATION: OnceLock<u64> = OnceLock::new();

fn folder_file(name: &str) -> Option<PathBuf> {
    FOLDER.get().map(|dir| dir.join(name))
}

fn log(line: &str) {
    if let Some(path) = folder_file("on_free.log")
        && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    if let Some(dir) = ctx.file.parent() {
        let _ = FOLDER.set(dir.to_path_buf());
    }
    let _ = GENERATION.set(ctx.generation);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    let bytes = folder_file("cache-mib")
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|mib| mib.trim().parse::<usize>().ok())
        .map_or(CACHE_BYTES, |mib| mib << 20);
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = vec![0xA5; bytes];
    Ok(())
}

pub fn on_free() {
    let generation = GENERATION.get().copied().unwrap_or(0);
    log(&format!("entered {generation}"));
    let mode = folder_file("cache-mode").and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
    if mode.trim() == "free" {
        drop(std::mem::take(&mut *CACHE.lock().unwrap_or_else(|e| e.into_inner())));
    }
    if folder_file("stall-on-free").is_some_and(|f| f.exists()) {
        while !folder_file("release").is_some_and(|f| f.exists()) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    log(&format!("returned {generation}"));
}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "generation" => Ok(Value::new(GENERATION.get().copied().unwrap_or(0))),
        "cache_bytes" => Ok(Value::new(CACHE.lock().unwrap_or_else(|e| e.into_inner()).len() as u64)),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
