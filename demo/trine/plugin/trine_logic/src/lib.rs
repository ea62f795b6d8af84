//! Plugin `trine_logic` of the trine demo: the pricing rule. Imports `trine_store`'s shelf to
//! check that it can price every item, and exports the rule to `trine_front`.
//!
//! Because it imports `trine_store`, the manager loads it after the store (`on_load`,
//! `on_init`) and frees it before the store (`on_free`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// `trine_store`'s export (see there); repeated because no crate is shared.
type Shelf = Vec<(String, u64)>;

/// What this plugin exports: the total in cents for a quantity of items at a unit price in
/// cents. A plain function pointer: a std type, so no shared crate is needed, and it points
/// into this library, which stays mapped for as long as the process runs.
pub type PriceRule = fn(u64, u64) -> u64;

/// The rule: from 3 items on, 10 % off. Edit it and reload.
fn total(unit_cents: u64, quantity: u64) -> u64 {
    let gross = unit_cents * quantity;
    if quantity >= 3 { gross - gross / 10 } else { gross }
}

/// `cents` as euros, e.g. `3.20`.
fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The generation this copy of the library was loaded into, for the hooks' messages.
static GENERATION: AtomicU64 = AtomicU64::new(0);

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    Some(Export::new(total as PriceRule))
}

pub fn import() -> &'static [&'static str] {
    &["trine_store"]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    GENERATION.store(ctx.generation, Ordering::Relaxed);
    println!("[trine_logic] on_load: version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

/// Refuses a shelf the rule cannot price (empty, or an item for free), which fails the whole
/// reload while the previous generation keeps serving.
pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    let shelf = vault.import::<Shelf>("trine_store")?;
    if let Some((item, _)) = shelf.iter().find(|(_, cents)| *cents == 0) {
        return Err(format!("trine_store sells `{item}` for nothing").into());
    }
    let (cheapest, cents) = shelf.iter().min_by_key(|(_, cents)| *cents).ok_or("trine_store's shelf is empty")?;
    println!(
        "[trine_logic] on_init: can price all {} items from trine_store; cheapest is {cheapest} at {}",
        shelf.len(),
        money(*cents)
    );
    Ok(())
}

pub fn on_free() {
    println!("[trine_logic] on_free: generation {}", GENERATION.load(Ordering::Relaxed));
}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    Err(format!("unknown function `{name}` (trine_logic only exports its rule)").into())
}
