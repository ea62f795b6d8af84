//! Reading a plugin file without loading it.
//!
//! Used by the runtime before `dlopen`, and by `cargo xtask build` to write the manifest. The
//! fingerprint, name and version symbols are plain byte arrays without relocations, so they
//! can be read from the file's bytes without running any of its code.

use object::{Object, ObjectSection, ObjectSymbol};
use sha2::{Digest, Sha256};

use crate::abi::{DESCRIPTOR_SYMBOL, FINGERPRINT_SYMBOL, NAME_SYMBOL, VERSION_SYMBOL};
use hotswap_abi::IDENTITY_SYMBOL;

/// What the file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// The plugin's ABI fingerprint.
    pub fingerprint: String,
    /// The plugin's name.
    pub name: String,
    /// The plugin's version stamp.
    pub version: String,
    /// The plugin's crate identity record (`hotswap_abi::identity`); `None` when the library
    /// exports no such symbol. The loader refuses a library without one, or whose record
    /// differs from the host's for a crate both link.
    pub identity: Option<String>,
}

/// Why a file is not a plugin we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Not a shared library at all (or a truncated one).
    #[error("not a valid shared library ({0})")]
    NotALibrary(String),
    /// A shared library, but not a hotswap plugin.
    #[error(
        "not a hotswap plugin: the library exports no `{0}` symbol (build it with hotswap-build and `hotswap_runtime::plugin!()`)"
    )]
    NotAPlugin(&'static str),
    /// A symbol could not be read.
    #[error("unreadable `{0}` symbol: {1}")]
    BadSymbol(&'static str, String),
}

/// Reads the fingerprint, name, version and crate identity of the plugin in `bytes` (the whole file).
pub fn inspect(bytes: &[u8]) -> Result<FileFacts, InspectError> {
    let file = object::File::parse(bytes).map_err(|e| InspectError::NotALibrary(e.to_string()))?;
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(InspectError::NotALibrary(format!("object kind is {:?}, not a shared library", file.kind())));
    }
    // A library cut short often still parses; make sure every section it claims is present.
    for section in file.sections() {
        if let Some((offset, size)) = section.file_range()
            && offset.checked_add(size).is_none_or(|end| end > bytes.len() as u64)
        {
            return Err(InspectError::NotALibrary(format!(
                "truncated: section `{}` ends past the end of the file ({} bytes)",
                section.name().unwrap_or("?"),
                bytes.len()
            )));
        }
    }
    if !file.dynamic_symbols().any(|s| s.name() == Ok(DESCRIPTOR_SYMBOL)) {
        return Err(InspectError::NotAPlugin(DESCRIPTOR_SYMBOL));
    }
    Ok(FileFacts {
        fingerprint: read_bytes_symbol(&file, FINGERPRINT_SYMBOL)?,
        name: read_bytes_symbol(&file, NAME_SYMBOL)?,
        version: read_bytes_symbol(&file, VERSION_SYMBOL)?,
        identity: match read_bytes_symbol(&file, IDENTITY_SYMBOL) {
            Ok(text) => Some(text),
            Err(InspectError::NotAPlugin(_)) => None,
            Err(e) => return Err(e),
        },
    })
}

/// Reads a `[u8; N]` static exported under `name`, as UTF-8.
fn read_bytes_symbol(file: &object::File<'_>, name: &'static str) -> Result<String, InspectError> {
    let symbol = file.dynamic_symbols().find(|s| s.name() == Ok(name)).ok_or(InspectError::NotAPlugin(name))?;
    let bad = |why: &str| InspectError::BadSymbol(name, why.to_string());
    let section =
        symbol.section_index().and_then(|i| file.section_by_index(i).ok()).ok_or_else(|| bad("it has no section"))?;
    let data = section.data().map_err(|e| InspectError::BadSymbol(name, e.to_string()))?;
    let start = symbol.address().checked_sub(section.address()).ok_or_else(|| bad("it lies outside its section"))?;
    let start = usize::try_from(start).map_err(|_| bad("it lies outside its section"))?;
    let len = usize::try_from(symbol.size()).map_err(|_| bad("it is too large"))?;
    let bytes = data.get(start..start.saturating_add(len)).ok_or_else(|| bad("it lies outside its section"))?;
    String::from_utf8(bytes.to_vec()).map_err(|e| InspectError::BadSymbol(name, e.to_string()))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    use std::fmt::Write;
    digest.iter().fold(String::with_capacity(digest.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
