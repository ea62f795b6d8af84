//! `build`: its flags, which of the two builds runs (a plugin, or with `--static-linking` a
//! host with its plugins linked in), and what it prints.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::options::{BuildOptions, CargoOutput, Profile};
use crate::repro::ReproNote;

/// Arguments of `build`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  build plugin/foo bin --leave-temps\n  build --static-linking --debug demo/slink/host demo/slink/bin"
)]
pub struct BuildArgs {
    /// The plugin crate's folder (holding its Cargo.toml).
    pub plugin_dir: PathBuf,
    /// Where to write `<name>@<version>.so` and its manifest `<name>@<version>.json`.
    pub output_dir: PathBuf,
    /// Keep the intermediate files (cargo's messages, the generated registry, the raw
    /// artifact) in a temporary folder and print where.
    #[arg(long)]
    pub leave_temps: bool,
    /// Scan only source files whose path relative to the crate (e.g. `src/net/mod.rs`) matches
    /// this regex. Repeatable.
    #[arg(long, value_name = "RE")]
    pub include: Vec<String>,
    /// Skip source files whose relative path matches this regex. Repeatable.
    #[arg(long, value_name = "RE")]
    pub exclude: Vec<String>,
    /// Prefix of live items [default: live_].
    #[arg(long, value_name = "P")]
    pub live_prefix: Option<String>,
    /// Build with the dev profile instead of release. A host of the other profile refuses the
    /// plugin, so a build of another profile than the output folder's host (on --socket), or
    /// else than the libraries already in the folder, stops before building.
    #[arg(long)]
    pub debug: bool,
    /// Build the profile asked for even when the output folder's host or libraries need the
    /// other one.
    #[arg(long)]
    pub no_profile_check: bool,
    /// Control socket of the host whose profile the build must match (same default as
    /// `reload`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the commands run and the environment passed to the build.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the version stamp this build would get (a hash of its inputs) and build nothing.
    #[arg(long, conflicts_with = "static_linking")]
    pub print_stamp: bool,
    /// Keep the debug info in the library instead of splitting it out into
    /// `<name>@<version>.debug` beside it (see `split_debug`); also with
    /// `HOTSWAP_KEEP_DEBUGINFO=1` in the environment.
    #[arg(long)]
    pub keep_debuginfo: bool,
    /// Remap absolute paths (workspace, cargo home, an outside target folder) in what rustc
    /// embeds, so that the same commit built in two checkouts or on two machines gives the
    /// same bytes. Off by default: the remapping goes through cargo's rustflags, which changes
    /// cargo's hash of every crate and so the `TypeId` of each type from a crate the plugin
    /// shares with the host (an extension type, say); a host built with plain `cargo build`
    /// would refuse those types. Use it when host and plugins are built with the same flags,
    /// or share only std types.
    #[arg(long)]
    pub reproducible: bool,
    /// Build a host with its plugins linked in, for debuggers and platforms without dlopen:
    /// the first folder is then the HOST crate, built with its `hotswap-static` feature,
    /// which lists the plugin crates to link (optional dependencies); the host binary and a
    /// manifest go to the output folder.
    #[arg(long)]
    pub static_linking: bool,
    /// Extra arguments for `cargo build`, after `--`.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

impl From<&BuildArgs> for BuildOptions {
    fn from(args: &BuildArgs) -> BuildOptions {
        BuildOptions {
            profile: if args.debug { Profile::Dev } else { Profile::Release },
            cargo_args: args.cargo_args.clone(),
            include: args.include.clone(),
            exclude: args.exclude.clone(),
            live_prefix: args.live_prefix.clone(),
            leave_temps: args.leave_temps,
            verbose: args.verbose,
            keep_debuginfo: args.keep_debuginfo,
            reproducible: args.reproducible,
            cargo_output: CargoOutput::Inherit,
            no_sync: false,
        }
    }
}

/// Runs `build`: prints the stamp (`--print-stamp`), or builds and prints the notes on
/// standard error and one summary line on standard output.
pub fn run(args: BuildArgs) -> Result<()> {
    let options = BuildOptions::from(&args);
    if args.print_stamp {
        println!("{}", crate::plugin_build::stamp(&args.plugin_dir, &args.output_dir, &options)?.version);
        return Ok(());
    }
    if args.static_linking {
        let built = crate::static_build::build(&args.plugin_dir, &args.output_dir, &options)?;
        print_notes(&built.notes, built.temps.as_ref());
        println!("{}", built.summary());
        return Ok(());
    }
    if !args.no_profile_check {
        let socket = args.socket.clone().unwrap_or_else(hotswap_runtime::default_socket_path);
        crate::host_profile::check(&args.output_dir, &socket, options.profile)?;
    }
    let built = crate::plugin_build::build(&args.plugin_dir, &args.output_dir, &options)?;
    for path in &built.tidied.removed_partials {
        eprintln!("removed {}, left by a build that died while writing", path.display());
    }
    for path in &built.tidied.orphan_manifests {
        eprintln!(
            "warning: {} has no library beside it (a build killed between writing the two, a library removed by hand, or a build writing right now); left in place",
            path.display()
        );
    }
    print_notes(&built.notes, built.temps.as_ref());
    println!("{}", built.summary());
    Ok(())
}

fn print_notes(notes: &[ReproNote], temps: Option<&PathBuf>) {
    for note in notes {
        eprintln!("note: {note}");
    }
    if let Some(temps) = temps {
        eprintln!("intermediate files left in {}", temps.display());
    }
}
