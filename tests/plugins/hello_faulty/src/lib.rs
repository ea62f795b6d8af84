//! Test fixture: a faulty build of the hello demo's plugin `foo`. It loads and initialises like
//! the good one, so a reload accepts it; only its `greet` fails: it returns an error, or, built
//! with feature `panics`, panics. The hello host's health check (every plugin answers `greet`)
//! or its panic count then rolls a probation back.

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

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "greet" if cfg!(feature = "panics") => panic!("the faulty foo panics in greet"),
        "greet" => Err("the faulty foo cannot greet".into()),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
