//! Plugin `ext_stats` of the extension demo: reads the same `RequestClock` as `ext_greeter`,
//! to show that the plugins of one generation share one extension object.

use std::sync::{Arc, Mutex};

use extension_shared::RequestClock;
use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// This generation's vault, kept from `on_init` for `invoke_func`; emptied by `on_free` so
/// the retired generation's vault is dropped.
static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);

/// A line on the clock's rate. Only reads it: counting is `ext_greeter`'s job.
fn report() -> Result<String, HookError> {
    let vault = VAULT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or("ext_stats has no vault (on_init has not run)")?;
    let clock = vault.extension::<RequestClock>()?;
    let age = clock.age().as_secs_f64();
    let rate = if age > 0.0 { clock.requests() as f64 / age } else { 0.0 };
    Ok(format!("clock #{} is {age:.1} s old, {} requests ({rate:.2}/s)", clock.serial(), clock.requests()))
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
    println!("[ext_stats] on_load: version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    let clock = vault.extension::<RequestClock>()?;
    println!("[ext_stats] on_init: generation {} got RequestClock #{}", vault.generation(), clock.serial());
    *VAULT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(vault));
    Ok(())
}

pub fn on_free() {
    VAULT.lock().unwrap_or_else(|e| e.into_inner()).take();
}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "report" => Ok(Value::new(report()?)),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
