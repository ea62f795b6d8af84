//! Test fixture: plugin `probe`, for the probation and rollback tests, in two builds that
//! differ only in `LABEL`: `p1`, and `p2` with feature `v2`. Each hook appends
//! `<hook> <label>` to the file `hooks.log` in its plugin folder (so a test sees which build's
//! hooks ran, and how many times); `answer` returns the label, `boom` panics, and `health`
//! fails when the file `sick-<label>` exists in the plugin folder.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

static FOLDER: OnceLock<PathBuf> = OnceLock::new();
/// What tells this build from the other.
const LABEL: &str = if cfg!(feature = "v2") { "p2" } else { "p1" };

fn version() -> &'static str {
    LABEL
}

fn log(hook: &str) {
    let Some(dir) = FOLDER.get() else { return };
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("hooks.log")) {
        let _ = writeln!(file, "{hook} {}", version());
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
    log("on_load");
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    log("on_init");
    Ok(())
}

pub fn on_free() {
    log("on_free");
}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new(version().to_string())),
        "boom" => panic!("boom in {}", version()),
        "health" => match FOLDER.get().map(|dir| dir.join(format!("sick-{}", version()))) {
            Some(sick) if sick.exists() => Err(format!("{} says it is sick", version()).into()),
            _ => Ok(Value::new(())),
        },
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
