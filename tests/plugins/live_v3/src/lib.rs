//! Version 3 of the `jobs` test plugin: an incompatible change, `LiveJob::id` is now text;
//! `LiveItem::note`, which v2 removed, is back.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};

hotswap_runtime::plugin!();

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LiveJob {
    pub id: String,
    pub text: String,
}

/// `note` is back (no `#[serde(default)]`: it must come from the envelope).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveItem {
    pub id: u32,
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
        "run" => {
            let job: LiveJob = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v3 ran job {}", job.id)))
        }
        "item_show" => {
            let item: LiveItem = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v3: {} {} {} {:?}", item.id, item.name, item.priority, item.note)))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
