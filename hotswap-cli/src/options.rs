//! [`BuildOptions`]: how to build, for library callers; the command line's `build` flags
//! convert into it (`commands::build`).

/// The cargo profile a build uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// `--release` (the default).
    #[default]
    Release,
    /// The dev profile (`build --debug`).
    Dev,
}

impl Profile {
    /// Cargo's name of the profile: `release` or `dev`.
    pub fn cargo_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "dev",
        }
    }
}

/// What becomes of cargo's own output (its progress lines and diagnostics) during a build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CargoOutput {
    /// Shown as cargo prints it, on this process's standard error (the default).
    #[default]
    Inherit,
    /// Kept, and shown only in the error if the build fails (what `watch` does).
    Capture,
}

/// How to build a plugin ([`crate::plugin_build::build`]) or a statically linked host
/// ([`crate::static_build::build`]); the folders are the functions' arguments.
///
/// Fields are public and will grow: start from [`BuildOptions::default`] and set what you
/// need.
///
/// ```
/// let mut options = hotswap_cli::BuildOptions::default();
/// options.profile = hotswap_cli::options::Profile::Dev;
/// options.cargo_args = vec!["--offline".into()];
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BuildOptions {
    /// Release (default) or dev.
    pub profile: Profile,
    /// Extra arguments for `cargo build`.
    pub cargo_args: Vec<String>,
    /// Scan only source files whose path relative to the crate matches one of these regexes
    /// (plugin builds only).
    pub include: Vec<String>,
    /// Skip source files whose relative path matches one of these regexes (plugin builds only).
    pub exclude: Vec<String>,
    /// Prefix of live items; `None` for the default `live_` (plugin builds only).
    pub live_prefix: Option<String>,
    /// Keep the intermediate files (cargo's messages, the generated registry, the raw
    /// artifact) in a temporary folder, returned with the result.
    pub leave_temps: bool,
    /// Print the commands run and the version stamp's input hash on standard error.
    pub verbose: bool,
    /// Keep the debug info in the library instead of splitting it out beside it (plugin
    /// builds only; `HOTSWAP_KEEP_DEBUGINFO=1` in the environment does the same).
    pub keep_debuginfo: bool,
    /// Remap absolute paths in what rustc embeds, for byte-reproducible plugin libraries
    /// (see `build --help`). Static hosts are always built remapped.
    pub reproducible: bool,
    /// Where cargo's own output goes.
    pub cargo_output: CargoOutput,
    /// Write the manifest without syncing it to disk (plugin builds only; `watch` does, see
    /// [`crate::output_dir::install`]). By default it is synced before the library is renamed
    /// into place.
    pub no_sync: bool,
}
