//! Test fixture for `tests/tests/panics_cross.rs`: plugin `peer`.
//!
//! * `LiveBadDefault` panics in its `Default`, `LiveBadDecode` in its `Deserialize` (the
//!   vault calls both directly: issue 22, section 2);
//! * `live_boom` panics on a negative input (called from another plugin: section 3);
//! * `live_value` returns a `Value` holding an `i64` (kept by another plugin across this
//!   plugin's reloads: section 4).
//!
//! Calls: `answer` returns the version (`"v1"`, or `"v2"` built with feature `v2`);
//! `bad_data` returns live data of `LiveBadDecode`.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Deserializer, Serialize};

hotswap_runtime::plugin!();

const VERSION: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

/// A live type whose `Default` panics.
pub struct LiveBadDefault {
    pub n: u8,
}

impl Default for LiveBadDefault {
    fn default() -> Self {
        panic!("LiveBadDefault refuses to be made");
    }
}

/// A live type that serialises but panics when deserialised.
#[derive(Serialize)]
pub struct LiveBadDecode {
    pub n: u8,
}

impl<'de> Deserialize<'de> for LiveBadDecode {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("LiveBadDecode refuses to be read");
    }
}

/// Panics on a negative input.
pub fn live_boom(x: i64) -> i64 {
    assert!(x >= 0, "peer's live_boom refuses {x}");
    x
}

/// A `Value` made by this plugin: its type information lives in this library.
pub fn live_value(x: i64) -> Value {
    Value::new(x)
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

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new(VERSION.to_string())),
        "bad_data" => Ok(Value::new(LiveData::new(&LiveBadDecode { n: 1 })?)),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
