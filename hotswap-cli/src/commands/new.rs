//! `new plugin|host <path>`: its flags, and what was made and the commands to run next,
//! printed.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::scaffold::{Kind, NewOptions, display_path, scaffold};

/// Arguments of `new`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  new host host\n  new plugin plugins/greeter\n\n\
The crate is added to the members of the enclosing workspace; without one, a workspace\n\
Cargo.toml is created in the current folder. hotswap-runtime and hotswap-build come from the\n\
workspace's [workspace.dependencies] when it has them; otherwise they are added there: from the\n\
registry with --hotswap-version, as path dependencies with --hotswap-path, and without either\n\
option as path dependencies on the hotswap checkout this tool was built from, if it is still\n\
there, else from the registry at this tool's version.")]
pub struct NewArgs {
    /// `plugin` or `host`.
    pub kind: Kind,
    /// Folder of the new crate; it must not exist yet, or be empty.
    pub path: PathBuf,
    /// Crate name [default: the folder's name].
    #[arg(long)]
    pub name: Option<String>,
    /// The hotswap checkout to depend on (holding hotswap-runtime/ and hotswap-build/).
    #[arg(long, value_name = "DIR", conflicts_with = "hotswap_version")]
    pub hotswap_path: Option<PathBuf>,
    /// Depend on the hotswap crates from the registry (crates.io) at this version requirement,
    /// e.g. `0.1`.
    #[arg(long, value_name = "VERSION")]
    pub hotswap_version: Option<String>,
    /// Where the scaffolded files and printed commands say built plugins go.
    #[arg(long, value_name = "DIR", default_value = "bin")]
    pub output_dir: String,
}

impl From<NewArgs> for NewOptions {
    fn from(args: NewArgs) -> NewOptions {
        let mut options = NewOptions::new(args.kind, args.path);
        options.name = args.name;
        options.hotswap_path = args.hotswap_path;
        options.hotswap_version = args.hotswap_version;
        options.output_dir = args.output_dir;
        options
    }
}

/// Runs `new` and prints what was made and the commands to run next.
pub fn run(args: NewArgs, tool: &str) -> Result<()> {
    let options = NewOptions::from(args);
    let made = scaffold(&options, tool)?;
    if made.workspace_created {
        println!("created the workspace {}", made.workspace.display());
    }
    let shown = display_path(&made.dir);
    for file in &made.files {
        println!("created {}", Path::new(&shown).join(file).display());
    }
    println!("added `{}` to the members of {}", shown, made.workspace.display());
    println!();
    println!("next:");
    let out = &options.output_dir;
    match options.kind {
        // One recipe: a dev host (`cargo run`) and dev plugins (`--debug`), the fastest edit
        // loop; a host loads only plugins of its own profile (the ABI fingerprint includes it).
        Kind::Plugin => {
            println!("  {tool} build {shown} {out} --debug    # build it into {out}/ for a dev host (cargo run)");
            println!("  {tool} reload                      # ask the running host to load the new build");
            println!("  {tool} watch {shown} {out} --debug    # or: rebuild and reload on every save");
        }
        Kind::Host => {
            println!("  {tool} new plugin plugins/greeter    # a plugin for it");
            println!("  {tool} build plugins/greeter {out} --debug");
            println!("  cargo run -p {} -- {out}", made.name);
        }
    }
    Ok(())
}
