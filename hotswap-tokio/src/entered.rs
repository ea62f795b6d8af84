//! The future that crosses the boundary, and the wrapper that runs a plugin's future on the
//! host's runtime. Compiled into the plugin (through [`crate::serve`]), so its `catch_unwind`
//! and `Handle::enter` are the plugin's own copies of std and tokio.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

/// What a plugin's `invoke_func` returns for an async function: a boxed future whose output
/// is the function's result, or the message of a panic caught in the plugin. Only std types
/// and `T` cross, so the host can take it out of the `Value` by `TypeId`.
pub type BoundaryFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// Polls `future` with `handle` entered in this library's copy of tokio, catching panics.
pub(crate) struct Entered<F> {
    handle: Handle,
    /// `None` once finished (completed, panicked or dropped).
    future: Option<Pin<Box<F>>>,
}

impl<F> Entered<F> {
    pub(crate) fn new(handle: Handle, future: F) -> Self {
        Entered { handle, future: Some(Box::pin(future)) }
    }

    /// Drops the inner future inside the runtime and inside `catch_unwind`: a panicking
    /// `Drop` of plugin state must not unwind into the host.
    fn finish(&mut self) {
        if let Some(future) = self.future.take() {
            let handle = &self.handle;
            let dropped = catch_unwind(AssertUnwindSafe(|| {
                let _runtime = handle.enter();
                drop(future);
            }));
            if let Err(payload) = dropped {
                forget_payload(payload);
            }
        }
    }
}

impl<F: Future> Future for Entered<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Entered` is `Unpin`: the inner future is pinned in its own box.
        let this = self.get_mut();
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(Err("plugin future polled after it finished".to_string()));
        };
        let handle = &this.handle;
        let polled = catch_unwind(AssertUnwindSafe(|| {
            let _runtime = handle.enter();
            future.as_mut().poll(cx)
        }));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                this.finish();
                Poll::Ready(Ok(output))
            }
            Err(payload) => {
                let message = panic_message(payload);
                this.finish();
                Poll::Ready(Err(message))
            }
        }
    }
}

impl<F> Drop for Entered<F> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The text of a panic payload (`&str` or `String`, as `panic!` makes them). Reading or
/// dropping a hostile payload may itself panic; that is caught too.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let read = catch_unwind(AssertUnwindSafe(|| {
        if let Some(text) = payload.downcast_ref::<&str>() {
            text.to_string()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "a panic with a non-string payload".to_string()
        }
    }));
    let message = read.unwrap_or_else(|nested| {
        forget_payload(nested);
        "a panic whose payload panicked when read".to_string()
    });
    if let Err(nested) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        forget_payload(nested);
    }
    message
}

/// A payload whose drop already panicked once is leaked rather than dropped again.
fn forget_payload(payload: Box<dyn Any + Send>) {
    std::mem::forget(payload);
}
