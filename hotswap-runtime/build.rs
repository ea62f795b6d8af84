//! Computes the ABI fingerprint that host and plugins must share.
//!
//! Host and plugin each link their own copy of `hotswap-runtime`, so each computes this string
//! at its own build. The runtime refuses a library whose fingerprint differs from the host's
//! before running any of the library's code: Rust has no stable ABI, so the only safe contract
//! is "same compiler, same target, same runtime, same descriptor layout, same panic strategy".

use std::process::Command;

/// Bump when `abi::PluginDescriptor` or anything it reaches changes shape.
const LAYOUT_VERSION: u32 = 3;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let verbose = Command::new(&rustc)
        .arg("-vV")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |key: &str| {
        verbose
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "unknown".to_string())
    };
    let release = field("release:");
    let commit = field("commit-hash:");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    let panic = std::env::var("CARGO_CFG_PANIC").unwrap_or_else(|_| "unwind".to_string());
    let runtime = std::env::var("CARGO_PKG_VERSION").unwrap();
    let fingerprint = format!(
        "rustc {release} ({commit}); target {target}; hotswap-runtime {runtime}; layout {LAYOUT_VERSION}; panic {panic}"
    );
    println!("cargo:rustc-env=HOTSWAP_ABI_FINGERPRINT={fingerprint}");
    println!("cargo:rustc-env=HOTSWAP_LAYOUT_VERSION={LAYOUT_VERSION}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
