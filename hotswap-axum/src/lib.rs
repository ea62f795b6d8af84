//! axum in hot-swappable plugins, on the shared route (guide, section 10: host and plugins
//! link one Rust `dylib` crate re-exporting tokio, axum, hyper, tracing and log, everything
//! built with `-C prefer-dynamic`, so `axum::Router` is one type for both sides).
//!
//! * In the plugin, ordinary axum code builds a `Router` (routes, extractors, `State`, tower
//!   layers, server-sent events, WebSockets, `tokio::spawn`), and one line of `invoke_func`
//!   hands it to the host: `hotswap_axum::ROUTER => hotswap_axum::serve_router(args, router)`.
//! * In the host, `PluginRouter` (feature `host`) is a `tower::Service` to mount in the
//!   host's own `Router` (`fallback_service`, `nest_service`): each request goes to the router
//!   of the generation serving when it starts; the response future, and a response body still
//!   streaming, hold that generation until they are dropped, so a reload never unmaps the code
//!   of a request in flight or of a stream still being sent (a body complete in its first
//!   frame leaves as the host's own copy).
//! * Around every poll of a plugin's future or body the host makes the plugin's
//!   [`PluginScope`] current on the thread: task hooks read it ([`current_scope`]) to tell
//!   which plugin library a task spawned there belongs to (a WebSocket's task is spawned by
//!   axum's code, whose spawn location says nothing of the plugin), and [`log_panics`] names
//!   plugin and generation when plugin code panics.
//!
//! A panic in the plugin's handler, in its body stream or while routing is caught and
//! logged with plugin and generation; the request gets a 500 (or its body ends early) and the
//! host goes on. A panic in a task plugin code spawned is caught by tokio's task harness.
//!
//! The host side, in outline (the compiled and tested version is the host of
//! `tests/shared_axum/host/src/main.rs`, which `tests/tests/shared_axum.rs` drives; a doc test
//! here cannot build it, since this crate leaves axum's `tokio` feature, and so `axum::serve`,
//! to the host):
//!
//! ```text
//! let app = axum::Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .fallback_service(hotswap_axum::PluginRouter::with_state(manager, "web", state));
//! axum::serve(listener, app).await?;
//! ```

#![warn(missing_docs, missing_debug_implementations)]

#[cfg(feature = "host")]
mod body;
#[cfg(feature = "host")]
mod detach;
#[cfg(feature = "host")]
mod making;
mod plugin;
#[cfg(feature = "host")]
mod response;
mod scope;
#[cfg(feature = "host")]
mod service;

#[cfg(feature = "host")]
pub use body::{BodyFailed, BodyPanicked};
pub use plugin::{ROUTER, serve_router};
#[cfg(feature = "host")]
pub use response::ResponseFuture;
pub use scope::{PluginScope, ScopeGuard, current_scope, log_panics, replace_scope};
#[cfg(feature = "host")]
pub use service::{PluginRouter, RouterError};

/// The text of a panic payload (`&str` or `String`, as `panic!` makes them).
#[cfg(feature = "host")]
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string());
    // A hostile payload's drop may panic too: leaked rather than unwound into the host.
    if let Err(nested) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(nested);
    }
    message
}
