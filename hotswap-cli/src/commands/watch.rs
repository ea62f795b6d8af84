//! `watch`: its flags, turned into [`WatchOptions`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::options::Profile;
use crate::watch::WatchOptions;

/// Arguments of `watch`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  watch demo/hello/plugin/foo demo/hello/plugin/bar demo/hello/bin\n  watch plugins/greeter bin --debug\n\n\
Each cycle prints one line: what changed, the build time with its parts (cargo, and ours:\n\
stamp, split debug info, install), the reload result (accepted with the host's reload time and\n\
the versions serving, or refused with the reason) and the time from the first change to the\n\
host's answer. A failed build (the line names the compiler's first error) or a refused reload\n\
leaves the host on the code it was running; the watch goes on. A change made during a build\n\
builds once more after it. Ctrl-C stops it."
)]
pub struct WatchArgs {
    /// The plugin crate folders to watch (PLUGIN_DIR…), then the output folder the host loads
    /// from (OUTPUT_DIR, last).
    #[arg(required = true, num_args = 2.., value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// Control socket of the host (same default as `reload`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Only build; do not ask a host to reload.
    #[arg(long)]
    pub no_reload: bool,
    /// Quiet time after the last change before a build starts, in milliseconds (a file still
    /// open for writing is waited for too, up to a second).
    #[arg(long, default_value_t = 10, value_name = "MS")]
    pub debounce_ms: u64,
    /// Do not build and reload everything once at start.
    #[arg(long)]
    pub no_initial_build: bool,
    /// Build with the dev profile instead of release. A watch of another profile than the
    /// output folder's host (on --socket), or else than the libraries already in the folder,
    /// stops before building.
    #[arg(long)]
    pub debug: bool,
    /// Build the profile asked for even when the output folder's host or libraries need the
    /// other one.
    #[arg(long)]
    pub no_profile_check: bool,
    /// Keep the debug info in each library instead of splitting it out as `build` does
    /// (splitting is the default: done in this process, it costs less than the larger library
    /// costs the install and the host's reload; BENCHMARKS.md, edit loop).
    #[arg(long)]
    pub keep_debuginfo: bool,
    /// The default (the debug info is split out); accepted so that scripts written when
    /// `watch` kept it by default still run.
    #[arg(long, hide = true)]
    pub split_debuginfo: bool,
    /// Extra paths whose changes rebuild every watched plugin (e.g. a shared crate).
    #[arg(long = "also-watch", value_name = "PATH")]
    pub also_watch: Vec<PathBuf>,
    /// Extra arguments for `cargo build`, after `--`.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

/// Runs `watch`, after checking that its profile is the one the output folder needs (see
/// [`crate::host_profile`]).
pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    let check = !args.no_profile_check;
    let options = WatchOptions::from(args);
    if check {
        let socket = options.socket.clone().unwrap_or_else(hotswap_runtime::default_socket_path);
        crate::host_profile::check(&options.output_dir, &socket, options.build.profile)?;
    }
    crate::watch::run(&options)
}

impl From<WatchArgs> for WatchOptions {
    fn from(mut args: WatchArgs) -> WatchOptions {
        let output_dir = args.paths.pop().expect("clap requires two paths");
        let mut options = WatchOptions::new(args.paths, output_dir);
        options.socket = args.socket;
        options.reload = !args.no_reload;
        options.debounce = Duration::from_millis(args.debounce_ms);
        options.initial_build = !args.no_initial_build;
        options.also_watch = args.also_watch;
        options.build.profile = if args.debug { Profile::Dev } else { Profile::Release };
        options.build.cargo_args = args.cargo_args;
        options.build.keep_debuginfo = args.keep_debuginfo && !args.split_debuginfo;
        options
    }
}
