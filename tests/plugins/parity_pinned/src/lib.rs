//! A plugin that is not reloadable: loaded once, then kept across reloads. It counts its
//! `on_load` calls so a test can see that a reload did not load it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

static LOADS: AtomicU64 = AtomicU64::new(0);

pub fn reloadable() -> bool {
    false
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    IMPORTS
}

/// What this plugin imports; the `pinned_importer` fixture differs only here.
const IMPORTS: &[&str] = &[];

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "loads" => Ok(Value::new(LOADS.load(Ordering::SeqCst))),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
