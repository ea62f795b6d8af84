//! Building the shared-route fixture workspaces (`tests/shared_tokio/`, `tests/shared_axum/`):
//! each has its own workspace and target folder, everything built with [`FLAGS`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The flags every crate of a shared-route fixture is built with: std and the shared dylib
/// linked dynamically, and tokio's task hooks.
pub const FLAGS: &str = "-C prefer-dynamic --cfg tokio_unstable";

/// `cargo` without the caller's rustflags: the fixture's flags replace any the caller set,
/// and none may leak into the toolkit's build.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS").env_remove("CARGO_BUILD_RUSTFLAGS");
    command
}

/// The stdout of a command that must have succeeded; fails the test naming `what`, with both
/// outputs, otherwise.
pub fn check(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The toolkit's own target folder (`CARGO_TARGET_DIR` if set).
pub fn toolkit_target(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}
