//! Plugin `trine_front` of the trine demo: takes the host's orders. Imports `trine_store`'s
//! shelf for the prices and `trine_logic`'s rule for the totals, so the manager loads it last
//! and frees it first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// `trine_store`'s export (see there); repeated because no crate is shared.
type Shelf = Vec<(String, u64)>;

/// `trine_logic`'s export (see there).
type PriceRule = fn(u64, u64) -> u64;

/// This generation's vault, kept from `on_init` so that `invoke_func` can reach the imports.
/// Each generation loads its own copy of the library, so each has its own `VAULT`; `on_free`
/// empties it so the retired generation's vault, and the exports in it, are dropped.
static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);

/// The generation this copy of the library was loaded into, for the hooks' messages.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// `cents` as euros, e.g. `3.20`.
fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Order number `tick`: an item from the store's shelf (in turn), 1 to 4 of it, priced by
/// the logic's rule.
fn serve(tick: u64) -> Result<String, HookError> {
    let vault = VAULT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or("trine_front has no vault (on_init has not run)")?;
    let shelf = vault.import::<Shelf>("trine_store")?;
    let rule = *vault.import::<PriceRule>("trine_logic")?;
    let (item, unit) = shelf.get((tick % shelf.len().max(1) as u64) as usize).ok_or("trine_store's shelf is empty")?;
    let quantity = tick % 4 + 1;
    Ok(format!("order {tick}: {quantity} x {item} at {} = {}", money(*unit), money(rule(*unit, quantity))))
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &["trine_store", "trine_logic"]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    GENERATION.store(ctx.generation, Ordering::Relaxed);
    println!("[trine_front] on_load: version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    // Both imports are checked here so that a wrong export type fails the reload, not each call.
    let shelf = vault.import::<Shelf>("trine_store")?;
    vault.import::<PriceRule>("trine_logic")?;
    let items: Vec<&str> = shelf.iter().map(|(item, _)| item.as_str()).collect();
    println!("[trine_front] on_init: selling {}", items.join(", "));
    *VAULT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(vault));
    Ok(())
}

pub fn on_free() {
    VAULT.lock().unwrap_or_else(|e| e.into_inner()).take();
    println!("[trine_front] on_free: generation {}", GENERATION.load(Ordering::Relaxed));
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "serve" => Ok(Value::new(serve(*args.get::<u64>(0)?)?)),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
