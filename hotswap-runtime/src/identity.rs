//! The crate identity check at stage `inspect`: the crates a plugin links against the crates the
//! host links (record format and comparison in [`hotswap_abi::identity`]).
//!
//! The host's record is the symbol [`HOST_IDENTITY_SYMBOL`](hotswap_abi::HOST_IDENTITY_SYMBOL)
//! that `hotswap_build::host_identity()` links into the host executable and exports; a plugin's
//! is its exported [`IDENTITY_SYMBOL`](hotswap_abi::IDENTITY_SYMBOL), read from the file
//! before `dlopen`.

use std::ffi::CStr;
use std::sync::OnceLock;

use hotswap_abi::identity::{Difference, ParseError, Record, differences};

/// Why a plugin's crate identity does not match the host's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The host executable carries no record.
    #[error(
        "the host records no crate identity (no `{}` symbol in its executable), so whether the crates it shares with the plugin have the same layouts cannot be checked; call `hotswap_build::host_identity()` (or `static_host()`) from the host's build.rs",
        hotswap_abi::HOST_IDENTITY_SYMBOL
    )]
    HostHasNone,
    /// The host's record does not parse.
    #[error("the host's crate identity is unreadable: {0}")]
    HostUnreadable(#[source] ParseError),
    /// The plugin carries no record, or an unreadable one.
    #[error(
        "the plugin's crate identity is missing or unreadable ({0}); build it with `cargo xtask build` (hotswap-build's `generate()` records it)"
    )]
    PluginUnreadable(#[source] ParseError),
    /// A crate both link was built from other sources, versions or features.
    #[error(
        "crate identity mismatch: {}. A type of such a crate could have another layout on each side; rebuild the host as well, or build the plugin against the host's version of the crate",
        .0.iter().map(Difference::to_string).collect::<Vec<_>>().join("; and ")
    )]
    Mismatch(Vec<Difference>),
    /// A plugin imports another, and a crate both link was built from other sources, versions
    /// or features: an export's type from that crate could have another layout on each side.
    #[error(
        "crate identity mismatch between plugin `{importer}` and plugin `{exporter}`, which it imports: {}. A type of such a crate could have another layout on each side; build both plugins against the same sources of the crate",
        .differences.iter().map(|d| d.describe(&format!("`{importer}`"), &format!("`{exporter}`"))).collect::<Vec<_>>().join("; and ")
    )]
    ImportMismatch {
        /// The plugin that imports.
        importer: String,
        /// The plugin it imports.
        exporter: String,
        /// `plugin` is the importer's entry, `host` the exporter's.
        differences: Vec<Difference>,
    },
}

/// The host's record, read once.
fn host_record() -> Result<&'static Record, IdentityError> {
    static HOST: OnceLock<Result<Record, IdentityError>> = OnceLock::new();
    HOST.get_or_init(|| {
        let this = libloading::os::unix::Library::this();
        let name = format!("{}\0", hotswap_abi::HOST_IDENTITY_SYMBOL);
        // SAFETY: the symbol, when present, is the NUL-terminated byte array
        // `hotswap_build::host_identity()` compiled into this very executable (a `static`,
        // never unloaded); `CStr::from_ptr` reads up to that NUL and the bytes are copied out.
        let text = unsafe {
            match this.get::<*const std::ffi::c_char>(name.as_bytes()) {
                Ok(symbol) => {
                    let ptr: *const std::ffi::c_char = *symbol;
                    Some(CStr::from_ptr(ptr).to_string_lossy().into_owned())
                }
                Err(_) => None,
            }
        };
        let text = text.ok_or(IdentityError::HostHasNone)?;
        Record::parse(&text).map_err(IdentityError::HostUnreadable)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Checks the plugin's record (`None`: the library has no identity symbol) against the host's,
/// and returns it.
pub(crate) fn check(plugin: Option<&str>) -> Result<Record, IdentityError> {
    let host = host_record()?;
    let plugin = Record::parse(plugin.unwrap_or_default()).map_err(IdentityError::PluginUnreadable)?;
    let diffs = differences(&plugin, host);
    if diffs.is_empty() { Ok(plugin) } else { Err(IdentityError::Mismatch(diffs)) }
}

/// Checks an importer's record against the record of a plugin it imports: the crates both
/// link must agree, as with the host, since the export's type may come from one of them (a
/// crate the host does not link is compared nowhere else).
pub(crate) fn check_import(
    importer: &str,
    importer_crates: &Record,
    exporter: &str,
    exporter_crates: &Record,
) -> Result<(), IdentityError> {
    let diffs = differences(importer_crates, exporter_crates);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(IdentityError::ImportMismatch {
            importer: importer.to_string(),
            exporter: exporter.to_string(),
            differences: diffs,
        })
    }
}
