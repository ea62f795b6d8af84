//! Version 2 of the `accounts` test plugin: `LiveAccount { id, holder, balance_cents }`
//! (`name` renamed, the balance in cents), with its migrations both ways: up from version 1's
//! shape, and down to it (the fields version 1 reads, written beside version 2's own).

use std::sync::Arc;

use hotswap_runtime::live::{LiveMigrate, crate_version};
use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

hotswap_runtime::plugin!();

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveAccount {
    pub id: u32,
    pub holder: String,
    pub balance_cents: u64,
}

impl LiveMigrate for LiveAccount {
    /// Up from version 1: `name` is the holder, `balance` units are cents × 100. When the
    /// envelope still holds version 2's cents from before a rollback and version 1 left the
    /// balance as it was, the cents are kept (nothing silently rounded away).
    fn migrate(from_version: &str, mut value: Json) -> Result<Json, String> {
        if !crate_version(from_version).starts_with("1.") {
            return Ok(value);
        }
        let units = value["balance"].as_u64().ok_or("version 1 wrote no `balance`")?;
        let kept = value["balance_cents"].as_u64().filter(|cents| cents / 100 == units);
        value["balance_cents"] = json!(kept.unwrap_or(units * 100));
        value["holder"] = value["name"].clone();
        Ok(value)
    }

    /// Down to version 1: `name` and `balance` in whole units.
    fn migrate_down(value: &Json) -> Result<Map<String, Json>, String> {
        let cents = value["balance_cents"].as_u64().ok_or("no `balance_cents`")?;
        Ok(Map::from_iter([("name".to_string(), value["holder"].clone()), ("balance".to_string(), json!(cents / 100))]))
    }
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
        "open" => {
            let account = LiveAccount { id: args.take(0)?, holder: args.take(1)?, balance_cents: args.take(2)? };
            Ok(Value::new(LiveData::new(&account)?))
        }
        "show" => {
            let account: LiveAccount = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v2: {} {} {}", account.id, account.holder, account.balance_cents)))
        }
        "deposit_cents" => {
            let mut data = args.take::<LiveData>(0)?;
            let mut account: LiveAccount = data.decode()?;
            account.balance_cents += args.take::<u64>(1)?;
            data.update(&account)?;
            Ok(Value::new(data))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
