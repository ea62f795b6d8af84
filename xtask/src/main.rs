//! `cargo xtask`: the hotswap developer commands.
//!
//! * `cargo xtask build <pluginDir> <outputDir>` builds a plugin crate with a version stamp and
//!   writes `<name>@<version>.so` and its JSON manifest into `outputDir`, atomically.
//! * `cargo xtask reload` asks a running host to load the newest plugins and reports whether
//!   it accepted.
//!
//! Run `cargo xtask help` for the flags.

mod plugin_build;
mod static_build;
mod reload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", version, about = "Build hotswap plugins and reload running hosts", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a plugin crate and write its library and manifest into an output folder.
    Build(plugin_build::BuildArgs),
    /// Ask a running host to reload its plugins.
    Reload(reload::ReloadArgs),
    /// Show the generation a running host is serving.
    Status(reload::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => plugin_build::run(args).map(|()| ExitCode::SUCCESS),
        Command::Reload(args) => reload::reload(args),
        Command::Status(args) => reload::status(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
