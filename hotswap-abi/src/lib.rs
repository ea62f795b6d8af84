//! The one definition of the contract between a hotswap host, its plugins and the tools that
//! build them. `hotswap-runtime` (both sides of the boundary), `hotswap-build` (the code
//! generator in each plugin's build script) and `hotswap-cli` (`cargo xtask build`) all take
//! these names from here, and a tidy test (`hotswap-build/tests/tidy.rs`) fails if one of them
//! is written as a literal anywhere else.
//!
//! * [`LAYOUT_VERSION`] and the exported symbol names derived from it ([`DESCRIPTOR_SYMBOL`],
//!   [`FINGERPRINT_SYMBOL`], [`NAME_SYMBOL`], [`VERSION_SYMBOL`]);
//! * the hooks a plugin defines ([`Hook`]);
//! * the environment variables between the CLI, the build scripts and hosts ([`env`](mod@env));
//! * the crate identity record host and plugin compare at load ([`identity`]), and the symbols
//!   carrying it ([`IDENTITY_SYMBOL`], [`HOST_IDENTITY_SYMBOL`]);
//! * the shared route's workspace keys and manifest field ([`shared`]);
//! * how a plugin's `tracing` events and `log` records reach the host ([`logs`]).
//!
//! This crate has no dependencies and no build script. Its sources are part of the ABI
//! fingerprint: `hotswap-runtime`'s build script adds [`SOURCE_HASH`] to it.

#![warn(missing_docs, missing_debug_implementations)]

pub mod env;
mod hook;
pub mod identity;
pub mod logs;
pub mod shared;

pub use hook::Hook;

/// The descriptor layout version, as a literal for `concat!`. Bump it when
/// `hotswap_runtime::abi::PluginDescriptor` or anything it reaches changes shape: the exported
/// symbol names change with it, so a library of another layout is never misread.
#[macro_export]
#[doc(hidden)]
macro_rules! __layout_version {
    () => {
        6
    };
}

/// Version of the descriptor layout; part of the ABI fingerprint and of every symbol name.
pub const LAYOUT_VERSION: u32 = __layout_version!();

/// Name of the exported `PluginDescriptor`, read after `dlopen`.
pub const DESCRIPTOR_SYMBOL: &str = concat!("HOTSWAP_PLUGIN_DESCRIPTOR_V", __layout_version!());

/// Name of the exported byte array holding the ABI fingerprint, read from the file before
/// `dlopen`.
pub const FINGERPRINT_SYMBOL: &str = concat!("HOTSWAP_ABI_FINGERPRINT_V", __layout_version!());

/// Name of the exported byte array holding the plugin name.
pub const NAME_SYMBOL: &str = concat!("HOTSWAP_PLUGIN_NAME_V", __layout_version!());

/// Name of the exported byte array holding the version stamp.
pub const VERSION_SYMBOL: &str = concat!("HOTSWAP_PLUGIN_VERSION_V", __layout_version!());

/// Name of the exported byte array holding the plugin's crate identity record
/// ([`identity`]), read from the file before `dlopen`.
pub const IDENTITY_SYMBOL: &str = concat!("HOTSWAP_CRATE_IDENTITY_V", __layout_version!());

/// Name of the NUL-terminated byte array holding the host's crate identity record, which
/// `hotswap_build::host_identity()` links into the host executable and exports, so that the
/// runtime finds it with `dlsym`.
pub const HOST_IDENTITY_SYMBOL: &str = concat!("HOTSWAP_HOST_IDENTITY_V", __layout_version!());

/// Every symbol a dynamic plugin exports, in the order the generated registry defines them.
pub const SYMBOLS: [&str; 5] = [FINGERPRINT_SYMBOL, NAME_SYMBOL, VERSION_SYMBOL, IDENTITY_SYMBOL, DESCRIPTOR_SYMBOL];

/// This crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// FNV-1a hash of this crate's sources, for the ABI fingerprint: a contract edited in place
/// (a patched checkout, a `[patch]` section) changes the fingerprint even when the version
/// number does not.
pub const SOURCE_HASH: u64 = {
    let files: [&str; 6] = [
        include_str!("lib.rs"),
        include_str!("hook.rs"),
        include_str!("env.rs"),
        include_str!("identity.rs"),
        include_str!("shared.rs"),
        include_str!("logs.rs"),
    ];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut f = 0;
    while f < files.len() {
        let bytes = files[f].as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        // A separator, so that moving text between files changes the hash.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        f += 1;
    }
    hash
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_names_carry_the_layout_version() {
        for symbol in SYMBOLS {
            assert!(symbol.starts_with("HOTSWAP_"), "{symbol}");
            assert!(symbol.ends_with(&format!("_V{LAYOUT_VERSION}")), "{symbol}");
            assert!(symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'), "{symbol}");
        }
    }

    #[test]
    fn every_source_file_is_hashed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut names: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            ["env.rs", "hook.rs", "identity.rs", "lib.rs", "logs.rs", "shared.rs"],
            "add new files to SOURCE_HASH"
        );
    }
}
