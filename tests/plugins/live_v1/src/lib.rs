//! Version 1 of the `jobs` test plugin: live functions at the root and in a nested module,
//! and a live type carried as live data.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};

hotswap_runtime::plugin!();

pub mod math;

/// The payload of a job scheduled for later.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LiveJob {
    pub id: u64,
    pub text: String,
    pub legacy: bool,
}

/// Schema evolution (issue 13): v2 drops `note`, v3 adds it back, v4 makes `id` a `String`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveItem {
    pub id: u32,
    pub name: String,
    pub priority: u8,
    pub note: String,
}

/// Not serialisable and not `Default`: registered, but cannot be live data.
pub struct LiveHandle(pub std::time::Instant);

/// Live although upper case: the prefix is compared case-insensitively.
#[allow(non_snake_case)]
pub fn LIVE_twice(x: i64) -> i64 {
    x * 2
}

pub fn live_describe(text: &str) -> String {
    format!("v1:{text}")
}

/// Returns a borrow of its argument: the generated wrapper must keep the lifetime.
pub fn live_first_word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or("")
}

/// Panics on a negative input: the host must see a panic it can catch, not an abort.
pub fn live_checked(x: i64) -> i64 {
    assert!(x >= 0, "negative input {x}");
    x
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
            let job = LiveJob { id: args.take::<u64>(0)?, text: args.take::<String>(1)?, legacy: true };
            Ok(Value::new(LiveData::new(&job)?))
        }
        "run" => {
            let job: LiveJob = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v1 ran job {}: {}", job.id, job.text)))
        }
        "item_new" => {
            let item = LiveItem {
                id: args.take::<u32>(0)?,
                name: args.take::<String>(1)?,
                priority: args.take::<u8>(2)?,
                note: args.take::<String>(3)?,
            };
            Ok(Value::new(LiveData::new(&item)?))
        }
        "item_show" => {
            let item: LiveItem = args.get::<LiveData>(0)?.decode()?;
            Ok(Value::new(format!("v1: {} {} {} {:?}", item.id, item.name, item.priority, item.note)))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
