//! The plugin side: handing the host an `axum::Router` built by ordinary axum code.

use std::any::Any;

use axum::Router;
use hotswap_runtime::{Args, HookError, Value};

/// The name of the function through which the host asks a plugin for its router; the plugin's
/// `invoke_func` answers it with [`serve_router`].
pub const ROUTER: &str = "hotswap_axum_router";

/// Answers the host's request for this generation's router (the function [`ROUTER`]): takes
/// the host's state (argument 0, an `S`, put there by the host's `PluginRouter`; `()` when it
/// has none) and returns the router `make` builds from it.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use hotswap_runtime::{Args, HookError, Value};
///
/// pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
///     match name {
///         hotswap_axum::ROUTER => hotswap_axum::serve_router(args, router),
///         _ => Err(format!("unknown function `{name}`").into()),
///     }
/// }
///
/// fn router(_state: ()) -> Router {
///     Router::new().route("/hello", get(|| async { "Hello!" }))
/// }
/// ```
///
/// Fails (an error for this call: the host answers 500 and the plugin stays loaded) when the
/// argument is missing or of another type than `S`, for example a host that passes another
/// state type, or one compiled against another build of the crate defining it.
pub fn serve_router<S, F>(mut args: Args, make: F) -> Result<Value, HookError>
where
    S: Any,
    F: FnOnce(S) -> Router,
{
    let state = args.take::<S>(0)?;
    Ok(Value::new(make(state)))
}
