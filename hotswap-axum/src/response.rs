//! What a request to a plugin's router gives back: a response future that holds the plugin's
//! generation (so its library stays mapped) until it completes or is dropped, runs the
//! plugin's code in its [scope](crate::PluginScope) and contains its panics.
//!
//! The plugin's scope is entered once per poll: routing the request, polling the handler's
//! future and, once the response is ready, copying its head, taking the body's first frame
//! and dropping the future all run under one [`ScopeGuard`]. A body complete in that frame (a
//! `String`, `Json`, any `Full` body: most answers) leaves as the host's own copy and holds
//! nothing of the plugin; any other body leaves as a `PluginBody`, which holds the
//! generation until dropped.

use std::convert::Infallible;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use hotswap_runtime::Plugin;
use tower_service::Service;

use crate::body::{First, PluginBody, drop_caught, drop_in_scope, first_frame, log_stream_panic};
use crate::detach::{owned_headers, owned_reason};
use crate::making::{Made, Making, Slot};
use crate::scope::{PluginScope, ScopeGuard};
use crate::service::{panic_answer, panicked, refused};

/// The future of one request to a plugin's router ([`PluginRouter`](crate::PluginRouter)).
/// Holds the generation that serves the request until it completes or is dropped; a body
/// still streaming then holds it until the body is dropped.
pub struct ResponseFuture {
    state: State,
}

enum State {
    /// Waiting for the generation's router to be made (on a thread of its own).
    Waiting {
        making: Arc<Making>,
        plugin: Plugin,
        request: Request,
    },
    /// To be routed by the generation's router on the first poll.
    Route {
        slot: Arc<Slot>,
        plugin: Plugin,
        request: Request,
    },
    /// The plugin's future (its code is in the plugin's library). Dropped in the plugin's
    /// scope, before `plugin`.
    Running {
        inner: ManuallyDrop<RouteFuture<Infallible>>,
        plugin: Plugin,
        scope: Arc<PluginScope>,
    },
    /// An answer made by the host (plugin not loaded, no router).
    Ready(Response),
    Done,
}

// The plugin's future is kept inline, not boxed: axum's `RouteFuture` is `Unpin`.
const _: fn() = || {
    fn unpin<T: Unpin>() {}
    unpin::<RouteFuture<Infallible>>();
};

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Waiting { .. } => "waiting for the router",
            State::Route { .. } => "to be routed",
            State::Running { .. } => "running",
            State::Ready(_) => "ready",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish_non_exhaustive()
    }
}

impl ResponseFuture {
    /// A request to `plugin`'s generation, whose router is in `slot`.
    pub(crate) fn route(slot: Arc<Slot>, plugin: Plugin, request: Request) -> ResponseFuture {
        ResponseFuture { state: State::Route { slot, plugin, request } }
    }

    pub(crate) fn ready(response: Response) -> ResponseFuture {
        ResponseFuture { state: State::Ready(response) }
    }

    /// A request to `plugin`'s generation, whose router `making` is making.
    pub(crate) fn waiting(making: Arc<Making>, plugin: Plugin, request: Request) -> ResponseFuture {
        ResponseFuture { state: State::Waiting { making, plugin, request } }
    }

    /// Polls the plugin's future with its scope entered (`guard`); once it is ready, makes
    /// the response's head the host's ([`detach_head`]), takes the body's first frame
    /// ([`first_frame`]) and drops the future, all in that scope. Panics of the plugin's code
    /// are logged once the scope is left.
    fn drive(
        &mut self,
        mut inner: ManuallyDrop<RouteFuture<Infallible>>,
        plugin: Plugin,
        scope: Arc<PluginScope>,
        guard: ScopeGuard,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response, Infallible>> {
        let polled = catch_unwind(AssertUnwindSafe(|| match Pin::new(&mut *inner).poll(cx) {
            Poll::Ready(Ok(response)) => Poll::Ready(detach_head(response)),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Poll::Pending,
        }));
        let polled = match polled {
            Ok(Poll::Pending) => {
                self.state = State::Running { inner, plugin, scope };
                return Poll::Pending;
            }
            Ok(Poll::Ready(response)) => Ok(response),
            Err(payload) => Err(payload),
        };
        drop_caught(inner, &scope, "dropping the response future");
        let response = match polled {
            Ok(response) => response,
            Err(payload) => {
                drop(guard);
                return Poll::Ready(Ok(panicked(&scope, "handling the request", payload)));
            }
        };
        let (parts, body) = response.into_parts();
        let body = match first_frame(body, &scope, cx) {
            First::Whole(whole) => whole,
            First::Rest { first, inner } => Body::new(PluginBody::new(first, inner, plugin, Arc::clone(&scope))),
            First::Panicked(message) => {
                // Logged outside the plugin's scope. Nothing of the response is sent yet: it
                // becomes a 500, where a panic later in the stream cuts the body short.
                drop(guard);
                log_stream_panic(&scope, &message);
                return Poll::Ready(Ok(panic_answer(&scope)));
            }
        };
        drop(guard);
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin`.
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Waiting { making, plugin, request } => match making.poll(cx) {
                    Poll::Pending => {
                        this.state = State::Waiting { making, plugin, request };
                        return Poll::Pending;
                    }
                    Poll::Ready(Made::Router(slot)) => this.state = State::Route { slot, plugin, request },
                    Poll::Ready(Made::Failed(error)) => return Poll::Ready(Ok(refused(&plugin, &error))),
                    Poll::Ready(Made::TimedOut(error)) => return Poll::Ready(Ok(refused(&plugin, &error))),
                },
                State::Route { slot, plugin, request } => {
                    let scope = Arc::clone(&slot.scope);
                    let guard = ScopeGuard::enter(Arc::clone(&scope));
                    // Routing runs the plugin's code (its handlers build their futures): a panic
                    // there ends this request only. The slot is not the router's last holder
                    // (the generation's data bag, which `plugin` keeps, holds it).
                    let routed = catch_unwind(AssertUnwindSafe(move || {
                        let future = Router::clone(&slot.router).call(request);
                        drop(slot);
                        future
                    }));
                    return match routed {
                        Ok(future) => this.drive(ManuallyDrop::new(future), plugin, scope, guard, cx),
                        Err(payload) => {
                            drop(guard);
                            Poll::Ready(Ok(panicked(&scope, "routing the request", payload)))
                        }
                    };
                }
                State::Running { inner, plugin, scope } => {
                    let guard = ScopeGuard::enter(Arc::clone(&scope));
                    return this.drive(inner, plugin, scope, guard, cx);
                }
                State::Ready(response) => return Poll::Ready(Ok(response)),
                State::Done => panic!("hotswap_axum::ResponseFuture polled after it completed"),
            }
        }
    }
}

/// The plugin's response with a head the host owns. What hyper may hold after the body (and
/// with it the generation) is gone must not depend on the library: header names and values
/// are copied, and the extensions (values of any type, whose drop may be the plugin's code)
/// dropped, here in the plugin's scope and under its `catch_unwind`, while the generation is
/// held. A custom reason phrase (hyper writes it in the status line) is the one extension
/// kept, as a copy.
fn detach_head(mut response: Response) -> Response {
    drop(owned_headers(response.headers_mut()));
    let reason = owned_reason(response.extensions());
    drop(std::mem::take(response.extensions_mut()));
    if let Some(reason) = reason {
        response.extensions_mut().insert(reason);
    }
    response
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        // The plugin's future goes in its scope, before the generation that holds its code.
        if let State::Running { inner, plugin, scope } = std::mem::replace(&mut self.state, State::Done) {
            drop_in_scope(inner, &scope, "dropping the response future");
            drop(plugin);
        }
    }
}
