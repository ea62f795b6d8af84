//! Async plugins on tokio.
//!
//! Every `cdylib` carries its own copy of tokio, and with it its own thread-local runtime
//! context. Plugin code that calls `tokio::time::sleep`, opens a `tokio::net::TcpStream` or
//! calls `tokio::spawn` looks in the *plugin's* copy of that thread-local, finds nothing there
//! and panics with "there is no reactor running", even while the host's runtime is polling it.
//! This crate is the supported way around that:
//!
//! * in the plugin, [`serve`] turns a plain `async fn(Input) -> Output` into the value
//!   `invoke_func` returns: a boxed future that enters the host's runtime
//!   ([`tokio::runtime::Handle::enter`]) in the plugin's copy of tokio around **every poll**
//!   (and around its drop), and catches a panic inside the plugin (a panic unwinding out of the
//!   plugin's copy of std would be a foreign exception to the host, which aborts);
//! * in the host, [`call`] passes the current runtime handle to the plugin, takes the future
//!   out, and returns a [`PluginCall`]: a future that holds the
//!   [`Plugin`](hotswap_runtime::Plugin) handle, and so its generation and library, until it
//!   completes or is dropped. A request in flight during a reload finishes on the old code;
//!   the next call finds the new code.
//!
//! With a copy of tokio in each plugin, plugin code must not `tokio::spawn` (or
//! `spawn_blocking`): a spawned task is polled by the host's runtime without this wrapper, so
//! it finds no runtime in the plugin's copy of tokio, a panic in it would unwind out of the
//! plugin, and nothing ties its code to its generation. Run concurrent work inside the
//! handler's own future instead (combine futures, for example with the `futures` crate's
//! `join` or `select`). See the guide's "Async plugins" section.
//!
//! On the shared route (one tokio for the process, a Rust `dylib` that host and plugins link,
//! guide section 10), plugin code spawns like any tokio code. There the host builds its
//! runtime with `runtime_builder` and `PluginTasks` (feature `shared`, which needs
//! `--cfg tokio_unstable`): tokio task hooks that keep the plugin library a task was spawned
//! from mapped, count live tasks per library and keep the spawn's `tracing` span; and a plugin
//! cancels its own tasks in `on_free` with a [`TaskGroup`].
//!
//! Host and plugins must compile the same tokio with the same features (pin it in the
//! workspace, and let no plugin add features): the handle is checked by `TypeId` when the
//! plugin takes it, so a mismatch is an argument error for that call, never a misread.
//!
//! ```no_run
//! # async fn host(manager: hotswap_runtime::PluginManager) -> Result<(), hotswap_tokio::CallError> {
//! // host, inside the runtime
//! let plugin = manager.find_plugin("greeter").expect("loaded");
//! let text: String = hotswap_tokio::call(plugin, "greet", "world".to_string())?.await?;
//! # Ok(()) }
//! // plugin
//! use hotswap_runtime::{Args, HookError, Value};
//! pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
//!     match name {
//!         "greet" => hotswap_tokio::serve(args, greet),
//!         _ => Err(format!("unknown function `{name}`").into()),
//!     }
//! }
//! async fn greet(who: String) -> String {
//!     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//!     format!("Hello, {who}!")
//! }
//! ```

#![warn(missing_docs, missing_debug_implementations)]

mod entered;
mod group;
#[cfg(feature = "host")]
mod host;
mod plugin;
#[cfg(feature = "shared")]
mod tasks;

pub use entered::BoundaryFuture;
pub use group::TaskGroup;
#[cfg(feature = "host")]
pub use host::{CallError, PluginCall, call};
pub use plugin::serve;
#[cfg(feature = "shared")]
pub use tasks::{PluginTasks, runtime_builder};
