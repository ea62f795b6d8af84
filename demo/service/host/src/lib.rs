//! The service demo's host, as a library: an HTTP/1.1 server (tokio + hyper) on loopback that
//! keeps connection and application state itself and routes requests to handlers. The
//! handlers are plugins ([`PluginHandlers`]); the benchmark also runs them compiled in,
//! through the same [`Handlers`] trait.

mod backend;
mod drain;
mod http;

use std::future::Future;
use std::pin::Pin;

use hotswap_runtime::PluginManager;
use service_shared::{Request, Response};

pub use backend::{BackendServer, PRICES};
pub use drain::Drain;
pub use http::{AppState, serve, serve_until};

/// A route that a handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `GET /hello`: plugin `svc_greeting`, function `hello`.
    Hello,
    /// `GET /quote`: plugin `svc_shop`, function `quote`.
    Quote,
    /// `GET /fail`: plugin `svc_shop`, function `fail` (panics).
    Fail,
}

impl Route {
    /// The route of `path`, if a handler serves it.
    pub fn of(path: &str) -> Option<Route> {
        match path {
            "/hello" => Some(Route::Hello),
            "/quote" => Some(Route::Quote),
            "/fail" => Some(Route::Fail),
            _ => None,
        }
    }

    /// The plugin and function that serve it.
    pub fn target(self) -> (&'static str, &'static str) {
        match self {
            Route::Hello => ("svc_greeting", "hello"),
            Route::Quote => ("svc_shop", "quote"),
            Route::Fail => ("svc_shop", "fail"),
        }
    }
}

/// The future of one handled request.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Whatever answers routed requests.
pub trait Handlers: Send + Sync + 'static {
    /// Answers `request` on `route`.
    fn handle(&self, route: Route, request: Request) -> ResponseFuture;
}

/// Handlers that live in plugins: each request looks up the serving generation once and
/// runs to the end on it (a request in flight during a reload finishes on the old code).
pub struct PluginHandlers {
    manager: PluginManager,
}

impl PluginHandlers {
    /// Handlers served by `manager`'s plugins.
    pub fn new(manager: PluginManager) -> Self {
        PluginHandlers { manager }
    }
}

impl Handlers for PluginHandlers {
    fn handle(&self, route: Route, request: Request) -> ResponseFuture {
        let (name, func) = route.target();
        let plugin = self.manager.find_plugin(name);
        Box::pin(async move {
            let Some(plugin) = plugin else {
                return Response::error(503, format!("plugin {name} is not loaded\n"));
            };
            let call = match hotswap_tokio::call::<Request, Response>(plugin, func, request) {
                Ok(call) => call,
                Err(error) => return Response::error(500, format!("{error}\n")),
            };
            match call.await {
                Ok(response) => response,
                Err(error) => {
                    tracing::warn!(%error, "handler failed");
                    Response::error(500, format!("{error}\n"))
                }
            }
        })
    }
}
