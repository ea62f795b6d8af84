//! One compiled copy of tokio, axum, hyper, tracing and log (and what the host's test clients
//! use) for the host and every plugin: one runtime, one `axum::Router` type, one dispatcher.
//! Host and plugin depend on this crate and keep writing `axum::…`, `tokio::…`: with
//! `-C prefer-dynamic`, rustc links those crates from this dylib.
pub use axum;
pub use futures_util;
pub use http_body_util;
pub use hyper;
pub use hyper_util;
pub use libc;
pub use log;
pub use serde_json;
pub use tokio;
pub use tokio_tungstenite;
pub use tracing;
pub use tracing_subscriber;

use std::sync::Arc;

/// The host's state, handed to every generation's router (`PluginRouter::with_state`) and
/// reaching the handlers through axum's `State`: one type for both sides, since it is
/// compiled once, here.
#[derive(Clone, Debug)]
pub struct AppState {
    /// What tasks spawned by plugin code report when they finish.
    pub events: tokio::sync::mpsc::UnboundedSender<String>,
    /// Each event of a paced stream waits for one permit: the test decides when events flow.
    pub gate: Arc<tokio::sync::Semaphore>,
}
