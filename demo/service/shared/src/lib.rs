//! One compiled copy of tokio, axum, hyper, tracing and log for the service demo's host and
//! plugins (one runtime, one `axum::Router` type, one log dispatcher), and the host-owned
//! state every plugin router takes ([`AppState`]). Host and plugins depend on this crate and
//! keep writing `axum::…`, `tokio::…`: with `-C prefer-dynamic`, rustc links those crates from
//! this dylib.

#![warn(missing_docs, missing_debug_implementations)]

pub use axum;
pub use futures_util;
pub use http_body_util;
pub use hyper;
pub use hyper_util;
pub use libc;
pub use log;
pub use serde_json;
pub use tokio;
pub use tracing;
pub use tracing_subscriber;

mod backend;

pub use backend::Backend;

use std::sync::Arc;

/// The host's state, handed to every generation's router (`PluginRouter::with_state`) and
/// reaching the handlers through axum's `State`: one type for both sides, since it is compiled
/// once, here.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The host's price backend; the same one for every generation.
    pub backend: Arc<Backend>,
}
