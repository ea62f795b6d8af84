//! Plugin `trine_store` of the trine demo: the shop's shelf, exported to `trine_logic` and
//! `trine_front`, which import it.
//!
//! Change an item or a price in `ITEMS`, run `demo/trine/reload.sh`, and both importers show
//! the change: a reload rebuilds every plugin's vault, so importers always see the export of
//! the same generation as themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// What this plugin exports: each item on the shelf with its price in cents.
///
/// A std type, so the importers can name it without a crate shared with this one: the vault
/// matches an import by `TypeId`, and std's types have the same one in every library built by
/// the same rustc (which the ABI fingerprint already guarantees). Importers repeat the alias.
pub type Shelf = Vec<(String, u64)>;

/// The shelf. Edit it and reload.
const ITEMS: &[(&str, u64)] = &[("apple", 40), ("bread", 250), ("coffee", 320)];

/// The generation this copy of the library was loaded into, for the hooks' messages.
static GENERATION: AtomicU64 = AtomicU64::new(0);

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    let shelf: Shelf = ITEMS.iter().map(|&(item, cents)| (item.to_string(), cents)).collect();
    Some(Export::new(shelf))
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    GENERATION.store(ctx.generation, Ordering::Relaxed);
    println!("[trine_store] on_load: version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    println!("[trine_store] on_init: {} items on the shelf in generation {}", ITEMS.len(), vault.generation());
    Ok(())
}

pub fn on_free() {
    println!("[trine_store] on_free: generation {}", GENERATION.load(Ordering::Relaxed));
}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    Err(format!("unknown function `{name}` (trine_store only exports its shelf)").into())
}
