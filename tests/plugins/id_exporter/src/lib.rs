//! Test fixture: plugin `id_exporter` exports `serial_of`, a `fn(&Reading) -> u64` reading the
//! serial nested in an `id_pair_shared::Reading` (see `tests/identity.rs`).

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use id_pair_shared::Reading;

hotswap_runtime::plugin!();

/// What the importer calls.
fn serial_of(reading: &Reading) -> u64 {
    reading.meta.serial
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    Some(Export::new(serial_of as fn(&Reading) -> u64))
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    Err(format!("unknown function `{name}`").into())
}
