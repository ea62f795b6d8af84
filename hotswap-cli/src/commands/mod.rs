//! The command layer: the command line's grammar (clap), each command's flags turned into the
//! library's options, dispatch to the module doing the job, and what each command prints.
//! Library modules never import this one.

mod build;
mod new;
mod reload;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use build::BuildArgs;
pub use new::NewArgs;
pub use reload::{ReloadArgs, StatusArgs, UpgradeHostArgs};
pub use watch::WatchArgs;

/// The command line.
#[derive(Parser, Debug)]
#[command(version, about = "Build hotswap plugins, reload running hosts, watch sources, scaffold crates")]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// One command.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a plugin crate and write its library and manifest into an output folder.
    Build(BuildArgs),
    /// Ask a running host to reload its plugins.
    Reload(ReloadArgs),
    /// Show the generation a running host is serving, and its probation.
    Status(StatusArgs),
    /// Make the generation on probation permanent now.
    Confirm(StatusArgs),
    /// Go back to the generation the reload on probation kept ready.
    Rollback(StatusArgs),
    /// Replace the running host's process with a new binary without dropping a connection:
    /// the new host takes over the sockets, the old one drains and exits.
    UpgradeHost(UpgradeHostArgs),
    /// Rebuild plugins when their sources change and ask the host to reload.
    Watch(WatchArgs),
    /// Create a plugin or host crate from the templates and add it to the workspace.
    New(NewArgs),
}

/// Runs one parsed command; `tool` is the name printed in next steps (`cargo xtask`). Returns
/// the exit code (`reload`, `status`: see [`crate::reload::exit`]); an error exits 2.
pub fn run(cli: Cli, tool: &str) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(args).map(|()| ExitCode::SUCCESS),
        Command::Reload(args) => reload::reload(args),
        Command::Status(args) => reload::status(args),
        Command::Confirm(args) => reload::confirm(args),
        Command::Rollback(args) => reload::rollback(args),
        Command::UpgradeHost(args) => reload::upgrade_host(args),
        Command::Watch(args) => watch::run(args).map(|()| ExitCode::SUCCESS),
        Command::New(args) => new::run(args, tool).map(|()| ExitCode::SUCCESS),
    }
}
