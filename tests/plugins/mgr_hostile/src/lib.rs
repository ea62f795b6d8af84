//! Test fixture: a build of plugin `greeter` that misbehaves as the file `hostile-mode` in
//! its plugin folder says, read when it loads:
//!
//! - `loop_on_load`: `on_load` never returns (until a file `release` appears in the folder);
//! - `loop_on_free`: `on_free` never returns (until `release` appears);
//!
//! (a stalled hook writes `stalled-<hook>` into the folder when it starts to wait, and
//! `left-<hook>` when it returns, so that a test can see it is stuck);
//! - `reload_from_on_init`: `on_init` calls the host's extension, an
//!   `Arc<dyn Fn() -> String + Send + Sync>` that asks the manager for a reload, and fails
//!   with what it answered;
//! - anything else, or no file: a well-behaved greeter answering `hostile-ok`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

static FOLDER: OnceLock<PathBuf> = OnceLock::new();

fn mode() -> String {
    FOLDER
        .get()
        .and_then(|dir| std::fs::read_to_string(dir.join("hostile-mode")).ok())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Loops until `release` exists in the plugin folder, with `stalled-<hook>` written before and
/// `left-<hook>` after.
fn stall(hook: &str) {
    let Some(dir) = FOLDER.get() else { return };
    let _ = std::fs::write(dir.join(format!("stalled-{hook}")), b"");
    while !dir.join("release").exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::write(dir.join(format!("left-{hook}")), b"");
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
    if mode() == "loop_on_load" {
        stall("on_load");
    }
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    if mode() == "reload_from_on_init" {
        let reload = vault.extension::<Arc<dyn Fn() -> String + Send + Sync>>()?;
        return Err(format!("the host's reload answered: {}", reload()).into());
    }
    Ok(())
}

pub fn on_free() {
    if mode() == "loop_on_free" {
        stall("on_free");
    }
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new("hostile-ok".to_string())),
        "add" => {
            let (a, b): (i64, i64) = (*args.get(0)?, *args.get(1)?);
            Ok(Value::new(a + b))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
