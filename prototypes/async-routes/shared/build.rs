//! The shared library's identity: what its compiled crates depend on (features, the flags
//! rustc got, the compiler, the target). A plugin inlines the identity it was compiled
//! against (`BUILD_ID`, a const); the host asks the loaded library (`build_id`).
use std::hash::{Hash, Hasher};

fn main() {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut keys: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("CARGO_FEATURE_")
                || k == "CARGO_ENCODED_RUSTFLAGS"
                || k == "TARGET"
                || k == "PROFILE"
                || k == "OPT_LEVEL"
                || k == "RUSTC"
        })
        .collect();
    keys.sort();
    keys.hash(&mut hasher);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc).arg("-vV").output().expect("rustc -vV").stdout;
    version.hash(&mut hasher);
    let lock = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap_or_default();
    lock.hash(&mut hasher);
    println!("cargo:rustc-env=PROTO_SHARED_ID={:016x}", hasher.finish());
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-changed=../Cargo.lock");
}
