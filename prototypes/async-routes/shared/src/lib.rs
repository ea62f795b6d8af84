//! Route A: one compiled copy of tokio, tracing and log for the whole process. The host and
//! every plugin depend on this crate (and keep writing `tokio::…`, `tracing::…`: rustc takes
//! those crates from this dylib when it links with `-C prefer-dynamic`).
pub use log;
pub use tokio;
pub use tracing;

/// The identity this crate was compiled with, inlined into whoever compiles against it.
pub const BUILD_ID: &str = env!("PROTO_SHARED_ID");

/// The identity of the library actually loaded (not inlined: a call into the dylib).
#[inline(never)]
pub fn build_id() -> &'static str {
    BUILD_ID
}
