//! Plugin `svc_greeting` of the service demo: an ordinary axum `Router`, handed to the host with
//! one line of `invoke_func`. Every answer names the build (`WORD`: "Hello", or "Howdy" with
//! feature `v2`) and the generation this copy of the library was loaded in (a static: each
//! generation loads its own copy), so a client can tell which code answered.
//!
//! Edit `WORD` below, run `demo/service/reload.sh`, and the next request is greeted by the new
//! code; requests, event streams and WebSockets already open finish on the old code.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, Sse};
use axum::response::{Json, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use service_shared::AppState;

hotswap_runtime::plugin!();

#[cfg(not(feature = "v2"))]
const WORD: &str = "Hello";
#[cfg(feature = "v2")]
const WORD: &str = "Howdy";

/// The generation this copy of the library was loaded in.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Which code answers: the build's word and the generation, e.g. `Hello gen=3`.
fn me() -> String {
    format!("{WORD} gen={}", GENERATION.load(Ordering::Relaxed))
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

/// Ordinary axum code.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/json", get(json))
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .route("/spawn", get(spawn))
        .with_state(state)
}

type Params = Query<HashMap<String, String>>;

fn number(query: &HashMap<String, String>, key: &str, default: u64) -> u64 {
    query.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `GET /hello?name=N&delay_ms=D`: waits `D` ms on the host's timer, then greets.
async fn hello(Query(query): Params) -> String {
    let delay = number(&query, "delay_ms", 0);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let name = query.get("name").map_or("world", String::as_str);
    tracing::debug!(name, delay, "greeting");
    format!("{WORD}, {name}! [{}]\n", me())
}

/// `GET /json?name=N`: the same greeting as JSON.
async fn json(Query(query): Params) -> Json<serde_json::Value> {
    let name = query.get("name").map_or("world", String::as_str);
    Json(serde_json::json!({
        "greeting": format!("{WORD}, {name}!"),
        "word": WORD,
        "generation": GENERATION.load(Ordering::Relaxed),
    }))
}

/// `GET /sse?n=N&ms=M`: `N` server-sent events `M` ms apart, each naming its sequence number
/// and the code that made it (`seq=0 Hello gen=1`).
async fn sse(Query(query): Params) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let n = number(&query, "n", 10);
    let ms = number(&query, "ms", 100);
    let events = stream::unfold(0u64, move |seq| async move {
        if seq == n {
            return None;
        }
        if seq > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Some((Ok(Event::default().data(format!("seq={seq} {}", me()))), seq + 1))
    });
    Sse::new(events)
}

/// `GET /ws`: a WebSocket echo; each answer names the code that made it (`Hello gen=1: hi`).
async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    // A close from the client is answered by the next `recv`, which then ends the loop.
    while let Some(Ok(message)) = socket.recv().await {
        if let Message::Text(text) = message {
            let answer = format!("{}: {}", me(), text.as_str());
            if socket.send(Message::Text(answer.into())).await.is_err() {
                return;
            }
        }
    }
}

/// `GET /spawn?ms=M`: answers at once; background work started with a raw `tokio::spawn`
/// sleeps `M` ms and logs that it finished, on the code that started it.
async fn spawn(Query(query): Params) -> String {
    let ms = number(&query, "ms", 1000);
    let started = me();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        tracing::info!(started = %started, finished = %me(), "background work done");
    });
    format!("background work of {ms} ms started on {}\n", me())
}
