//! Reading a plugin file without loading it.
//!
//! Used by the runtime before `dlopen` and by `cargo xtask build` to write the manifest: the
//! fingerprint symbol is a plain byte array, so it can be read from the file's bytes.

use object::{Object, ObjectSection, ObjectSymbol};
use sha2::{Digest, Sha256};

use crate::abi::{DESCRIPTOR_SYMBOL, FINGERPRINT_SYMBOL};

/// What the file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// The plugin's ABI fingerprint.
    pub fingerprint: String,
}

/// Why a file is not a plugin we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Not a shared library at all (or a truncated one).
    #[error("not a valid shared library ({0})")]
    NotALibrary(String),
    /// A shared library, but not a hotswap plugin.
    #[error("not a hotswap plugin: the library exports no `{0}` symbol (build it with hotswap-build and `hotswap_runtime::plugin!()`)")]
    NotAPlugin(&'static str),
    /// The fingerprint symbol could not be read.
    #[error("unreadable ABI fingerprint: {0}")]
    BadFingerprint(String),
}

/// Reads the fingerprint of the plugin in `bytes` (the whole file).
pub fn inspect(bytes: &[u8]) -> Result<FileFacts, InspectError> {
    let file = object::File::parse(bytes).map_err(|e| InspectError::NotALibrary(e.to_string()))?;
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(InspectError::NotALibrary(format!("object kind is {:?}, not a shared library", file.kind())));
    }
    // A library cut short often still parses; make sure every section it claims is present.
    for section in file.sections() {
        if let Some((offset, size)) = section.file_range() {
            if offset.checked_add(size).is_none_or(|end| end > bytes.len() as u64) {
                return Err(InspectError::NotALibrary(format!(
                    "truncated: section `{}` ends past the end of the file ({} bytes)",
                    section.name().unwrap_or("?"),
                    bytes.len()
                )));
            }
        }
    }
    let mut fingerprint = None;
    let mut has_descriptor = false;
    for symbol in file.dynamic_symbols() {
        match symbol.name() {
            Ok(name) if name == FINGERPRINT_SYMBOL => fingerprint = Some(symbol),
            Ok(name) if name == DESCRIPTOR_SYMBOL => has_descriptor = true,
            _ => {}
        }
    }
    if !has_descriptor {
        return Err(InspectError::NotAPlugin(DESCRIPTOR_SYMBOL));
    }
    let symbol = fingerprint.ok_or(InspectError::NotAPlugin(FINGERPRINT_SYMBOL))?;
    let section = symbol
        .section_index()
        .and_then(|i| file.section_by_index(i).ok())
        .ok_or_else(|| InspectError::BadFingerprint("symbol has no section".into()))?;
    let data = section.data().map_err(|e| InspectError::BadFingerprint(e.to_string()))?;
    let start = symbol
        .address()
        .checked_sub(section.address())
        .ok_or_else(|| InspectError::BadFingerprint("symbol lies outside its section".into()))?
        as usize;
    let bytes = data
        .get(start..start + symbol.size() as usize)
        .ok_or_else(|| InspectError::BadFingerprint("symbol lies outside its section".into()))?;
    let fingerprint = String::from_utf8(bytes.to_vec()).map_err(|e| InspectError::BadFingerprint(e.to_string()))?;
    Ok(FileFacts { fingerprint })
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
