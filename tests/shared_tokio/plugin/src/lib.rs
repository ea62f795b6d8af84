//! Plugin `spawner`: ordinary tokio code, a raw `tokio::spawn` whose task outlives the call
//! (and, in the test, the generation), on the one tokio of the process; `tracing` and `log`
//! events from the call and from the task, for the host's subscriber; a task in a
//! `hotswap_tokio::TaskGroup` that `on_free` cancels.

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

/// This generation's tasks that `on_free` cancels (a static: one group per library).
static TASKS: hotswap_tokio::TaskGroup = hotswap_tokio::TaskGroup::new();

pub fn on_free() {
    let left = TASKS.cancel_and_wait(Duration::from_secs(5));
    tracing::info!(left, "on_free cancelled the task group");
}

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
        // Spawns, in this generation's task group, a task that sleeps `ms` milliseconds and
        // then sends which build ran it; a cancel drops it (and its sender) before that.
        "start_in_group" => {
            let done = args.take::<tokio::sync::oneshot::Sender<String>>(0)?;
            let ms = args.take::<u64>(1)?;
            TASKS.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = done.send(format!("group task of {BUILD} finished"));
            });
            Ok(Value::new(()))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
