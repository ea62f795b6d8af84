//! Version 4 of the `jobs` test plugin: an incompatible change to `LiveItem`, whose `id` is
//! now text. Envelopes written by v1 to v3 must be refused with both versions named, and kept.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};

hotswap_runtime::plugin!();

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveItem {
    pub id: String,
    pub name: String,
    pub priority: u8,
    pub note: String,
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

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "item_show" => {
            let item: LiveItem = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v4: {} {} {} {:?}", item.id, item.name, item.priority, item.note)))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
