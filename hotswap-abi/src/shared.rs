//! The shared route (guide, section 10: one tokio for the process): host and plugins link one
//! Rust `dylib` crate of the user's workspace (re-exporting tokio, tracing, log…), everything
//! built with `-C prefer-dynamic`. These are the names the build tool reads from the
//! workspace's `Cargo.toml` and writes into a plugin's manifest, and the runtime reads back.
//!
//! ```toml
//! [workspace.metadata.hotswap]
//! shared = "my_shared"                      # the dylib crate host and plugins link
//! rustflags = ["--cfg", "tokio_unstable"]   # the host's other flags, added to plugin builds
//! ```

/// The table under `[workspace.metadata]`.
pub const METADATA_TABLE: &str = "hotswap";

/// The key naming the shared `dylib` crate.
pub const METADATA_SHARED: &str = "shared";

/// The key listing the flags, besides [`PREFER_DYNAMIC`], the host was built with.
pub const METADATA_RUSTFLAGS: &str = "rustflags";

/// The flags every build on the shared route needs: std and the shared crate linked as `.so`
/// files instead of copied into each binary.
pub const PREFER_DYNAMIC: [&str; 2] = ["-C", "prefer-dynamic"];

/// The manifest field recording the shared library a plugin was linked against: its file
/// name and the sha256 of its bytes.
pub const MANIFEST_FIELD: &str = "shared_library";

/// The file name of the `dylib` crate `crate_name` (`my-shared` → `libmy_shared.so` on Linux).
pub fn library_file_name(crate_name: &str) -> String {
    format!("lib{}.so", crate_name.replace('-', "_"))
}
