//! The build profile the plugins of an output folder need, checked before `build` and `watch`
//! build anything: a plugin of another profile than its host is refused at load (the ABI
//! fingerprint says whether debug assertions are on), so building it would only waste the build.
//!
//! What the folder needs comes from, in this order:
//! 1. the host on the control socket, when it loads from this very folder: its fingerprint is
//!    in its `status` answer;
//! 2. else the libraries already in the folder, when their manifests all say the same profile
//!    (a host loading the folder loads those).
//!
//! A build of another profile stops with one line naming the flag: the profile comes from the
//! command line, never silently from whatever host happens to run, so the same command builds
//! the same bytes. `--no-profile-check` builds anyway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotswap_runtime::abi::debug_assertions_of;
use hotswap_runtime::manifest::Manifest;
use hotswap_runtime::{ControlRequest, ControlResponse, send_request};

use crate::options::Profile;

/// How long the check waits for the host's `status` answer (a host answers it at once, even
/// during a reload).
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// What says which profile the output folder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// The host answering on this socket loads from the folder.
    Host {
        /// Its control socket.
        socket: PathBuf,
    },
    /// The manifests of the libraries in the folder, all of one profile.
    Manifests {
        /// The output folder.
        folder: PathBuf,
        /// How many libraries with a manifest it holds.
        libraries: usize,
    },
}

/// The profile an output folder needs, and what says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    /// The profile.
    pub profile: Profile,
    /// What says so.
    pub evidence: Evidence,
}

/// A build of another profile than the folder needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: build {} (or pass --no-profile-check to build {} anyway)", describe(.needed), flag(.needed.profile), .requested.cargo_name())]
pub struct ProfileMismatch {
    /// What the folder needs.
    pub needed: Needed,
    /// What the build was asked for.
    pub requested: Profile,
}

fn profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Dev => "dev (debug assertions on)",
        _ => "release (debug assertions off)",
    }
}

/// The flag that builds `profile`.
fn flag(profile: Profile) -> &'static str {
    match profile {
        Profile::Dev => "with --debug",
        _ => "without --debug",
    }
}

fn describe(needed: &Needed) -> String {
    match &needed.evidence {
        Evidence::Host { socket } => {
            format!("the host on {} is a {} build", socket.display(), profile_name(needed.profile))
        }
        Evidence::Manifests { folder, libraries: 1 } => format!(
            "the library in {} is a {} build (no host on the socket loads from it)",
            folder.display(),
            profile_name(needed.profile)
        ),
        Evidence::Manifests { folder, libraries } => format!(
            "the {libraries} libraries in {} are {} builds (no host on the socket loads from it)",
            folder.display(),
            profile_name(needed.profile)
        ),
    }
}

fn profile_of(fingerprint: &str) -> Option<Profile> {
    debug_assertions_of(fingerprint).map(|on| if on { Profile::Dev } else { Profile::Release })
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// The profile of the host on `socket`, if one answers and loads from `output_dir`.
fn from_host(output_dir: &Path, socket: &Path) -> Option<Needed> {
    let Ok(ControlResponse::Serving { fingerprint: Some(fingerprint), folder: Some(folder), .. }) =
        send_request(socket, &ControlRequest::Status, STATUS_TIMEOUT)
    else {
        return None;
    };
    if !same_folder(Path::new(&folder), output_dir) {
        return None;
    }
    Some(Needed { profile: profile_of(&fingerprint)?, evidence: Evidence::Host { socket: socket.to_path_buf() } })
}

/// The one profile of the libraries in `output_dir` that have a manifest, if they agree.
fn from_manifests(output_dir: &Path) -> Option<Needed> {
    let mut profiles = Vec::new();
    for entry in std::fs::read_dir(output_dir).ok()?.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "so")
            && let Ok(Some(manifest)) = Manifest::read_beside(&path)
        {
            profiles.push(profile_of(&manifest.fingerprint)?);
        }
    }
    let first = *profiles.first()?;
    profiles.iter().all(|p| *p == first).then(|| Needed {
        profile: first,
        evidence: Evidence::Manifests { folder: output_dir.to_path_buf(), libraries: profiles.len() },
    })
}

/// The profile the plugins built into `output_dir` need: the host's on `socket` when it loads
/// from that folder, else the one of the libraries already there; `None` when neither says.
pub fn needed(output_dir: &Path, socket: &Path) -> Option<Needed> {
    from_host(output_dir, socket).or_else(|| from_manifests(output_dir))
}

/// Checks that a build of `requested` into `output_dir` gives plugins the folder's host can
/// load (see [`needed`]); returns what the folder needs, if known.
pub fn check(output_dir: &Path, socket: &Path, requested: Profile) -> Result<Option<Needed>, ProfileMismatch> {
    match needed(output_dir, socket) {
        Some(needed) if needed.profile != requested => Err(ProfileMismatch { needed, requested }),
        known => Ok(known),
    }
}
