//! Plugin `bar` of the hello demo: does a little arithmetic, and counts its calls.
//!
//! Edit only `foo` and run `demo/hello/reload.sh`: bar's library comes out byte-identical, so
//! the host keeps this instance (`bar … (unchanged)`), runs none of its hooks, and its count
//! goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// Calls served by this instance of the library (kept across reloads that leave bar unchanged).
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The transformation the host shows. Change it and reload.
fn compute(tick: u64) -> u64 {
    tick * 2
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

pub fn on_load(ctx: &LoadContext) -> HookResult {
    println!("[bar] on_load: version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "greet" => {
            let tick = *args.get::<u64>(1)?;
            let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
            Ok(Value::new(format!("bar computes {tick} * 2 = {} (bar call #{n})", compute(tick))))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
