//! A plugin's response body that is still streaming when its response leaves the plugin
//! ([`ResponseFuture`](crate::ResponseFuture) takes the first frame): streamed by the
//! plugin's code in its [scope](crate::PluginScope), holding its generation (so its library
//! stays mapped) until dropped; its frames leave as copies and its panics are contained.

use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use hotswap_runtime::Plugin;
use http_body::{Body as _, Frame, SizeHint};

use crate::detach::{owned, owned_headers};
use crate::panic_message;
use crate::scope::{PluginScope, ScopeGuard};

/// Drops `value` (plugin code) with `scope` current; a panic is logged and contained.
pub(crate) fn drop_in_scope<T>(value: ManuallyDrop<T>, scope: &Arc<PluginScope>, during: &str) {
    let _scope = ScopeGuard::enter(Arc::clone(scope));
    drop_caught(value, scope, during);
}

/// Drops `value` (plugin code), its scope already current; a panic is logged and contained.
pub(crate) fn drop_caught<T>(value: ManuallyDrop<T>, scope: &PluginScope, during: &str) {
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(ManuallyDrop::into_inner(value))));
    if let Err(payload) = dropped {
        let message = panic_message(payload);
        tracing::error!(plugin = %scope.plugin, generation = scope.generation, "panic in the plugin's code while {during}: {message}");
    }
}

/// What the first poll of a plugin's response body gave.
pub(crate) enum First {
    /// The whole body, as the host's own copy (the plugin's body is dropped).
    Whole(Body),
    /// A body still streaming: its first frame, if it gave one, and the plugin's body.
    Rest { first: Option<Result<Frame<Bytes>, axum::Error>>, inner: ManuallyDrop<Body> },
    /// The body's code panicked (the message; the plugin's body is dropped).
    Panicked(String),
}

/// Polls the plugin's response `body` once, the plugin's `scope` already current: a body
/// whose first frame is all of it (a `String`, `Json`, any `Full` body) leaves as a copy that
/// holds nothing of the plugin, so most answers cost no [`PluginBody`] and no further entry
/// into the plugin's scope. Polled with the response future's context: hyper polls the
/// response and its body from the same task.
pub(crate) fn first_frame(body: Body, scope: &PluginScope, cx: &mut Context<'_>) -> First {
    let mut body = ManuallyDrop::new(body);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        let polled = poll_detached(&mut body, scope, cx);
        let whole = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(frame))) => frame.is_data() && body.is_end_stream(),
            _ => false,
        };
        (polled, whole)
    }));
    match polled {
        Ok((Poll::Ready(None), _)) => {
            drop_caught(body, scope, "dropping the response body");
            First::Whole(Body::empty())
        }
        Ok((Poll::Ready(Some(Ok(frame))), true)) => {
            drop_caught(body, scope, "dropping the response body");
            First::Whole(Body::from(frame.into_data().unwrap_or_default()))
        }
        Ok((Poll::Ready(Some(first)), _)) => First::Rest { first: Some(first), inner: body },
        Ok((Poll::Pending, _)) => First::Rest { first: None, inner: body },
        Err(payload) => {
            let message = panic_message(payload);
            drop_caught(body, scope, "dropping the response body");
            First::Panicked(message)
        }
    }
}

/// Logs a panic of a body stream, outside the plugin's scope.
pub(crate) fn log_stream_panic(scope: &PluginScope, message: &str) {
    tracing::error!(plugin = %scope.plugin, generation = scope.generation, "panic in the plugin's code while streaming the response body: {message}");
}

/// One poll of the plugin's `body` (its scope current): data and trailers leave as copies,
/// since hyper may queue them for a slow client past the body's end, when the library may be
/// gone; an error leaves as text, since hyper drops the body, then displays and drops its
/// error, whose type (and vtable) may be the plugin's.
fn poll_detached(
    body: &mut Body,
    scope: &PluginScope,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
    match Pin::new(body).poll_frame(cx) {
        Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(detach(frame)))),
        Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(failed(scope, error)))),
        other => other,
    }
}

/// A plugin's response body: streamed by the plugin's code in its scope, holding its
/// generation until dropped. A panic in the stream ends the body with an error (hyper then
/// cuts the response short) and is logged with plugin and generation.
pub(crate) struct PluginBody {
    /// A frame (or the body's error) taken before hyper asked for one, with the response:
    /// given first.
    first: Option<Result<Frame<Bytes>, axum::Error>>,
    /// Dropped before `plugin`; `None` once dropped early (after a panic).
    inner: Option<ManuallyDrop<Body>>,
    scope: Arc<PluginScope>,
    /// Keeps the generation (and the body's code) alive.
    _plugin: Plugin,
}

impl PluginBody {
    /// The rest of a body whose first poll ([`first_frame`]) did not give all of it.
    pub(crate) fn new(
        first: Option<Result<Frame<Bytes>, axum::Error>>,
        inner: ManuallyDrop<Body>,
        plugin: Plugin,
        scope: Arc<PluginScope>,
    ) -> PluginBody {
        PluginBody { first, inner: Some(inner), scope, _plugin: plugin }
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
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(first));
        }
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        let scope = &this.scope;
        let polled = {
            let _scope = ScopeGuard::enter(Arc::clone(scope));
            catch_unwind(AssertUnwindSafe(|| poll_detached(inner, scope, cx)))
        };
        match polled {
            Ok(polled) => polled,
            Err(payload) => {
                let message = panic_message(payload);
                this.finish();
                let scope = &this.scope;
                log_stream_panic(scope, &message);
                let error = BodyPanicked { plugin: scope.plugin.clone(), generation: scope.generation, message };
                Poll::Ready(Some(Err(axum::Error::new(error))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.first.is_some() {
            return false;
        }
        match self.inner.as_ref() {
            None => true,
            Some(inner) => {
                let _scope = ScopeGuard::enter(Arc::clone(&self.scope));
                catch_unwind(AssertUnwindSafe(|| inner.is_end_stream())).unwrap_or(false)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        let rest = match self.inner.as_ref() {
            None => SizeHint::with_exact(0),
            Some(inner) => {
                let _scope = ScopeGuard::enter(Arc::clone(&self.scope));
                catch_unwind(AssertUnwindSafe(|| inner.size_hint())).unwrap_or_default()
            }
        };
        match &self.first {
            None => rest,
            // The frame taken early counts with the rest.
            Some(Ok(frame)) => {
                let taken = frame.data_ref().map_or(0, |data| data.len() as u64);
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(taken));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(taken));
                }
                hint
            }
            // An error to give: not a body of known length.
            Some(Err(_)) => SizeHint::default(),
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
