//! The hotswap commands, as a library: build a plugin with a version stamp, ask a running host
//! to reload, watch plugin sources and rebuild and reload on every save, and scaffold new
//! plugin and host crates. The hotswap repository's `cargo xtask` and the installable
//! `cargo hotswap` binary are both [`main`] with a different name, and so can your own
//! workspace's xtask be:
//!
//! ```no_run
//! // xtask/src/main.rs, with `hotswap-cli` as a dependency and, in .cargo/config.toml,
//! // [alias] xtask = "run --quiet --package xtask --"
//! fn main() -> std::process::ExitCode {
//!     hotswap_cli::main("cargo xtask")
//! }
//! ```
//!
//! Commands (`<tool> help <command>` for every flag):
//!
//! * `build <pluginDir> <outputDir> [-- cargo args]`: builds the plugin crate (release unless
//!   `--debug`) with the stamp `<version>+g<commit>[.dirty].h<inputs>` (a hash of everything
//!   that decides the library, see [`stamp`]), with paths remapped only with `--reproducible`
//!   (so the bytes do not depend on the checkout's location), and writes `<name>@<version>.so`
//!   and its JSON manifest into `outputDir`, each by rename, so a host never sees half a file;
//!   an identical library already there is kept as it is. Before building, it stops when the
//!   host loading `outputDir` (or else the libraries already there) needs the other profile
//!   ([`host_profile`]). `--static-linking <hostDir> <outputDir>` builds a host with its
//!   plugins linked in instead. A workspace on the shared route (one Rust `dylib` for host and
//!   plugins, `[workspace.metadata.hotswap] shared = "<crate>"`) gets its plugins built with
//!   `-C prefer-dynamic` against the host's build of that crate ([`shared_route`]).
//! * `reload` / `status`: talk to a running host's control socket; `reload` exits 0 when the
//!   host accepted, 1 when it refused (and keeps serving the old code), 2 when no host listens,
//!   3 when it is busy, 4 when it gives no answer in time, 5 when this user may not use the
//!   socket, 6 when the answering process runs as another user, 7 on any other error (see
//!   [`reload::exit`]); `--json` prints one [`reload::Outcome`].
//! * `watch <pluginDir>… <outputDir>`: rebuilds the plugin whose sources changed and reloads,
//!   one line per cycle; failures leave the host as it was and the watch running.
//! * `new plugin|host <path>`: a crate from the repository's `templates/`, added to the
//!   workspace; never overwrites anything.
//!
//! The pieces are public too, for tools of your own, with plain options instead of the
//! command line's flags: [`plugin_build::build`] (with [`BuildOptions`]) returns what it built,
//! [`static_build::build`] the static host, [`reload::ask`] a host's answer,
//! [`watch::run`] (with [`watch::WatchOptions`]) watches, [`scaffold::scaffold`] (with
//! [`scaffold::NewOptions`]) returns what it created.
//!
//! Modules, each one job: [`commands`] is the command line (clap) and what each command
//! prints, and the only module that dispatches; the library modules below it never import it
//! nor each other in a cycle (a tidy test, `tests/tidy.rs`, keeps it so).
//!
//! Errors are [`anyhow`] reports with their causes kept as sources (running cargo fails with a
//! typed [`cargo::CargoError`] inside): this crate is the command line's body, and every error
//! ends as a message for a person.

#![warn(missing_docs)]

pub mod answer;
pub mod atomic;
pub mod build_cache;
pub mod build_cache_file;
pub mod cargo;
pub mod commands;
pub mod host_profile;
pub mod options;
pub mod output_dir;
pub mod package;
pub mod paths;
pub mod plugin_build;
pub mod reload;
pub mod repro;
pub mod scaffold;
pub mod settle;
pub mod shared_route;
pub mod split_debug;
pub mod staged;
pub mod stamp;
pub mod static_build;
pub mod strip_debug;
pub mod watch;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

pub use commands::{Cli, Command, run};
pub use options::BuildOptions;

/// Parses the process's arguments and runs the command, printing errors; `tool` is the name
/// shown in help and in printed next steps (`"cargo xtask"`, `"cargo hotswap"`). When run by
/// cargo as an external subcommand (`cargo hotswap …` runs `cargo-hotswap hotswap …`), the
/// repeated subcommand name is skipped.
pub fn main(tool: &str) -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(sub) = tool.strip_prefix("cargo ")
        && args.get(1).is_some_and(|a| a == sub)
    {
        args.remove(1);
    }
    // clap keeps a command's name as a `&'static str`; this runs once per process.
    let name: &'static str = Box::leak(tool.to_owned().into_boxed_str());
    let command = Cli::command().name(name).bin_name(name);
    let cli = match command.try_get_matches_from(args).and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match commands::run(cli, tool) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
