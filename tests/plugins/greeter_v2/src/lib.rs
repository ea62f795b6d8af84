//! Version 2 of the `greeter` test plugin: answers "v2" and multiplies instead of adding.

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

pub fn on_load(ctx: &LoadContext) -> HookResult {
    if ctx.version.is_empty() {
        return Err("empty version".into());
    }
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new("v2".to_string())),
        "add" => Ok(Value::new(args.take::<i64>(0)? * args.take::<i64>(1)?)),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
