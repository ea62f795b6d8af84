//! The type the extension demo's host hands every generation of plugins as its extension.
//!
//! It lives in a crate of its own because the host and the plugins must name the very same
//! type: the vault finds the extension by `TypeId`, and a struct copied into each crate would
//! be a different type in each.
//!
//! # Build host and plugins in the same profile
//!
//! The `TypeId` of a type from this crate depends on the hash cargo gives the crate, and that
//! hash depends on the profile and the features it was built with. `cargo xtask build` builds
//! plugins in release, so the host is built with `--release` too (see `run.sh`). A host built
//! in another profile sees a different `RequestClock`: the plugins' `vault.extension` then
//! fails with a clear `VaultError::ExtensionType` error and the reload is refused; it never
//! reinterprets memory.

#![warn(missing_docs, missing_debug_implementations)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Per-generation request bookkeeping: when the generation's clock was made and how many
/// requests its plugins served.
///
/// The host gives each generation a fresh one (`PluginManagerBuilder::extension_newer`), so
/// it shows what belongs to a generation and is lost on reload, as opposed to the state the
/// host keeps itself. Its methods take `&self` because the vault hands out shared references.
#[derive(Debug)]
pub struct RequestClock {
    created: Instant,
    serial: u64,
    requests: AtomicU64,
}

impl RequestClock {
    /// A clock started now. `serial` numbers the clocks the host made: it matches the
    /// generation number unless a reload was refused after its vault was set up.
    pub fn new(serial: u64) -> Self {
        RequestClock { created: Instant::now(), serial, requests: AtomicU64::new(0) }
    }

    /// Which clock this is (1 for the first the host made).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// When it was made, i.e. when its generation was being built.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Time since it was made.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// Counts one request and returns the count including it.
    pub fn count_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Requests counted so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_clock_counts_from_zero() {
        let clock = RequestClock::new(3);
        assert_eq!(clock.serial(), 3);
        assert_eq!(clock.requests(), 0);
        assert_eq!(clock.count_request(), 1);
        assert_eq!(clock.count_request(), 2);
        assert_eq!(clock.requests(), 2);
    }
}
