//! One compiled copy of tokio (and libc) for the host and every plugin. They depend on this
//! crate and keep writing `tokio::…`: with `-C prefer-dynamic`, rustc links those crates from
//! this dylib instead of copying them into each binary.
pub use libc;
pub use tokio;
