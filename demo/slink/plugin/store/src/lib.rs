//! slink demo plugin `slink_store`: exports its price list as a function, and offers a live
//! function and a live type. The same source builds as a loadable library and as a crate
//! linked into the host.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};

hotswap_runtime::plugin!();

/// Price of `items` items, in cents. Exported to the shop.
pub fn price(items: u64) -> u64 {
    items * 250
}

/// 10% off from 1000 cents.
pub fn live_discount(total: u64) -> u64 {
    if total >= 1000 { total - total / 10 } else { total }
}

/// What a checkout produced.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LiveReceipt {
    pub items: u64,
    pub total: u64,
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    Some(Export::new(price as fn(u64) -> u64))
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    println!("[slink_store] on_load in generation {}", ctx.generation);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    println!("[slink_store] on_init");
    Ok(())
}

pub fn on_free() {
    println!("[slink_store] on_free");
}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "describe" => Ok(Value::new(format!("store: 4 items cost {}", price(4)))),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
