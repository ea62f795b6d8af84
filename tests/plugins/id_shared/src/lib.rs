//! Test fixture: a crate both the test host (`hotswap-tests`) and plugin `id_user` link. The
//! host hands every generation a [`Clock`] as its extension; `Clock` keeps its serial in a
//! nested [`Meta`]. `tests/identity.rs` builds the plugin against a copy of this crate in which
//! `Meta` gains a field in front of `serial`: `TypeId::of::<Clock>()` does not change (rustc
//! hashes a struct's fields by path, not by layout), so only the crate identity check stands
//! between that plugin and a misread `Clock`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Nested in [`Clock`].
#[derive(Debug, Default)]
pub struct Meta {
    /// Which clock this is.
    pub serial: u64,
}

/// The host's extension.
#[derive(Debug, Default)]
pub struct Clock {
    /// Its serial, nested.
    pub meta: Meta,
    /// Requests counted by plugins.
    pub requests: AtomicU64,
}

impl Clock {
    /// A clock numbered `serial`.
    // `..Default::default()` keeps this compiling when `tests/identity.rs` adds a field to `Meta`.
    #[allow(clippy::needless_update)]
    pub fn new(serial: u64) -> Self {
        Clock { meta: Meta { serial, ..Default::default() }, requests: AtomicU64::new(0) }
    }

    /// Counts one request; returns the count including it.
    pub fn count_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }
}
