//! Plugin `ext_greeter` of the extension demo: serves the host's requests and counts each one
//! on the generation's `RequestClock`, the extension the host puts in every vault.
//!
//! Edit the greeting in `handle` below, run `demo/extension/reload.sh`, and watch the host:
//! the new code gets a fresh clock (its count starts again at 1) while the host's own total
//! keeps going.

use std::sync::{Arc, Mutex};

use extension_shared::RequestClock;
use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// This generation's vault, kept from `on_init` so that `invoke_func` can reach the clock.
/// Each generation loads its own copy of the library, so each has its own `VAULT`; `on_free`
/// empties it so the retired generation's vault (and clock) is dropped.
static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);

/// The vault saved by `on_init`, or an error if the hook has not run (or `on_free` has).
fn vault() -> Result<Arc<Vault>, HookError> {
    let saved = VAULT.lock().unwrap_or_else(|e| e.into_inner());
    saved.clone().ok_or_else(|| "ext_greeter has no vault (on_init has not run)".into())
}

/// Answers request `tick` of the host, counting it on the clock.
fn handle(tick: u64) -> Result<String, HookError> {
    let vault = vault()?;
    let clock = vault.extension::<RequestClock>()?;
    let n = clock.count_request();
    Ok(format!("Hello #{tick}! (request {n} on clock #{})", clock.serial()))
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
    println!("[ext_greeter] on_load: version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    // Checked here, not only per call: a host whose `RequestClock` is another type (see the
    // `extension-shared` docs) makes the reload fail with this error instead of every call.
    let clock = vault.extension::<RequestClock>()?;
    println!("[ext_greeter] on_init: generation {} got RequestClock #{}", vault.generation(), clock.serial());
    *VAULT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(vault));
    Ok(())
}

pub fn on_free() {
    let vault = VAULT.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(clock) = vault.as_ref().and_then(|v| v.extension::<RequestClock>().ok()) {
        println!("[ext_greeter] on_free: clock #{} served {} requests", clock.serial(), clock.requests());
    }
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "handle" => Ok(Value::new(handle(*args.get::<u64>(0)?)?)),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
