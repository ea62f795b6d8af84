//! Plugin `svc_greeting` of the service demo: serves `GET /hello` with an async handler that
//! awaits `tokio::time::sleep` on the host's runtime, and exports the `Greeting` that
//! `svc_shop` imports.
//!
//! Edit `WORD` below, run `demo/service/reload.sh`, and the next request is greeted by the
//! new code (and `svc_shop`, which imports this plugin, is reloaded with it). Requests in
//! flight finish on the old code.

use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use service_shared::{Greeting, Request};

pub mod handlers;

hotswap_runtime::plugin!();

#[cfg(not(feature = "v2"))]
const WORD: &str = "Hello";
#[cfg(feature = "v2")]
const WORD: &str = "Howdy";

/// The version stamp from `on_load` and the generation from `on_init`. Each generation loads
/// its own copy of this library, so each has its own.
static CTX: Mutex<Option<handlers::Ctx>> = Mutex::new(None);

fn ctx() -> Result<handlers::Ctx, HookError> {
    CTX.lock().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(|| "svc_greeting is not initialised".into())
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    Some(Export::new(Greeting { word: WORD.to_string() }))
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    let loaded = handlers::Ctx { word: WORD, version: ctx.version.clone(), generation: ctx.generation };
    *CTX.lock().unwrap_or_else(|e| e.into_inner()) = Some(loaded);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {
    CTX.lock().unwrap_or_else(|e| e.into_inner()).take();
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "hello" => {
            let ctx = ctx()?;
            hotswap_tokio::serve(args, move |request: Request| handlers::hello(ctx, request))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
