//! Test fixture for `tests/tests/panics_cross.rs`: plugin `caller`, plugin code that calls
//! live functions through the vault.
//!
//! It keeps the vault its `on_init` was given. Calls:
//! * `call_boom(name)`: calls live function `name` (`fn(i64) -> i64`: the peer's `live_boom`
//!   or its own `live_own_boom`) with -1 inside its own `catch_unwind`, and returns
//!   `"caught: <message>"` or `"returned <n>"`;
//! * `keep_value`: calls the peer's `live_value(41)` and keeps the `Value` in a static;
//!   `read_kept` returns `"<type name> <value>"` of it; `drop_kept` drops it;
//! * `forget_vault`: drops the vault it kept (possibly the last reference to it, so the
//!   host's extension is dropped under this plugin's frames).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);
static KEPT: Mutex<Option<Value>> = Mutex::new(None);

/// Panics on a negative input; called by this plugin through the vault.
pub fn live_own_boom(x: i64) -> i64 {
    assert!(x >= 0, "caller's own live_own_boom refuses {x}");
    x
}

fn vault() -> Result<Arc<Vault>, HookError> {
    Ok(VAULT.lock().unwrap().clone().ok_or("the vault was forgotten")?)
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic with another payload".to_string())
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

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    let old = VAULT.lock().unwrap().replace(Arc::clone(vault));
    drop(old);
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "call_boom" => {
            let boom = vault()?.live_func::<fn(i64) -> i64>(&args.take::<String>(0)?)?;
            let outcome = catch_unwind(AssertUnwindSafe(|| boom.call((-1,))));
            Ok(Value::new(match outcome {
                Ok(n) => format!("returned {n}"),
                Err(payload) => format!("caught: {}", message(payload.as_ref())),
            }))
        }
        "keep_value" => {
            let make = vault()?.live_func::<fn(i64) -> Value>("live_value")?;
            *KEPT.lock().unwrap() = Some(make.call((41,)));
            Ok(Value::unit())
        }
        "read_kept" => {
            let kept = KEPT.lock().unwrap();
            let value = kept.as_ref().ok_or("nothing kept")?;
            Ok(Value::new(format!("{} {}", value.type_name(), value.downcast_ref::<i64>()?)))
        }
        "drop_kept" => {
            let kept = KEPT.lock().unwrap().take();
            drop(kept);
            Ok(Value::unit())
        }
        "forget_vault" => {
            let vault = VAULT.lock().unwrap().take();
            drop(vault);
            Ok(Value::unit())
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
