//! Computes the ABI fingerprint that host and plugins must share.
//!
//! Host and plugin each link their own copy of `hotswap-runtime`, so each computes this string
//! at its own build. The runtime refuses a library whose fingerprint differs from the host's
//! before running any of the library's code: Rust has no stable ABI, so the only safe contract
//! is "same compiler, same target, same runtime, same descriptor layout". The panic strategy
//! and debug assertions are added by `abi::FINGERPRINT` with `cfg!`-style attributes: only the
//! crate itself sees what the compiler did (a profile's `panic = "abort"` never reaches
//! `CARGO_CFG_PANIC`).

use std::process::Command;

/// Bumped in `hotswap-abi` when `abi::PluginDescriptor` or anything it reaches changes shape.
use hotswap_abi::LAYOUT_VERSION;

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
    let runtime = std::env::var("CARGO_PKG_VERSION").unwrap();
    let source = source_hash();
    // The contract crate is part of the ABI too: its version and a hash of its sources
    // (computed by the crate itself, so this works from a registry download as well).
    let (abi, abi_source) = (hotswap_abi::VERSION, hotswap_abi::SOURCE_HASH);
    let cfg = cfg_hash();
    let fingerprint = format!(
        "rustc {release} ({commit}); target {target}; hotswap-runtime {runtime} (source {source:016x}); hotswap-abi {abi} (source {abi_source:016x}); layout {LAYOUT_VERSION}; cfg {cfg:016x}"
    );
    // Build script to this crate only (read by `abi::FINGERPRINT` with `env!`).
    println!("cargo:rustc-env=HOTSWAP_ABI_FINGERPRINT={fingerprint}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=RUSTC");
    for flags in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"] {
        println!("cargo:rerun-if-env-changed={flags}");
    }
}

/// A hash of the configuration the build compiles every crate with, which can change a type's
/// layout: the `cfg` values (custom ones from `--cfg` in RUSTFLAGS, such as `tokio_unstable`,
/// and `target_feature`, which `-C target-feature` and `-C target-cpu` change). Left out: what
/// differs between a host and its plugins without changing layouts (this crate's features),
/// and what the fingerprint names on its own (the panic strategy, debug assertions).
fn cfg_hash() -> u64 {
    const OWN_FIELDS: [&str; 7] = [
        "CARGO_CFG_FEATURE",
        "CARGO_CFG_PANIC",
        "CARGO_CFG_DEBUG_ASSERTIONS",
        "CARGO_CFG_OVERFLOW_CHECKS",
        "CARGO_CFG_UB_CHECKS",
        "CARGO_CFG_RELOCATION_MODEL",
        "CARGO_CFG_CONTRACT_CHECKS",
    ];
    let mut cfgs: Vec<(String, String)> =
        std::env::vars().filter(|(k, _)| k.starts_with("CARGO_CFG_") && !OWN_FIELDS.contains(&k.as_str())).collect();
    cfgs.sort();
    let mut text = String::new();
    for (key, value) in &cfgs {
        text.push_str(&format!("{key}={value}\n"));
    }
    hotswap_abi::identity::fnv1a(text.as_bytes())
}

/// A hash of this crate's sources. The version number alone does not change while the runtime
/// itself is being edited (or patched by a user), yet a changed type layout must still refuse
/// plugins built from the older sources.
fn source_hash() -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut files = Vec::new();
    let mut folders = vec![std::path::PathBuf::from("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("the runtime's src folder is readable") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    // DefaultHasher::new() uses fixed keys: the same sources give the same hash.
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.to_string_lossy().hash(&mut hasher);
        std::fs::read(&file).expect("readable source").hash(&mut hasher);
    }
    hasher.finish()
}
