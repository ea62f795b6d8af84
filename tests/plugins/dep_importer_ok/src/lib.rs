//! Test fixture: plugin `dep_importer`, which imports `dep_exporter`'s `fn(u32) -> u32` in
//! `on_init` and calls it from `invoke_func("call")`.

use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// The exporter's function.
type Imported = fn(u32) -> u32;

static IMPORTED: Mutex<Option<Imported>> = Mutex::new(None);

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &["dep_exporter"]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    let scramble = *vault.import::<Imported>("dep_exporter")?;
    *IMPORTED.lock().unwrap() = Some(scramble);
    Ok(())
}

pub fn on_free() {
    IMPORTED.lock().unwrap().take();
}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "call" => {
            let scramble = IMPORTED.lock().unwrap().ok_or("on_init has not imported dep_exporter")?;
            Ok(Value::new(scramble(args.take::<u32>(0)?)))
        }
        "variant" => Ok(Value::new("ok".to_string())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
