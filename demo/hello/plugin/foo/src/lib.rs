//! Plugin `foo` of the hello demo: greets, and counts its calls.
//!
//! Edit `greet` below, run `demo/hello/reload.sh`, and watch the running host change.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// Calls served by this build of the plugin (starts again at 0 after each reload: every
/// generation has its own copy of the library's statics).
static CALLS: AtomicU64 = AtomicU64::new(0);

fn greet(who: &str) -> String {
    let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    format!("Hello, {who}! (foo call #{n})")
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
    println!("[foo] on_load: version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {
    println!("[foo] on_free after {} calls", CALLS.load(Ordering::Relaxed));
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "greet" => Ok(Value::new(greet(args.get::<String>(0)?))),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
