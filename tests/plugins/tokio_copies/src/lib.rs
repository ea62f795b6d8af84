//! Plugin `tokio_copies`: plain async fns served with `hotswap_tokio::serve`, polled by the
//! host's runtime with the runtime entered in this library's copy of tokio. Each answer names
//! the generation this copy of the library was loaded in.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

static GENERATION: AtomicU64 = AtomicU64::new(0);

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
    GENERATION.store(ctx.generation, Ordering::Relaxed);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "sleep" => hotswap_tokio::serve(args, sleep),
        "fail" => hotswap_tokio::serve(args, fail),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}

/// Sleeps `ms` on the host's timer, then names the generation that answered.
async fn sleep(ms: u64) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms on generation {}", GENERATION.load(Ordering::Relaxed))
}

/// Awaits the timer, then panics.
async fn fail(_: ()) -> String {
    tokio::time::sleep(Duration::from_millis(1)).await;
    panic!("tokio_copies fails on purpose (generation {})", GENERATION.load(Ordering::Relaxed));
}
