//! Test fixture: a crate plugins `id_exporter` and `id_importer` link, and the test host does
//! not, so only the plugin-to-plugin comparison of crate identities covers it. The export's
//! argument [`Reading`] keeps its serial in a nested [`Meta`]; `tests/identity.rs` builds the
//! exporter against a copy in which `Meta` gains a field in front of `serial`, which leaves the
//! export's `TypeId` (`fn(&Reading) -> u64`) as it was.

/// Nested in [`Reading`].
#[derive(Debug, Default)]
pub struct Meta {
    /// Which reading this is.
    pub serial: u64,
}

/// What the importer hands the exporter's function.
#[derive(Debug, Default)]
pub struct Reading {
    /// Its serial, nested.
    pub meta: Meta,
}

impl Reading {
    /// A reading numbered `serial`.
    // `..Default::default()` keeps this compiling when `tests/identity.rs` adds a field to `Meta`.
    #[allow(clippy::needless_update)]
    pub fn new(serial: u64) -> Self {
        Reading { meta: Meta { serial, ..Default::default() } }
    }
}
