//! Test fixture: a faulty build of plugin `greeter` whose `on_load` returns an error, so a
//! reload that picks it must be refused at stage `on_load` while the serving `greeter` keeps
//! serving. Were it ever published, `answer` would tell the callers so.

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
    Err(format!("fault_on_load refuses to load generation {}", ctx.generation).into())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new("fault_on_load".to_string())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
