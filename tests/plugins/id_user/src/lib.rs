//! Test fixture: plugin `id_user` reads the host's extension, an `id_shared::Clock`, whose serial
//! lives in a nested `id_shared::Meta` (see `tests/identity.rs`).

use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use id_shared::Clock;

hotswap_runtime::plugin!();

static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);

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
    *VAULT.lock().unwrap() = Some(Arc::clone(vault));
    Ok(())
}

pub fn on_free() {
    VAULT.lock().unwrap().take();
}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    let vault = VAULT.lock().unwrap().clone().ok_or("on_init has not run")?;
    let clock = vault.extension::<Clock>()?;
    match name {
        // The serial, read through the nested `Meta`.
        "serial" => Ok(Value::new(clock.meta.serial)),
        "count" => Ok(Value::new(clock.count_request())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
