//! Environment variables between `cargo xtask build`, `hotswap-build` (in each plugin's
//! build script) and hosts.

/// The version stamp a plugin is built with (default: the crate version).
pub const VERSION: &str = "HOTSWAP_VERSION";

/// Prefix of the per-crate version stamp ([`version_for`]), used when one build compiles
/// several plugins (a statically linked host).
pub const VERSION_PREFIX: &str = "HOTSWAP_VERSION_";

/// Regexes, one per line, of the source files to scan (added to the build script's).
pub const INCLUDE: &str = "HOTSWAP_INCLUDE";

/// Regexes, one per line, of the source files to skip (added to the build script's).
pub const EXCLUDE: &str = "HOTSWAP_EXCLUDE";

/// The prefix of live items (default `live_`).
pub const LIVE_PREFIX: &str = "HOTSWAP_LIVE_PREFIX";

/// `1`: compile each plugin's registry for linking into a host, without exported symbols.
pub const STATIC: &str = "HOTSWAP_STATIC";

/// The control socket a host listens on and `cargo xtask reload` talks to.
pub const SOCKET: &str = "HOTSWAP_SOCKET";

/// `1`: `cargo hotswap build` keeps a library's debug info in it instead of splitting it out
/// into `<name>@<version>.debug` (as `--keep-debuginfo` does).
pub const KEEP_DEBUGINFO: &str = "HOTSWAP_KEEP_DEBUGINFO";

/// Every variable above except the per-crate stamps ([`version_for`]).
pub const ALL: [&str; 8] = [VERSION, INCLUDE, EXCLUDE, LIVE_PREFIX, STATIC, SOCKET, VERSION_PREFIX, KEEP_DEBUGINFO];

/// The name of the per-crate version stamp of `package`: [`VERSION_PREFIX`] and the package
/// name in upper case, `-` as `_` (`HOTSWAP_VERSION_MY_PLUGIN`).
pub fn version_for(package: &str) -> String {
    format!("{VERSION_PREFIX}{}", package.to_uppercase().replace('-', "_"))
}

/// Host upgrades (`hotswap_runtime::handoff`): the pid of the host that started this one to
/// replace it. Set by the old host for the new one, with systemd's `LISTEN_FDS`,
/// `LISTEN_FDNAMES` and `LISTEN_PID` for the sockets it hands over.
pub const HANDOFF_FROM: &str = "HOTSWAP_HANDOFF_FROM";

/// Host upgrades: the number of the descriptor the new host writes one byte to once it is
/// ready (a pipe to the old host).
pub const HANDOFF_READY_FD: &str = "HOTSWAP_HANDOFF_READY_FD";
