//! Plugin `jobs` of the livex demo.
//!
//! * `schedule` makes a [`LiveJob`] and hands it to the host as a [`LiveData`] envelope (type
//!   name, this build's version stamp, serialised bytes). The host keeps the envelope in its
//!   own queue, so a job outlives the generation that scheduled it.
//! * `run` decodes an envelope with *this* build's `LiveJob`, whichever build wrote it.
//! * `live_price` is a live function: the host fetches it by name from the generation's vault.
//!
//! `demo/livex/make-v2.sh` edits this file into "v2" (see demo/livex/README.md); undo it with
//! `demo/livex/make-v2.sh --undo`.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LiveData, LoadContext, Value, Vault};
use serde::{Deserialize, Serialize};

hotswap_runtime::plugin!();

/// Which edit of this file is built; make-v2.sh changes it.
const EDITION: &str = "v1";

/// The payload of a job scheduled for later. A live type: it crosses generations only as
/// live data, never as a Rust value (the host cannot even name it).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LiveJob {
    pub id: u64,
    pub text: String,
}

/// Price of `qty` items. A live function: the host calls it through a typed handle.
pub fn live_price(qty: i64) -> i64 {
    qty * 10
}

#[allow(clippy::needless_update)] // fields added later (see make-v2.sh) take their defaults
fn schedule(id: u64, text: String) -> LiveJob {
    LiveJob { id, text, ..Default::default() }
}

fn run(data: &LiveData) -> Result<String, HookError> {
    let job: LiveJob = data.decode()?;
    Ok(format!("{EDITION} code ran {job:?}"))
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

pub fn on_load(ctx: &LoadContext) -> HookResult {
    println!("[jobs] on_load: {EDITION} version {} in generation {}", ctx.version, ctx.generation);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {
    println!("[jobs] on_free: {EDITION}");
}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "schedule" => {
            let job = schedule(args.take::<u64>(0)?, args.take::<String>(1)?);
            Ok(Value::new(LiveData::new(&job)?))
        }
        "run" => Ok(Value::new(run(args.get::<LiveData>(0)?)?)),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
