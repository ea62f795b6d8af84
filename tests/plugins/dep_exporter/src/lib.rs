//! Test fixture `dep_exporter`: exports the function `scramble` as a `fn(u32) -> u32`, and
//! offers it through `invoke_func` too, so a test can compare the two.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// What importers call.
fn scramble(x: u32) -> u32 {
    x.wrapping_mul(31).wrapping_add(7)
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    Some(Export::new(scramble as fn(u32) -> u32))
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

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "scramble" => Ok(Value::new(scramble(args.take::<u32>(0)?))),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
