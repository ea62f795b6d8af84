//! Plugin `web`: an ordinary axum `Router` (state, query, JSON, server-sent events, a
//! WebSocket echo, raw `tokio::spawn`, panics), handed to the host with one line of
//! `invoke_func`. Every answer names the build (`v1`/`v2`) and the generation this copy of the
//! library was loaded in (a static: each generation loads its own copy), so the test can tell
//! which code answered.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use shared_axum::AppState;

hotswap_runtime::plugin!();

const BUILD: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

/// A body in the library's read-only data (axum sends it as `Bytes::from_static`).
static BIG: [u8; 256 << 10] = big();

const fn big() -> [u8; 256 << 10] {
    let mut bytes = [0u8; 256 << 10];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    bytes
}

/// The generation this copy of the library was loaded in.
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn me() -> String {
    format!("{BUILD} gen={}", GENERATION.load(Ordering::Relaxed))
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

pub fn on_free() {
    // Long-lived connections of this generation move on (see `ws_drain`).
    REPLACED_FLAG.store(true, Ordering::SeqCst);
    REPLACED.notify_waiters();
}

/// Fired by `on_free`: this generation was replaced and is being freed.
static REPLACED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static REPLACED_FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn replaced() {
    loop {
        let notified = REPLACED.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if REPLACED_FLAG.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        hotswap_axum::ROUTER => hotswap_axum::serve_router(args, router),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}

/// Ordinary axum code.
fn router(state: AppState) -> Router {
    // What `/arm` asked of this generation's next router function (a second `PluginRouter`'s).
    let (ms, panics) = (ROUTER_DELAY_MS.swap(0, Ordering::SeqCst), ROUTER_PANIC.swap(false, Ordering::SeqCst));
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
        let _ = state.events.send(format!("router function slept {ms} ms on {}", me()));
    }
    if panics {
        panic!("router function panicked on purpose ({})", me());
    }
    let bomb = Arc::new(DropBomb);
    Router::new()
        .route("/build", get(|| async { me() }))
        .route("/static", get(|| async { &BIG[..] }))
        .route("/json", get(json))
        .route("/spawn", get(spawn))
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .route("/panic", get(panic_handler))
        .route("/panic-task", get(panic_task))
        .route("/panic-stream", get(panic_stream))
        .route("/panic-first", get(panic_first))
        .route("/items/{id}", get(item))
        .route("/echo", post(echo_json))
        .route("/ws-drain", get(ws_drain))
        .route("/static-name", get(static_name))
        .route("/body-error", get(body_error))
        .route("/arm", get(arm))
        .route("/reason", get(reason))
        .route("/upload", post(upload))
        .route("/sleep", get(sleep))
        // The router's drop drops this closure's `DropBomb`: it panics once `/arm?drop_panic`.
        .route(
            "/bomb",
            get(move || {
                let _held = &bomb;
                std::future::ready(format!("bomb held by {}", me()))
            }),
        )
        .layer(axum::middleware::from_fn(served_by))
        .with_state(state)
}

async fn json(Query(query): Query<HashMap<String, String>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "build": BUILD, "generation": GENERATION.load(Ordering::Relaxed), "query": query }))
}

fn number(query: &HashMap<String, String>, key: &str, default: u64) -> u64 {
    query.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Answers at once; a raw `tokio::spawn` task sleeps `ms` and then reports through the host's
/// channel which code ran it.
async fn spawn(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> String {
    let ms = number(&query, "ms", 100);
    let id = number(&query, "id", 0);
    let started = me();
    let answer = format!("spawned {id} on {started}");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        tracing::info!(id, "task finished");
        let _ = state.events.send(format!("task {id} spawned by {started} finished on {}", me()));
    });
    answer
}

/// `n` events, each waiting for a permit of the host's gate (or `ms` milliseconds when
/// `ungated`), each naming the code that made it.
async fn sse(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let n = number(&query, "n", 10);
    let gated = !query.contains_key("ungated");
    let ms = number(&query, "ms", 10);
    let events = stream::unfold(0u64, move |seq| {
        let gate = Arc::clone(&state.gate);
        async move {
            if seq == n {
                return None;
            }
            if gated {
                gate.acquire().await.expect("gate open").forget();
            } else {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Some((Ok(Event::default().data(format!("{} seq={seq}", me()))), seq + 1))
        }
    });
    Sse::new(events)
}

/// A WebSocket echo; each answer names the code that made it.
async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        match message {
            Message::Text(text) => {
                let answer = format!("{}: {}", me(), text.as_str());
                if socket.send(Message::Text(answer.into())).await.is_err() {
                    return;
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
    }
}

async fn panic_handler() -> String {
    tokio::time::sleep(Duration::from_millis(1)).await;
    panic!("handler panicked on purpose ({})", me());
}

async fn panic_task() -> String {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        panic!("spawned task panicked on purpose ({})", me());
    });
    format!("spawned a panicking task on {}", me())
}

/// Two events, then a panic inside the stream.
async fn panic_stream() -> impl IntoResponse {
    let events = stream::unfold(0u64, |seq| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if seq == 2 {
            panic!("stream panicked on purpose ({})", me());
        }
        Some((Ok::<_, Infallible>(Event::default().data(format!("{} seq={seq}", me()))), seq + 1))
    });
    Sse::new(events)
}

/// A stream that panics when first polled (the host polls it with the response).
async fn panic_first() -> impl IntoResponse {
    Sse::new(stream::poll_fn(|_| -> std::task::Poll<Option<Result<Event, Infallible>>> {
        panic!("stream panicked at once on purpose ({})", me())
    }))
}

/// A tower layer (axum middleware): names the code that answered in a header.
async fn served_by(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert("x-served-by", HeaderValue::from_str(&me()).expect("ascii"));
    response
}

async fn item(Path(id): Path<u64>, Query(query): Query<HashMap<String, String>>) -> Json<serde_json::Value> {
    tracing::info!(id, "item asked");
    log::info!("log record for item {id}");
    Json(serde_json::json!({ "id": id, "q": query.get("q"), "by": me() }))
}

async fn echo_json(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "echo": body, "by": me() }))
}

/// A WebSocket echo that moves its client on when its generation is replaced: after a drain
/// period it closes with code 1012 (service restart) and the reason `reconnect`.
async fn ws_drain(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        let mut replaced = std::pin::pin!(replaced());
        loop {
            tokio::select! {
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let answer = format!("{}: {}", me(), text.as_str());
                        if socket.send(Message::Text(answer.into())).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                () = &mut replaced => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let frame = axum::extract::ws::CloseFrame { code: 1012, reason: "reconnect".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return;
                }
            }
        }
    })
}

/// A header whose name is in the library's read-only data (`HeaderName::from_static`, as
/// tower-http's layers make theirs), with an empty body.
async fn static_name() -> impl IntoResponse {
    ([(HeaderName::from_static("x-static-name"), HeaderValue::from_static("static-value"))], ())
}

/// An error type of the plugin's own: its `Display` is code in the plugin's library.
#[derive(Debug)]
struct PluginError(String);

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin-made error ({})", self.0)
    }
}

impl std::error::Error for PluginError {}

/// One chunk, then the plugin's own error.
async fn body_error() -> axum::body::Body {
    let chunks = [Ok(axum::body::Bytes::from("first")), Err(PluginError(me()))];
    axum::body::Body::from_stream(stream::iter(chunks))
}

/// How long this generation's next router function sleeps (set by `/arm?router_ms=`).
static ROUTER_DELAY_MS: AtomicU64 = AtomicU64::new(0);
/// Whether this generation's next router function panics (`/arm?router_panic`).
static ROUTER_PANIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether dropping this generation's routers panics (`/arm?drop_panic`).
static DROP_PANIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held by a handler of every router: panics when the router is dropped, once armed.
struct DropBomb;

impl Drop for DropBomb {
    fn drop(&mut self) {
        if DROP_PANIC.load(Ordering::SeqCst) {
            panic!("router dropped on purpose ({})", me());
        }
    }
}

/// Arms what the query names in this generation (its statics).
async fn arm(Query(query): Query<HashMap<String, String>>) -> String {
    ROUTER_DELAY_MS.store(number(&query, "router_ms", 0), Ordering::SeqCst);
    ROUTER_PANIC.store(query.contains_key("router_panic"), Ordering::SeqCst);
    DROP_PANIC.store(query.contains_key("drop_panic"), Ordering::SeqCst);
    format!(
        "armed {:?} on {}",
        {
            let mut keys: Vec<_> = query.keys().cloned().collect();
            keys.sort();
            keys
        },
        me()
    )
}

/// A response with a custom reason phrase, from the library's read-only data.
async fn reason() -> Response {
    let mut response = format!("reason from {}", me()).into_response();
    response.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(b"Fine By The Plugin"));
    response
}

/// Sleeps `ms`, then names the code that answered.
async fn sleep(Query(query): Query<HashMap<String, String>>) -> String {
    tokio::time::sleep(Duration::from_millis(number(&query, "ms", 100))).await;
    format!("slept on {}", me())
}

/// Reads the request body frame by frame, checking every byte (byte `i` is `i % 251`): how
/// many bytes and frames came, and which code started and finished reading.
async fn upload(body: axum::body::Body) -> String {
    use http_body_util::BodyExt;
    let started = me();
    let mut body = body;
    let (mut bytes, mut frames, mut whole) = (0usize, 0usize, true);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    whole &= data.iter().enumerate().all(|(i, b)| *b == ((bytes + i) % 251) as u8);
                    bytes += data.len();
                    frames += 1;
                }
            }
            Err(error) => return format!("upload broke after {bytes} bytes: {error}"),
        }
    }
    format!("received {bytes} bytes streamed={} whole={whole} started on {started} finished on {}", frames > 1, me())
}
