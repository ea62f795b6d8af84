//! The host side: calling a plugin's async function and awaiting its future.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hotswap_runtime::{Args, InvokeError, Plugin, TypeMismatch};
use tokio::runtime::Handle;

use crate::entered::BoundaryFuture;

/// A call into an async plugin function failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// [`call`] was used outside a tokio runtime.
    #[error("hotswap_tokio::call needs a tokio runtime (call it from async code on the runtime)")]
    NoRuntime,
    /// The plugin's `invoke_func` failed or panicked before returning a future.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The plugin returned something other than the future of a `T`.
    #[error("plugin `{plugin}` function `{func}` did not return a hotswap_tokio future of the asked type: {mismatch}")]
    ResultType {
        /// Plugin name.
        plugin: String,
        /// Function name.
        func: String,
        /// The types.
        mismatch: TypeMismatch,
    },
    /// The plugin's future panicked; the panic was caught in the plugin.
    #[error("plugin `{plugin}` function `{func}` panicked: {message}")]
    Panicked {
        /// Plugin name.
        plugin: String,
        /// Function name.
        func: String,
        /// The panic message.
        message: String,
    },
}

/// Calls the async function `func` of `plugin` with `input`, passing the current runtime's
/// handle. The returned future owns `plugin`, so the generation and library that hold the
/// future's code stay alive until it completes or is dropped.
pub fn call<A: Any + Send, T: Any>(plugin: Plugin, func: &str, input: A) -> Result<PluginCall<T>, CallError> {
    let handle = Handle::try_current().map_err(|_| CallError::NoRuntime)?;
    let args = Args::new().with(handle).with(input);
    let value = plugin.invoke_func(func, args)?;
    let future = value.downcast::<BoundaryFuture<T>>().map_err(|mismatch| CallError::ResultType {
        plugin: plugin.name().to_string(),
        func: func.to_string(),
        mismatch,
    })?;
    Ok(PluginCall { future: Some(future), plugin, func: func.to_string() })
}

/// The future of one call into a plugin. Resolves to the function's result, or to
/// [`CallError::Panicked`] if the plugin's code panicked.
#[must_use = "futures do nothing unless awaited"]
pub struct PluginCall<T> {
    // Field order matters: the future (whose code lives in the plugin) is dropped before the
    // plugin handle that keeps that code mapped.
    future: Option<BoundaryFuture<T>>,
    plugin: Plugin,
    func: String,
}

impl<T> std::fmt::Debug for PluginCall<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCall")
            .field("plugin", &self.plugin)
            .field("func", &self.func)
            .field("done", &self.future.is_none())
            .finish()
    }
}

impl<T> PluginCall<T> {
    /// The plugin (and so the generation) this call runs on.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }
}

impl<T> Future for PluginCall<T> {
    type Output = Result<T, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(future) = this.future.as_mut() else {
            panic!("PluginCall polled after it completed");
        };
        let output = match future.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        // Drop the finished future now, while `plugin` still keeps its code mapped.
        this.future = None;
        Poll::Ready(output.map_err(|message| CallError::Panicked {
            plugin: this.plugin.name().to_string(),
            func: this.func.clone(),
            message,
        }))
    }
}

impl<T> Drop for PluginCall<T> {
    fn drop(&mut self) {
        self.future = None;
    }
}
