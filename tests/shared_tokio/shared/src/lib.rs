//! One compiled copy of tokio, tracing and log (and libc, and the host's subscriber) for the
//! host and every plugin: one runtime context, one dispatcher, one logger. They depend on this
//! crate and keep writing `tokio::…`: with `-C prefer-dynamic`, rustc links those crates from
//! this dylib instead of copying them into each binary.
pub use libc;
pub use log;
pub use tokio;
pub use tracing;
pub use tracing_subscriber;

/// Only in the `other` build of this library: makes its file differ from the host's.
#[cfg(feature = "other")]
pub fn other_build() -> &'static str {
    "other"
}
