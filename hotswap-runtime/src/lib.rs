//! Load Rust plugins (`cdylib` crates) into a running host and swap them for new builds
//! between calls, without blocking calls in flight and without restarting.
//!
//! A [`PluginManager`] loads a folder of plugin libraries as one [`Generation`]: it copies
//! each library to a fresh path, checks its ABI fingerprint before running any of its code,
//! opens it with `RTLD_NOW`, runs its hooks (`reloadable`, `export`, `import`, `on_load`, vault
//! set-up, `on_init`) in dependency order, and publishes the generation with one atomic swap.
//! Calls look up the current generation once and run on it to the end, so a reload never
//! waits for a call and a call never waits for a reload. If anything in a reload fails,
//! nothing is published and the old generation keeps serving.
//!
//! Plugins are written as ordinary functions and registered by `hotswap-build` from their
//! `build.rs`; the plugin includes the generated registry with [`plugin!`].
//!
//! ```no_run
//! use hotswap_runtime::{args, PluginManager};
//!
//! let manager = PluginManager::builder("plugins").build()?;
//! manager.load_plugins()?;
//! let greeter = manager.find_plugin("greeter").expect("greeter is loaded");
//! let text: String = greeter.invoke("greet", args!["world".to_string()])?;
//! println!("{text} (from {} {})", greeter.name(), greeter.version());
//! // Later, after `cargo xtask build`: swap in the new build.
//! manager.reload()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # When libraries are unloaded
//!
//! A replaced generation gets `on_free` after the free delay, once no [`Plugin`] handle
//! refers to it. Its library stays mapped while anything the runtime hands out can still
//! point into it: a generation, its [`Vault`], a [`Plugin`] handle, a [`Value`] the plugin
//! returned, a [`LiveFn`] handle. When the last of those goes, the library is released, and
//! the [`retention`] policy closes released libraries beyond the most recent few, which
//! bounds memory over any number of reloads for plugins that unload cleanly (a library that
//! `dlclose` leaves mapped, because a thread the plugin started still runs, is reported as
//! such). What the runtime cannot see (threads a plugin
//! did not join, raw pointers it leaked) is the plugin's duty; a plugin that cannot meet it
//! is built with `hotswap_build::Config::unloadable(false)`, and a host can choose
//! [`PluginManagerBuilder::never_unload`].
//!
//! # Static linking
//!
//! For debuggers and platforms without `dlopen`, `cargo xtask build --static-linking` links
//! the plugins into the host; the host passes them to
//! [`PluginManagerBuilder::static_plugins`] (see [`static_plugins!`]).
//!
//! # Upgrading the host itself
//!
//! Plugins reload in place; a new host binary takes over from the running process through
//! [`handoff`]: the listening sockets and the control socket pass to the new process, which
//! loads its plugins and says it is ready, and the old one then drains and exits.
//!
//! # Features
//!
//! `host` (default): the plugin manager, loader, ELF inspection, control socket, signals,
//! host upgrades and retention, and the crates only they need. Plugins depend on this crate with
//! `default-features = false`. The feature adds and removes whole modules only, so a plugin
//! built without it and a host built with it agree on every type that crosses the boundary.

#![warn(missing_docs, missing_debug_implementations)]

pub mod abi;
pub mod live;
mod maker_drop;
mod plugin_logs;
mod value;
mod vault;

// The host side (see the `host` feature in Cargo.toml): plugins are built without it.
#[cfg(feature = "host")]
mod control;
#[cfg(feature = "host")]
mod error;
#[cfg(feature = "host")]
mod fingerprint;
#[cfg(feature = "host")]
pub mod handoff;
#[cfg(feature = "host")]
mod host_logs;
#[cfg(feature = "host")]
mod identity;
#[cfg(feature = "host")]
pub mod inspect;
#[cfg(feature = "host")]
mod library_file;
#[cfg(feature = "host")]
mod loader;
#[cfg(feature = "host")]
mod manager;
#[cfg(feature = "host")]
pub mod manifest;
#[cfg(feature = "host")]
pub mod retention;
#[cfg(feature = "host")]
mod shared_library;
#[cfg(feature = "host")]
mod signals;

#[doc(hidden)]
pub mod private;
#[doc(hidden)]
pub use private as __private;

pub use live::{
    LiveCall, LiveData, LiveError, LiveFn, LiveFuncInfo, LiveHandle, LiveMigrate, LiveType, LiveTypeInfo,
    SignatureMismatch,
};
pub use value::{ArgError, Args, TypeMismatch, Value};
pub use vault::{Export, Extension, Vault, VaultError};

#[cfg(feature = "host")]
pub use control::{
    ControlConfig, ControlError, ControlRequest, ControlResponse, ControlServer, IgnoredAnswer, PluginAnswer,
    ReloadInProgress, StageTime, default_socket_path, send_request,
};
#[cfg(feature = "host")]
pub use error::{InvokeError, LoadError, LoadErrorKind, Stage};
#[cfg(feature = "host")]
pub use identity::IdentityError;
#[cfg(feature = "host")]
pub use manager::{
    DEFAULT_MAX_LIBRARY_SIZE, DEFAULT_RELOAD_DEADLINE, Generation, HealthCheck, HotFn, IgnoredFile, IgnoredReason,
    LiveTasks, MemoryReport, Plugin, PluginManager, PluginManagerBuilder, PluginOrigin, PluginReport, Probation,
    ProbationEnd, ProbationError, ProbationResult, ProbationStatus, ReloadCallback, ReloadCallbackGuard,
    ReloadProgress, ReloadReport, TaskCensus,
};
#[cfg(feature = "host")]
pub use manifest::{Manifest, ManifestError, ManifestMismatch, SharedLibrary};
#[cfg(feature = "host")]
pub use shared_library::SharedLibraryError;
#[cfg(feature = "host")]
pub use signals::SignalReloader;

/// The error type plugin hooks return; any error (or `String`, or `&str`) converts into it
/// with `?` or `.into()`.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// What `on_load` and `on_init` return.
pub type HookResult = Result<(), HookError>;

/// What `on_load` learns about the plugin being loaded.
#[derive(Debug, Clone)]
pub struct LoadContext {
    /// Plugin name.
    pub plugin: String,
    /// Version stamp.
    pub version: String,
    /// Number of the generation being built.
    pub generation: u64,
    /// The file the library was loaded from.
    pub file: std::path::PathBuf,
}

/// In a host: includes the `static_plugins()` function that `hotswap_build::static_host()`
/// generated (empty unless the host was built by `cargo xtask build --static-linking`), for
/// [`PluginManagerBuilder::static_plugins`].
#[macro_export]
macro_rules! static_plugins {
    () => {
        include!(concat!(env!("OUT_DIR"), "/hotswap_static_plugins.rs"));
    };
}

/// Includes the registry `hotswap-build` generated for this plugin. Put it once at the root
/// of the plugin's `lib.rs`.
#[macro_export]
macro_rules! plugin {
    () => {
        include!(concat!(env!("OUT_DIR"), "/hotswap_registry.rs"));
    };
}
