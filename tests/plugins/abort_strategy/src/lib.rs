//! Test fixture for `tests/tests/faults_abort.rs`: plugin `abort_strategy`, built by the test
//! with `panic = "abort"` in its Cargo profile, or in the other profile than the host. Its
//! `on_load` panics: loaded with `panic = "abort"` it would kill the host, so the runtime must
//! refuse it from its fingerprint, before any of its code runs.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    panic!("abort_strategy's on_load ran: the runtime loaded a plugin it should have refused");
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    Err(format!("unknown function `{name}`").into())
}
