//! The handlers themselves: plain async fns. The service benchmark compiles this same file
//! into a host to measure the cost of the plugin boundary.

use std::sync::Arc;
use std::time::Duration;

use service_shared::{Backend, Request, Response};

/// What the handlers need from their plugin besides the request.
#[derive(Clone)]
pub struct Ctx {
    /// The word of the `Greeting` imported from `svc_greeting` in this generation.
    pub word: String,
    /// The plugin's version stamp.
    pub version: String,
    /// The host's backend, from the generation's extension.
    pub backend: Arc<Backend>,
}

/// `GET /quote?item=I&qty=Q`: asks the host's backend for the price of `I` over loopback TCP
/// (a `tokio::net::TcpStream`, driven by the host's reactor) and quotes `Q` of them.
pub async fn quote(ctx: Ctx, request: Request) -> Response {
    let item = request.param("item").unwrap_or("apple");
    let Ok(qty) = request.param("qty").unwrap_or("1").parse::<u64>() else {
        return Response::error(400, "qty must be a whole number\n");
    };
    match ctx.backend.price(item).await {
        Ok(Some(cents)) => Response::ok(format!(
            "{}! {qty} x {item} = {} cents [svc_shop {}; connection {} request {}]\n",
            ctx.word,
            qty.saturating_mul(cents),
            ctx.version,
            request.connection,
            request.request_on_connection
        )),
        Ok(None) => Response::error(404, format!("no price for {item}\n")),
        Err(error) => Response::error(502, format!("backend: {error}\n")),
    }
}

/// `GET /fail`: awaits the timer, then panics. The panic is caught in the plugin and the host
/// answers 500 for this request only.
pub async fn fail(request: Request) -> Response {
    tokio::time::sleep(Duration::from_millis(1)).await;
    panic!("svc_shop fails on purpose (connection {} request {})", request.connection, request.request_on_connection);
}
