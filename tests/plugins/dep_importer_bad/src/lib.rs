//! Test fixture: plugin `dep_importer` again, but its `on_init` asks for `dep_exporter`'s
//! export as a `String`, which it is not, and returns the vault's error with `?`.

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
    &["dep_exporter"]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    let text = vault.import::<String>("dep_exporter")?;
    Err(format!("the import of the wrong type succeeded: {text:?}").into())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "variant" => Ok(Value::new("bad".to_string())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
