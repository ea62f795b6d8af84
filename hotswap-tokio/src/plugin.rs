//! The plugin side: turning plain async fns into values `invoke_func` can return.

use std::any::Any;
use std::future::Future;

use hotswap_runtime::{Args, HookError, Value};
use tokio::runtime::Handle;

use crate::entered::{BoundaryFuture, Entered};

/// Serves one call of `invoke_func` with an async handler: takes the host's runtime handle
/// (argument 0, put there by [`crate::call`]) and the input (argument 1, an `A`), and
/// returns the handler's future as a [`BoundaryFuture<T>`] that enters the runtime around
/// every poll and turns a panic into an error for this call only.
///
/// Fails (an error for this call, the plugin stays usable) if the arguments are missing or of
/// other types, for example a host compiled against another tokio or other features.
pub fn serve<A, T, F, Fut>(mut args: Args, handler: F) -> Result<Value, HookError>
where
    A: Any,
    T: Any + Send,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let handle = args.take::<Handle>(0)?;
    let input = args.take::<A>(1)?;
    // Calling the handler may already touch the runtime (a non-async fn returning a future).
    let future = {
        let _runtime = handle.enter();
        handler(input)
    };
    let boxed: BoundaryFuture<T> = Box::pin(Entered::new(handle, future));
    Ok(Value::new(boxed))
}
