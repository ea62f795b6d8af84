//! Plugin `spawner`: ordinary tokio code, a raw `tokio::spawn` whose task outlives the call
//! (and, in the test, the generation), on the one tokio of the process; `tracing` and `log`
//! events from the call and from the task, for the host's subscriber.

use std::sync::Arc;
use std::time::Duration;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
// Link tokio from the shared dylib.
use shared_tokio as _;

hotswap_runtime::plugin!();

const BUILD: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

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

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "build" => Ok(Value::new(BUILD.to_string())),
        // Spawns a task that sleeps `ms` milliseconds and then sends which build ran it.
        "start" => {
            let done = args.take::<tokio::sync::oneshot::Sender<String>>(0)?;
            let ms = args.take::<u64>(1)?;
            tracing::warn!(answer = 42, "start called");
            log::warn!("log record from start");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                tracing::info!("task finished");
                let _ = done.send(format!("task spawned by {BUILD} finished"));
            });
            Ok(Value::new(()))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
