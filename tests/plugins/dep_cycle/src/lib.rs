//! Test fixture: the import cycle dep_cyc_a -> dep_cyc_b -> dep_cyc_c -> dep_cyc_a, one crate
//! whose features choose the link (none: `dep_cyc_a`; `b`; `c`), which the runtime must refuse before `on_load`. `on_load` appends a line to
//! `hooks.log` in the plugin folder, so a test can see that it never ran; `on_init` fails.

use std::io::Write;
use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

#[cfg(feature = "c")]
const NAME: &str = "dep_cyc_c";
#[cfg(feature = "c")]
const NEXT: &str = "dep_cyc_a";
#[cfg(all(feature = "b", not(feature = "c")))]
const NAME: &str = "dep_cyc_b";
#[cfg(all(feature = "b", not(feature = "c")))]
const NEXT: &str = "dep_cyc_c";
#[cfg(not(any(feature = "b", feature = "c")))]
const NAME: &str = "dep_cyc_a";
#[cfg(not(any(feature = "b", feature = "c")))]
const NEXT: &str = "dep_cyc_b";

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[NEXT]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    let path = ctx.file.parent().ok_or("the plugin file has no folder")?.join("hooks.log");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(format!("g{} {NAME}:on_load\n", ctx.generation).as_bytes())?;
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Err(format!("{NAME}: on_init must never run for a plugin in an import cycle").into())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "name" => Ok(Value::new(NAME.to_string())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
