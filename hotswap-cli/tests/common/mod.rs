//! Helpers shared by the command-line tests.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The hotswap repository.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The command's stdout, after asserting it succeeded (else both streams are shown).
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn ok(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
