//! The host side: [`PluginRouter`], a `tower::Service` that sends each request to the router
//! of the plugin generation serving when the request starts.

use std::any::Any;
use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hotswap_runtime::{Args, InvokeError, Plugin, PluginManager, TypeMismatch, Value};
use tower_service::Service;

use crate::body::ResponseFuture;
use crate::scope::{PluginScope, ScopeGuard};
use crate::{ROUTER, panic_message};

/// A plugin's `axum::Router`, mounted in the host as a `tower::Service`
/// (`Router::fallback_service`, `Router::nest_service`, `Router::route_service`).
///
/// Each request looks up the plugin in the generation serving when it starts and goes to that
/// generation's router (asked for once per generation through the plugin's
/// [`ROUTER`](crate::ROUTER) function and kept in the generation's vault, so it goes with the
/// generation). The response future and the response body hold that generation: a reload
/// never unmaps the code of a request in flight or of a body still streaming (server-sent
/// events, chunks), and the next request gets the new code. A panic in the plugin's code while
/// routing, in its handler or in its body stream is caught, logged with plugin and generation,
/// and ends that request only (500, or a body cut short); the host and the plugin go on.
///
/// `S` is host-owned state handed to the plugin's router function on each generation (a pool,
/// a cache, a channel), typed: the plugin's function takes an `S` and usually passes it to
/// `Router::with_state`. It must be the same type on both sides, from a crate both link (on
/// the shared route, the shared crate).
#[derive(Clone)]
pub struct PluginRouter<S = ()> {
    manager: PluginManager,
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    plugin: String,
    /// The key of the router in each generation's data bag: one per `PluginRouter` (and its
    /// clones), since each has its own state and spans to build the router with.
    key: String,
    state: S,
    /// Whether the plugin's code runs inside the span `plugin{name, generation}`.
    spans: bool,
    /// Serialises asking a plugin for its router (once per generation).
    building: Mutex<()>,
}

/// One generation's router, in that generation's data bag: the router, then the value it came
/// in, which keeps the plugin's library (the router's handlers' code) mapped until the router
/// is dropped.
struct Slot {
    router: Router,
    scope: Arc<PluginScope>,
    _made: Mutex<Value>,
}

impl<S> std::fmt::Debug for PluginRouter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRouter").field("plugin", &self.shared.plugin).finish_non_exhaustive()
    }
}

impl PluginRouter<()> {
    /// The router of plugin `plugin` of `manager`, without host state (the plugin's router
    /// function takes `()`).
    pub fn new(manager: PluginManager, plugin: impl Into<String>) -> PluginRouter<()> {
        PluginRouter::with_state(manager, plugin, ())
    }
}

impl<S: Clone + Send + Sync + 'static> PluginRouter<S> {
    /// The router of plugin `plugin` of `manager`; each generation's router function gets a
    /// clone of `state`.
    pub fn with_state(manager: PluginManager, plugin: impl Into<String>, state: S) -> PluginRouter<S> {
        let plugin = plugin.into();
        let key = router_key(&plugin);
        PluginRouter { manager, shared: Arc::new(Shared { plugin, key, state, spans: true, building: Mutex::new(()) }) }
    }

    /// Without the `tracing` span `plugin{name, generation}` around the plugin's code (the
    /// plugin's events then carry no plugin name; its panics are still logged with it): saves
    /// entering and leaving the span on every poll (the guide gives measured figures).
    pub fn without_spans(self) -> PluginRouter<S> {
        let shared = &self.shared;
        let (plugin, state) = (shared.plugin.clone(), shared.state.clone());
        let key = router_key(&plugin);
        let shared = Shared { plugin, key, state, spans: false, building: Mutex::new(()) };
        PluginRouter { manager: self.manager, shared: Arc::new(shared) }
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.shared.plugin
    }

    /// The router of `plugin`'s generation, asked for on first use.
    fn slot(&self, plugin: &Plugin) -> Result<Arc<Slot>, Box<RouterError>> {
        let vault = plugin.generation().vault();
        if let Some(slot) = vault.data::<Slot>(&self.shared.key) {
            return Ok(slot);
        }
        let _building = self.shared.building.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = vault.data::<Slot>(&self.shared.key) {
            return Ok(slot);
        }
        let (name, number, library) = (plugin.name(), plugin.generation().number(), plugin.loaded_from());
        let scope = Arc::new(if self.shared.spans {
            PluginScope::new(name, number, library)
        } else {
            PluginScope::without_span(name, number, library)
        });
        let made = {
            let _scope = ScopeGuard::enter(Arc::clone(&scope));
            plugin.invoke_func(ROUTER, Args::new().with(self.shared.state.clone()))
        };
        let (name, generation) = (plugin.name().to_string(), scope.generation);
        let made = made.map_err(|source| Box::new(RouterError::Failed { plugin: name.clone(), generation, source }))?;
        let router = made
            .downcast_ref::<Router>()
            .map_err(|mismatch| Box::new(RouterError::NotARouter { plugin: name, generation, source: mismatch }))?
            .clone();
        tracing::debug!(plugin = plugin.name(), generation, "took the plugin's router for this generation");
        vault.set_data(self.shared.key.clone(), Slot { router, scope, _made: Mutex::new(made) });
        Ok(vault.data::<Slot>(&self.shared.key).expect("the slot just stored"))
    }
}

/// A data-bag key of its own for a new `PluginRouter` of `plugin`: two routers of one plugin
/// (another state, or without spans) must not serve each other's router.
fn router_key(plugin: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("hotswap_axum.router.{plugin}.{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Why a generation's router could not be had; logged, and the request answered 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// The plugin's router function failed or panicked (or the plugin has none).
    #[error("plugin `{plugin}` (generation {generation}) gave no router")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// Its generation.
        generation: u64,
        /// What the call said.
        source: InvokeError,
    },
    /// The plugin's router function returned something other than an `axum::Router` (an axum
    /// compiled otherwise than the host's: not on the shared route, say).
    #[error("plugin `{plugin}` (generation {generation}) gave no axum::Router")]
    NotARouter {
        /// Plugin name.
        plugin: String,
        /// Its generation.
        generation: u64,
        /// The types.
        source: TypeMismatch,
    },
}

fn failure(status: StatusCode, text: &str) -> Response {
    (status, text.to_string()).into_response()
}

impl<S: Clone + Send + Sync + 'static> Service<Request> for PluginRouter<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> ResponseFuture {
        let Some(plugin) = self.manager.find_plugin(&self.shared.plugin) else {
            let text = format!("plugin `{}` is not loaded", self.shared.plugin);
            return ResponseFuture::ready(failure(StatusCode::SERVICE_UNAVAILABLE, &text));
        };
        let slot = match self.slot(&plugin) {
            Ok(slot) => slot,
            Err(error) => {
                let source = std::error::Error::source(&*error).map(ToString::to_string).unwrap_or_default();
                tracing::error!(plugin = plugin.name(), generation = plugin.generation().number(), "{error}: {source}");
                return ResponseFuture::ready(failure(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()));
            }
        };
        let scope = Arc::clone(&slot.scope);
        let mut router = slot.router.clone();
        drop(slot);
        // Routing runs the plugin's code (its handlers build their futures): in its scope,
        // and a panic there ends this request only.
        let called = {
            let _scope = ScopeGuard::enter(Arc::clone(&scope));
            catch_unwind(AssertUnwindSafe(move || router.call(request)))
        };
        match called {
            Ok(future) => ResponseFuture::new(future, plugin, scope),
            Err(payload) => ResponseFuture::ready(panicked(&scope, "routing the request", payload)),
        }
    }
}

/// Logs a panic caught in plugin code and makes the 500 answer for it.
pub(crate) fn panicked(scope: &PluginScope, during: &str, payload: Box<dyn Any + Send>) -> Response {
    let message = panic_message(payload);
    tracing::error!(plugin = %scope.plugin, generation = scope.generation, "panic in the plugin's code while {during}: {message}");
    failure(StatusCode::INTERNAL_SERVER_ERROR, &format!("plugin `{}` panicked", scope.plugin))
}
