//! Version 2 of the `jobs` test plugin: `live_add` changed, `LiveJob` gained a field with a
//! default and lost `legacy`; `LiveItem` lost `note`.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};

hotswap_runtime::plugin!();

pub mod math {
    pub fn live_add(a: i64, b: i64) -> i64 {
        a + b + 100
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LiveJob {
    pub id: u64,
    pub text: String,
    #[serde(default = "default_priority")]
    pub priority: u8,
}

/// v1's `LiveItem` without `note`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveItem {
    pub id: u32,
    pub name: String,
    pub priority: u8,
}

fn default_priority() -> u8 {
    5
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

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "schedule" => {
            let job = LiveJob { id: args.take::<u64>(0)?, text: args.take::<String>(1)?, priority: 9 };
            Ok(Value::new(LiveData::new(&job)?))
        }
        "run" => {
            let job: LiveJob = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v2 ran job {} (priority {}): {}", job.id, job.priority, job.text.to_uppercase())))
        }
        "item_bump" => {
            // Read, change, write back into the same envelope: `note`, unknown here, stays.
            let mut data = args.take::<LiveData>(0)?;
            let mut item: LiveItem = data.decode()?;
            item.priority += 10;
            data.update(&item)?;
            Ok(Value::new(data))
        }
        "item_show" => {
            let item: LiveItem = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v2: {} {} {}", item.id, item.name, item.priority)))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
