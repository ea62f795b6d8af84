//! Test fixture: a build of plugin `greeter` whose `on_load` loops for as long as a marker file
//! exists: the file named by env `CTL_STUCK_MARKER`, else `ctl_stuck.marker` in the folder the
//! library was loaded from. A test makes a reload hang by creating the marker, and lets it go
//! by removing it; `<marker>.entered` (holding the generation number) says a load is stuck.
//! Were it ever published, `answer` would say so.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[]
}

fn marker(ctx: &LoadContext) -> PathBuf {
    match std::env::var_os("CTL_STUCK_MARKER") {
        Some(path) => PathBuf::from(path),
        None => ctx.file.with_file_name("ctl_stuck.marker"),
    }
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    let marker = marker(ctx);
    if marker.exists() {
        // Tells the test that a load is now stuck here.
        let mut entered = marker.clone().into_os_string();
        entered.push(".entered");
        std::fs::write(entered, ctx.generation.to_string())?;
    }
    while marker.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new("ctl_stuck".to_string())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
