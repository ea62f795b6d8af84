//! Version 1 of the `accounts` test plugin: `LiveAccount { id, name, balance }`, balance in
//! whole units. Knows nothing of version 2 (it was written first).

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};

hotswap_runtime::plugin!();

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveAccount {
    pub id: u32,
    pub name: String,
    pub balance: u64,
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
            let account = LiveAccount { id: args.take(0)?, name: args.take(1)?, balance: args.take(2)? };
            Ok(Value::new(LiveData::new(&account)?))
        }
        "show" => {
            let account: LiveAccount = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v1: {} {} {}", account.id, account.name, account.balance)))
        }
        "deposit" => {
            let mut data = args.take::<LiveData>(0)?;
            let mut account: LiveAccount = data.decode()?;
            account.balance += args.take::<u64>(1)?;
            data.update(&account)?;
            Ok(Value::new(data))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
