//! Plugin `svc_shop` of the service demo: an axum `Router` (mounted by the host under `/shop`)
//! whose `GET /quote` asks the host-owned price backend, reached through axum's typed `State`
//! (`service_shared::AppState`, given by the host's `PluginRouter::with_state`), and `GET
//! /fail`, which panics (the host answers 500 for that request and keeps serving).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use service_shared::AppState;

hotswap_runtime::plugin!();

/// The generation this copy of the library was loaded in.
static GENERATION: AtomicU64 = AtomicU64::new(0);

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
    GENERATION.store(ctx.generation, Ordering::Relaxed);
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        hotswap_axum::ROUTER => hotswap_axum::serve_router(args, router),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}

fn router(state: AppState) -> Router {
    Router::new().route("/quote", get(quote)).route("/fail", get(fail)).with_state(state)
}

/// `GET /quote?item=I&qty=Q`: asks the host's backend for the price of `I` over loopback TCP
/// and quotes `Q` of them.
async fn quote(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<String, (StatusCode, String)> {
    let item = query.get("item").map_or("apple", String::as_str);
    let qty: u64 = query
        .get("qty")
        .map_or(Ok(1), |q| q.parse())
        .map_err(|_| (StatusCode::BAD_REQUEST, "qty must be a whole number\n".to_string()))?;
    match state.backend.price(item).await {
        Ok(Some(cents)) => Ok(format!(
            "{qty} x {item} = {} cents [svc_shop gen={}]\n",
            qty.saturating_mul(cents),
            GENERATION.load(Ordering::Relaxed)
        )),
        Ok(None) => Err((StatusCode::NOT_FOUND, format!("no price for {item}\n"))),
        Err(error) => {
            tracing::warn!(%error, item, "backend failed");
            Err((StatusCode::BAD_GATEWAY, format!("backend: {error}\n")))
        }
    }
}

/// `GET /fail`: awaits the timer, then panics.
async fn fail() -> String {
    tokio::time::sleep(Duration::from_millis(1)).await;
    panic!("svc_shop fails on purpose (generation {})", GENERATION.load(Ordering::Relaxed));
}
