//! Plugin `svc_shop` of the service demo: serves `GET /quote` by asking the host's backend
//! over loopback TCP, greeting with the word it imports from `svc_greeting`, and `GET /fail`,
//! which panics (the host answers 500 and keeps serving).

use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use service_shared::{Greeting, Request, ServiceExt};

pub mod handlers;

hotswap_runtime::plugin!();

static VERSION: Mutex<String> = Mutex::new(String::new());
/// Made in `on_init` from the vault: the imported greeting and the host's backend.
static CTX: Mutex<Option<handlers::Ctx>> = Mutex::new(None);

fn ctx() -> Result<handlers::Ctx, HookError> {
    CTX.lock().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(|| "svc_shop is not initialised".into())
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &["svc_greeting"]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    *VERSION.lock().unwrap_or_else(|e| e.into_inner()) = ctx.version.clone();
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    // Both checked here, so a host or plugin built against other types refuses the reload.
    let greeting = vault.import::<Greeting>("svc_greeting")?;
    let ext = vault.extension::<ServiceExt>()?;
    let made = handlers::Ctx {
        word: greeting.word.clone(),
        version: VERSION.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        backend: Arc::clone(&ext.backend),
    };
    *CTX.lock().unwrap_or_else(|e| e.into_inner()) = Some(made);
    Ok(())
}

pub fn on_free() {
    CTX.lock().unwrap_or_else(|e| e.into_inner()).take();
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "quote" => {
            let ctx = ctx()?;
            hotswap_tokio::serve(args, move |request: Request| handlers::quote(ctx, request))
        }
        "fail" => hotswap_tokio::serve(args, handlers::fail),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
