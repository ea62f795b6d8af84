//! The handler itself: a plain async fn. The host's `service-bench` compiles this same file
//! into the host to measure the cost of the plugin boundary.

use std::time::Duration;

use service_shared::{Request, Response};

/// What the handler needs from its plugin besides the request.
#[derive(Clone)]
pub struct Ctx {
    /// The greeting word of this build.
    pub word: &'static str,
    /// The plugin's version stamp.
    pub version: String,
    /// The generation it serves in.
    pub generation: u64,
}

/// `GET /hello?name=N&delay_ms=D`: waits `D` ms (default 0) with `tokio::time::sleep`, then
/// greets `N`. The sleep needs the host's timer: it works only because the future is polled
/// with the host's runtime entered in this library's copy of tokio.
pub async fn hello(ctx: Ctx, request: Request) -> Response {
    let delay = request.param("delay_ms").and_then(|d| d.parse().ok()).unwrap_or(0_u64).min(10_000);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let name = request.param("name").unwrap_or("world");
    Response::ok(format!(
        "{}, {name}! [svc_greeting {} generation {}; connection {} request {}]\n",
        ctx.word, ctx.version, ctx.generation, request.connection, request.request_on_connection
    ))
}
