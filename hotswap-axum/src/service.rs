//! The host side: [`PluginRouter`], a `tower::Service` that sends each request to the router
//! of the plugin generation serving when the request starts.

use std::any::Any;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hotswap_runtime::{Generation, InvokeError, Plugin, PluginManager, ReloadCallbackGuard, TypeMismatch};
use tower_service::Service;

use crate::making::{Making, Recipe, Slot};
use crate::panic_message;
use crate::response::ResponseFuture;
use crate::scope::PluginScope;

/// A plugin's `axum::Router`, mounted in the host as a `tower::Service`
/// (`Router::fallback_service`, `Router::nest_service`, `Router::route_service`).
///
/// Each request looks up the plugin in the generation serving when it starts and goes to that
/// generation's router (asked for once per generation through the plugin's
/// [`ROUTER`](crate::ROUTER) function and kept in the generation's vault, so it goes with the
/// generation). The response future and a response body still streaming hold that
/// generation: a reload never unmaps the code of a request in flight or of a body still
/// streaming (server-sent events, chunks), and the next request gets the new code. A body
/// complete in its first frame leaves as the host's own copy, holding nothing of the plugin.
/// A panic in the plugin's code while routing, in its handler or in its body stream is
/// caught, logged with plugin and generation, and ends that request only (500, or a body cut
/// short); the host and the plugin go on.
///
/// The plugin's router function runs on a thread of its own, never on a runtime worker: the
/// requests that arrive meanwhile wait for it without blocking, and answer 503 naming plugin
/// and generation if it has not returned within [`PluginRouter::router_timeout`]. The router
/// is dropped with its generation in the plugin's scope, a panic there caught and logged.
///
/// `S` is host-owned state handed to the plugin's router function on each generation (a pool,
/// a cache, a channel), typed: the plugin's function takes an `S` and usually passes it to
/// `Router::with_state`. It must be the same type on both sides, from a crate both link (on
/// the shared route, the shared crate).
#[derive(Clone)]
pub struct PluginRouter<S = ()> {
    /// One reference count per clone: axum clones the service for every request.
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    manager: PluginManager,
    plugin: String,
    /// Makes each new generation's router before it serves (see [`Shared::prepare`]); removed
    /// with the last clone.
    _prepare: ReloadCallbackGuard,
    /// The host's runtime, entered on the threads that run the plugin's router function (a
    /// reload's thread has none of its own).
    runtime: Option<tokio::runtime::Handle>,
    /// The data-bag key (one per `PluginRouter` and its clones, since each has its own state
    /// and spans to build the router with), the state and whether the plugin's code runs
    /// inside the span `plugin{name, generation}`.
    recipe: Arc<Recipe<S>>,
    /// How long requests wait for a generation's router function.
    timeout: Duration,
    /// The routers being made, by generation number (one at a time per generation).
    making: Mutex<HashMap<u64, Arc<Making>>>,
}

impl<S: Clone + Send + Sync + 'static> Shared<S> {
    fn new(manager: PluginManager, plugin: String, recipe: Recipe<S>, timeout: Duration) -> Arc<Shared<S>> {
        Arc::new_cyclic(|weak: &Weak<Shared<S>>| {
            let weak = weak.clone();
            let prepare = manager.add_reload_callback(move |new, _| {
                if let Some(shared) = weak.upgrade() {
                    shared.prepare(new);
                }
                Ok(())
            });
            Shared {
                manager,
                plugin,
                _prepare: prepare,
                runtime: tokio::runtime::Handle::try_current().ok(),
                recipe: Arc::new(recipe),
                timeout,
                making: Mutex::default(),
            }
        })
    }

    /// A reload callback: makes the new generation's router before the generation serves, so
    /// that its first requests find it made. Waits for it up to the router timeout, at most
    /// [`PREPARE_WAIT`] (each `PluginRouter` waits in turn, within the reload's deadline);
    /// never fails the reload (a router function that fails or takes longer is the requests'
    /// to meet, as without this: 500, or a wait and then 503 after the timeout).
    fn prepare(self: &Arc<Self>, new: &Arc<Generation>) {
        let Some(plugin) = new.find_plugin(&self.plugin) else { return };
        match self.slot(&plugin) {
            Ok(Ok(_)) => {}
            Ok(Err(making)) => {
                if !making.wait(PREPARE_WAIT) {
                    tracing::warn!(
                        plugin = %self.plugin,
                        generation = new.number(),
                        "the plugin's router function has not returned within {} ms of the reload: the generation serves without it (requests wait for it up to the router timeout, {} ms of its start, then answer 503)",
                        self.timeout.min(PREPARE_WAIT).as_millis(),
                        self.timeout.as_millis()
                    );
                }
            }
            Err(error) => tracing::warn!(plugin = %self.plugin, generation = new.number(), "{error}"),
        }
    }

    /// The router of `plugin`'s generation if made, or its making (started by this call if
    /// none runs).
    fn slot(self: &Arc<Self>, plugin: &Plugin) -> Result<Result<Arc<Slot>, Arc<Making>>, Box<RouterError>> {
        let key = &self.recipe.key;
        let vault = plugin.generation().vault();
        if let Some(slot) = vault.data::<Slot>(key) {
            return Ok(Ok(slot));
        }
        let number = plugin.generation().number();
        let mut making = lock(&self.making);
        // Again under the lock: a making stores its router before it leaves the map.
        if let Some(slot) = vault.data::<Slot>(key) {
            return Ok(Ok(slot));
        }
        if let Some(running) = making.get(&number) {
            return Ok(Err(Arc::clone(running)));
        }
        let shared = Arc::downgrade(self);
        let done = move |_: &Result<Arc<Slot>, Box<RouterError>>| {
            // Made or failed: later requests find the router in the generation's data bag, or
            // try again (as a request always did after a failure).
            if let Some(shared) = shared.upgrade() {
                lock(&shared.making).remove(&number);
            }
        };
        let runtime = tokio::runtime::Handle::try_current().ok().or_else(|| self.runtime.clone());
        let started = Making::start(plugin.clone(), Arc::clone(&self.recipe), self.timeout, runtime, done)?;
        making.insert(number, Arc::clone(&started));
        Ok(Err(started))
    }
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
        let recipe = Recipe { key: router_key(&plugin), state, spans: true };
        PluginRouter { shared: Shared::new(manager, plugin, recipe, Self::DEFAULT_ROUTER_TIMEOUT) }
    }

    /// Without the `tracing` span `plugin{name, generation}` around the plugin's code (the
    /// plugin's events then carry no plugin name; its panics are still logged with it): saves
    /// entering and leaving the span on every poll (the guide gives measured figures).
    pub fn without_spans(self) -> PluginRouter<S> {
        let timeout = self.shared.timeout;
        self.remade(false, timeout)
    }

    /// This router with `spans` and `timeout`, as a new `PluginRouter` (its own data-bag key,
    /// so neither serves the other's router).
    fn remade(self, spans: bool, timeout: Duration) -> PluginRouter<S> {
        let shared = &self.shared;
        let recipe = Recipe { key: router_key(&shared.plugin), state: shared.recipe.state.clone(), spans };
        PluginRouter { shared: Shared::new(shared.manager.clone(), shared.plugin.clone(), recipe, timeout) }
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.shared.plugin
    }

    /// How long requests wait for a generation's router function before answering 503, unless
    /// [`PluginRouter::router_timeout`] says otherwise.
    pub const DEFAULT_ROUTER_TIMEOUT: Duration = Duration::from_secs(10);

    /// Requests to a generation whose router function has not returned within `timeout` of
    /// its start answer 503 naming plugin and generation (without waiting, once past that
    /// time), until it returns; its router then serves. The function runs on a thread of its
    /// own, never on a runtime worker. Default: [`Self::DEFAULT_ROUTER_TIMEOUT`].
    pub fn router_timeout(self, timeout: Duration) -> PluginRouter<S> {
        let spans = self.shared.recipe.spans;
        self.remade(spans, timeout)
    }
}

/// The longest a reload waits for one `PluginRouter`'s router of the new generation.
const PREPARE_WAIT: Duration = Duration::from_secs(1);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
    /// The plugin's router function has not returned within the router timeout
    /// ([`PluginRouter::router_timeout`]); answered 503 until it returns.
    #[error(
        "plugin `{plugin}` (generation {generation}) gave no router within {waited_ms} ms: its router function is still running"
    )]
    TimedOut {
        /// Plugin name.
        plugin: String,
        /// Its generation.
        generation: u64,
        /// How long requests wait for it, in milliseconds.
        waited_ms: u64,
    },
    /// No thread could be started to run the plugin's router function.
    #[error("plugin `{plugin}` (generation {generation}): no thread to run its router function")]
    NoThread {
        /// Plugin name.
        plugin: String,
        /// Its generation.
        generation: u64,
        /// Why.
        source: std::io::Error,
    },
    /// The host's own code panicked while taking the router (the plugin's panics are
    /// [`RouterError::Failed`]).
    #[error("plugin `{plugin}` (generation {generation}): taking its router panicked: {message}")]
    HostPanicked {
        /// Plugin name.
        plugin: String,
        /// Its generation.
        generation: u64,
        /// The panic message.
        message: String,
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
        let Some(plugin) = self.shared.manager.find_plugin(&self.shared.plugin) else {
            let text = format!("plugin `{}` is not loaded", self.shared.plugin);
            return ResponseFuture::ready(failure(StatusCode::SERVICE_UNAVAILABLE, &text));
        };
        match self.shared.slot(&plugin) {
            Ok(Ok(slot)) => ResponseFuture::route(slot, plugin, request),
            // The router function runs on its own thread: the request waits for it without
            // blocking this worker.
            Ok(Err(making)) => ResponseFuture::waiting(making, plugin, request),
            Err(error) => ResponseFuture::ready(refused(&plugin, &error)),
        }
    }
}

/// Logs why `plugin`'s generation has no router and makes the answer: 503 while its router
/// function runs past the timeout, 500 otherwise.
pub(crate) fn refused(plugin: &Plugin, error: &RouterError) -> Response {
    let (name, generation) = (plugin.name(), plugin.generation().number());
    if let RouterError::TimedOut { .. } = error {
        tracing::warn!(plugin = name, generation, "{error}");
        return failure(StatusCode::SERVICE_UNAVAILABLE, &error.to_string());
    }
    let source = std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
    tracing::error!(plugin = name, generation, "{error}: {source}");
    failure(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
}

/// Logs a panic caught in plugin code and makes the 500 answer for it.
pub(crate) fn panicked(scope: &PluginScope, during: &str, payload: Box<dyn Any + Send>) -> Response {
    let message = panic_message(payload);
    tracing::error!(plugin = %scope.plugin, generation = scope.generation, "panic in the plugin's code while {during}: {message}");
    panic_answer(scope)
}

/// The 500 answer to a request whose plugin code panicked.
pub(crate) fn panic_answer(scope: &PluginScope) -> Response {
    failure(StatusCode::INTERNAL_SERVER_ERROR, &format!("plugin `{}` panicked", scope.plugin))
}
