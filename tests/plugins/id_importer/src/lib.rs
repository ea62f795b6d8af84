//! Test fixture: plugin `id_importer` imports `id_exporter`'s `fn(&Reading) -> u64` in
//! `on_init` and calls it from `invoke_func("serial", serial)` with a `Reading` of its own (see
//! `tests/identity.rs`).

use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use id_pair_shared::Reading;

hotswap_runtime::plugin!();

/// The exporter's function.
type Imported = fn(&Reading) -> u64;

static IMPORTED: Mutex<Option<Imported>> = Mutex::new(None);

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &["id_exporter"]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    let serial_of = *vault.import::<Imported>("id_exporter")?;
    *IMPORTED.lock().unwrap() = Some(serial_of);
    Ok(())
}

pub fn on_free() {
    IMPORTED.lock().unwrap().take();
}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "serial" => {
            let serial_of = IMPORTED.lock().unwrap().ok_or("on_init has not imported id_exporter")?;
            Ok(Value::new(serial_of(&Reading::new(args.take::<u64>(0)?))))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
