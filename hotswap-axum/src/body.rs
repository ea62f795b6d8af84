//! What a request to a plugin's router gives back: a response future and a response body
//! that each hold the plugin's generation (so its library stays mapped) until dropped, run
//! the plugin's code in its [scope](crate::PluginScope), and contain its panics.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use hotswap_runtime::Plugin;
use http_body::{Frame, SizeHint};

use crate::detach::{owned, owned_headers, owned_reason};
use crate::making::{Made, Making};
use crate::panic_message;
use crate::scope::{PluginScope, ScopeGuard};
use crate::service::{panicked, refused, route};

/// The future of one request to a plugin's router ([`PluginRouter`](crate::PluginRouter)).
/// Holds the generation that serves the request until it completes or is dropped; its
/// response's body then holds it until the body is dropped.
pub struct ResponseFuture {
    /// The plugin's future (its code is in the plugin's library); `None` once finished.
    /// Dropped before `plugin`.
    inner: Option<ManuallyDrop<Pin<Box<RouteFuture<std::convert::Infallible>>>>>,
    /// An answer made by the host (plugin not loaded, panic while routing).
    ready: Option<Response>,
    /// The request, waiting for its generation's router to be made (on a thread of its own).
    waiting: Option<(Arc<Making>, Request)>,
    plugin: Option<Plugin>,
    scope: Option<Arc<PluginScope>>,
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl ResponseFuture {
    pub(crate) fn new(
        future: RouteFuture<std::convert::Infallible>,
        plugin: Plugin,
        scope: Arc<PluginScope>,
    ) -> ResponseFuture {
        ResponseFuture {
            inner: Some(ManuallyDrop::new(Box::pin(future))),
            ready: None,
            waiting: None,
            plugin: Some(plugin),
            scope: Some(scope),
        }
    }

    pub(crate) fn ready(response: Response) -> ResponseFuture {
        ResponseFuture { inner: None, ready: Some(response), waiting: None, plugin: None, scope: None }
    }

    /// A request to `plugin`'s generation, whose router `making` is making.
    pub(crate) fn waiting(making: Arc<Making>, plugin: Plugin, request: Request) -> ResponseFuture {
        ResponseFuture { inner: None, ready: None, waiting: Some((making, request)), plugin: Some(plugin), scope: None }
    }

    /// Waits for the router, then routes the request (or answers why there is none).
    fn poll_making(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((making, _)) = self.waiting.as_ref() else { return Poll::Ready(()) };
        let made = match making.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(made) => made,
        };
        let (_, request) = self.waiting.take().expect("waiting");
        let plugin = self.plugin.take().expect("plugin held while waiting");
        *self = match made {
            Made::Router(slot) => route(&slot, plugin, request),
            Made::Failed(error) => ResponseFuture::ready(refused(&plugin, &error)),
            Made::TimedOut(error) => ResponseFuture::ready(refused(&plugin, &error)),
        };
        Poll::Ready(())
    }

    /// Drops the plugin's future in its scope, catching a panic of its drop.
    fn finish(&mut self) {
        if let (Some(inner), Some(scope)) = (self.inner.take(), self.scope.as_ref()) {
            drop_in_scope(inner, scope, "dropping the response future");
        }
    }
}

/// Drops `value` (plugin code) with `scope` current; a panic is logged and contained.
fn drop_in_scope<T>(value: ManuallyDrop<T>, scope: &Arc<PluginScope>, during: &str) {
    let _scope = ScopeGuard::enter(Arc::clone(scope));
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(ManuallyDrop::into_inner(value))));
    if let Err(payload) = dropped {
        let message = panic_message(payload);
        tracing::error!(plugin = %scope.plugin, generation = scope.generation, "panic in the plugin's code while {during}: {message}");
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (the plugin's future is pinned in its own box).
        let this = self.get_mut();
        if this.poll_making(cx).is_pending() {
            return Poll::Pending;
        }
        if let Some(response) = this.ready.take() {
            return Poll::Ready(Ok(response));
        }
        let (Some(inner), Some(scope)) = (this.inner.as_mut(), this.scope.as_ref()) else {
            panic!("hotswap_axum::ResponseFuture polled after it completed");
        };
        // What hyper may hold after the body (and with it the generation) is gone must not
        // depend on the library: header names and values are copied, and the extensions
        // (values of any type, whose drop may be the plugin's code) dropped, here in the
        // plugin's scope and under its `catch_unwind`, while the generation is held.
        let polled = {
            let _scope = ScopeGuard::enter(Arc::clone(scope));
            catch_unwind(AssertUnwindSafe(|| match inner.as_mut().poll(cx) {
                Poll::Ready(Ok(mut response)) => {
                    drop(owned_headers(response.headers_mut()));
                    // A custom reason phrase (hyper writes it in the status line) is the one
                    // extension kept, as a copy.
                    let reason = owned_reason(response.extensions());
                    drop(std::mem::take(response.extensions_mut()));
                    if let Some(reason) = reason {
                        response.extensions_mut().insert(reason);
                    }
                    Poll::Ready(Ok(response))
                }
                other => other,
            }))
        };
        let scope = Arc::clone(scope);
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(response))) => {
                this.finish();
                let plugin = this.plugin.take().expect("plugin held until the response");
                Poll::Ready(Ok(response.map(|body| Body::new(PluginBody::new(body, plugin, scope)))))
            }
            Ok(Poll::Ready(Err(never))) => match never {},
            Err(payload) => {
                this.finish();
                this.plugin = None;
                Poll::Ready(Ok(panicked(&scope, "handling the request", payload)))
            }
        }
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        // Before `plugin` (a field) goes with the library that holds the future's code.
        self.finish();
    }
}

/// A plugin's response body: streamed by the plugin's code in its scope, holding its
/// generation until dropped. A panic in the stream ends the body with an error (hyper then
/// cuts the response short) and is logged with plugin and generation.
pub(crate) struct PluginBody {
    /// Dropped before `plugin`; `None` once dropped early (after a panic).
    inner: Option<ManuallyDrop<Body>>,
    scope: Arc<PluginScope>,
    /// Keeps the generation (and the body's code) alive.
    _plugin: Plugin,
}

impl PluginBody {
    fn new(body: Body, plugin: Plugin, scope: Arc<PluginScope>) -> PluginBody {
        PluginBody { inner: Some(ManuallyDrop::new(body)), scope, _plugin: plugin }
    }

    fn finish(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop_in_scope(inner, &self.scope, "dropping the response body");
        }
    }
}

/// A body stream of plugin code panicked.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` (generation {generation}) panicked while streaming the response body: {message}")]
pub struct BodyPanicked {
    /// Plugin name.
    pub plugin: String,
    /// Its generation.
    pub generation: u64,
    /// The panic message.
    pub message: String,
}

/// A body stream of plugin code ended with an error; the plugin's error, as text (its type may
/// be the plugin's, and leave with its library).
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` (generation {generation}): the response body failed: {message}")]
pub struct BodyFailed {
    /// Plugin name.
    pub plugin: String,
    /// Its generation.
    pub generation: u64,
    /// The error's text, then its sources' texts, joined by `: `.
    pub message: String,
}

impl http_body::Body for PluginBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        let scope = &this.scope;
        let polled = {
            let _scope = ScopeGuard::enter(Arc::clone(scope));
            catch_unwind(AssertUnwindSafe(|| match Pin::new(&mut **inner).poll_frame(cx) {
                // Data and trailers leave as copies: hyper may queue them for a slow client
                // past the body's end, when the library may be gone. An error leaves as text:
                // hyper drops the body, then displays and drops its error, whose type (and
                // vtable) may be the plugin's.
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(detach(frame)))),
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(failed(scope, error)))),
                other => other,
            }))
        };
        match polled {
            Ok(polled) => polled,
            Err(payload) => {
                let message = panic_message(payload);
                let scope = Arc::clone(&this.scope);
                tracing::error!(plugin = %scope.plugin, generation = scope.generation, "panic in the plugin's code while streaming the response body: {message}");
                this.finish();
                let error = BodyPanicked { plugin: scope.plugin.clone(), generation: scope.generation, message };
                Poll::Ready(Some(Err(axum::Error::new(error))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.inner.as_ref() {
            None => true,
            Some(inner) => {
                let _scope = ScopeGuard::enter(Arc::clone(&self.scope));
                catch_unwind(AssertUnwindSafe(|| inner.is_end_stream())).unwrap_or(false)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.inner.as_ref() {
            None => SizeHint::with_exact(0),
            Some(inner) => {
                let _scope = ScopeGuard::enter(Arc::clone(&self.scope));
                catch_unwind(AssertUnwindSafe(|| inner.size_hint())).unwrap_or_default()
            }
        }
    }
}

/// `frame` with its bytes copied (see `detach.rs`); called in the plugin's scope.
fn detach(frame: Frame<Bytes>) -> Frame<Bytes> {
    match frame.into_data() {
        Ok(data) => Frame::data(owned(&data)),
        Err(frame) => match frame.into_trailers() {
            Ok(mut trailers) => {
                drop(owned_headers(&mut trailers));
                Frame::trailers(trailers)
            }
            Err(frame) => frame,
        },
    }
}

/// The body's error as the host's own [`BodyFailed`] (its text and its sources' texts);
/// called in the plugin's scope, where the plugin's error is dropped.
fn failed(scope: &PluginScope, error: axum::Error) -> axum::Error {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        // `axum::Error` displays as its source does: its text once.
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    drop(error);
    tracing::warn!(plugin = %scope.plugin, generation = scope.generation, "the plugin's response body failed: {message}");
    axum::Error::new(BodyFailed { plugin: scope.plugin.clone(), generation: scope.generation, message })
}

impl Drop for PluginBody {
    fn drop(&mut self) {
        self.finish();
    }
}
