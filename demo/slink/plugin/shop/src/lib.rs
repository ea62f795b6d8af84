//! slink demo plugin `slink_shop`: imports the store's prices and counts checkouts in the
//! host's extension. `checkout` is a good place for a breakpoint (see ../../README.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// The vault of the generation this plugin was initialised in.
static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);

/// Checks out a basket: prices it with the store's export and counts it in the host's
/// extension.
#[inline(never)]
pub fn checkout(vault: &Vault, items: u64) -> Result<String, HookError> {
    let price = vault.import::<fn(u64) -> u64>("slink_store")?;
    let count = vault.extension::<AtomicU64>()?.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(format!("{items} items cost {} (checkout #{count} of generation {})", price(items), vault.generation()))
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &["slink_store"]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    println!("[slink_shop] on_load in generation {}", ctx.generation);
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    vault.import::<fn(u64) -> u64>("slink_store")?;
    *VAULT.lock().unwrap() = Some(Arc::clone(vault));
    println!("[slink_shop] on_init");
    Ok(())
}

pub fn on_free() {
    VAULT.lock().unwrap().take();
    println!("[slink_shop] on_free");
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    let vault = VAULT.lock().unwrap().clone().ok_or("not initialised")?;
    match name {
        "checkout" => Ok(Value::new(checkout(&vault, *args.get::<u64>(0)?)?)),
        "describe" => Ok(Value::new(format!("shop: sells through {}", "slink_store"))),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
