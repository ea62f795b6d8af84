//! Test fixture: a faulty build of plugin `greeter` whose `on_init` panics, so a reload that
//! picks it must contain the panic and be refused at stage `on_init` while the serving
//! `greeter` keeps serving. Were it ever published, `answer` would tell the callers so.

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
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    panic!("fault_on_init_panic panics in on_init of generation {}", vault.generation());
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new("fault_on_init_panic".to_string())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
