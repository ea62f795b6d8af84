//! Test fixture for `tests/tests/faults_abort.rs`: plugin `abort_hooks`, whose code misbehaves
//! in the ways that used to abort the host, each on demand.
//!
//! Hooks misbehave when the environment variable `ABORT_FAULT` says so (read at each hook,
//! so a test chooses the fault for the process that loads the plugin):
//!
//! * `on_load_display`: `on_load` returns an error whose `Display` panics;
//! * `on_load_payload`: `on_load` panics with a payload whose `Drop` panics;
//! * `export_drop`: `export` exports a value whose `Drop` panics;
//! * `data_drop`: `on_init` puts a value whose `Drop` panics in the vault's data bag.
//!
//! Calls misbehave by name: `display_panics`, `error_drop_panics`, `payload_drop_panics`,
//! `value_drop_panics`; `answer` answers `"abort_hooks"`. The live function
//! `live_payload_drop_panics` panics with a payload whose `Drop` panics, and the live type
//! `LiveBomb` panics when dropped.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// Panics when dropped, naming what it was.
pub struct Bomb(pub &'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{} exploded when dropped", self.0);
    }
}

/// A live type whose `Drop` panics.
#[derive(Default)]
pub struct LiveBomb;

impl Drop for LiveBomb {
    fn drop(&mut self) {
        panic!("a LiveBomb exploded when dropped");
    }
}

/// An error whose `Display` panics.
#[derive(Debug)]
struct BadDisplay(&'static str);

impl std::fmt::Display for BadDisplay {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("the Display of the {} error exploded", self.0);
    }
}

impl std::error::Error for BadDisplay {}

/// An error that displays well but panics when dropped.
#[derive(Debug)]
struct BombError {
    what: &'static str,
    _bomb: Bomb,
}

impl std::fmt::Debug for Bomb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bomb({})", self.0)
    }
}

impl std::fmt::Display for BombError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an {} error that explodes when dropped", self.what)
    }
}

impl std::error::Error for BombError {}

fn fault() -> String {
    std::env::var("ABORT_FAULT").unwrap_or_default()
}

/// Panics with a payload whose `Drop` panics.
pub fn live_payload_drop_panics(x: i64) -> i64 {
    if x >= 0 {
        std::panic::panic_any(Bomb("the live function's panic payload"));
    }
    x
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    (fault() == "export_drop").then(|| Export::new(Bomb("the export")))
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    match fault().as_str() {
        "on_load_display" => Err(Box::new(BadDisplay("on_load"))),
        "on_load_payload" => std::panic::panic_any(Bomb("the on_load panic payload")),
        _ => Ok(()),
    }
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    if fault() == "data_drop" {
        vault.set_data("abort.bomb", Bomb("the data bag value"));
    }
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new("abort_hooks".to_string())),
        "display_panics" => Err(Box::new(BadDisplay("invoke_func"))),
        "error_drop_panics" => Err(Box::new(BombError { what: "invoke_func", _bomb: Bomb("the invoke_func error") })),
        "payload_drop_panics" => std::panic::panic_any(Bomb("the invoke_func panic payload")),
        "value_drop_panics" => Ok(Value::new(Bomb("the returned value"))),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
