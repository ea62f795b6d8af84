//! `build <pluginDir> <outputDir>`: one plugin crate to a stamped library and its manifest.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, Metadata, MetadataCommand, Package};
use clap::Args;
use hotswap_runtime::Manifest;
use hotswap_runtime::inspect::{inspect, sha256_hex};

use crate::repro::Remap;
use crate::stamp::Settings;

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
    /// Build with the dev profile instead of release.
    #[arg(long)]
    pub debug: bool,
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

pub use crate::output_dir::{Installed, Tidied, write_atomically};
pub use crate::repro::ReproNote;
pub use crate::stamp::Stamp;

/// What [`build`] produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// Plugin name (the crate name).
    pub name: String,
    /// The version stamp it carries.
    pub version: String,
    /// The library in the output folder.
    pub library: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, as in the manifest.
    pub sha256: String,
    /// Whether the library was written or an identical one kept.
    pub installed: Installed,
    /// What would keep this build from being reproduced byte for byte elsewhere.
    pub notes: Vec<ReproNote>,
    /// Temporaries of dead builds removed from the output folder, and orphan manifests.
    pub tidied: Tidied,
    /// Wall-clock time of the whole build.
    pub elapsed: std::time::Duration,
}

/// Runs `build` as the command line does, printing one line on success.
pub fn run(args: BuildArgs) -> Result<()> {
    if args.static_linking {
        return crate::static_build::run(args);
    }
    if args.print_stamp {
        println!("{}", plugin_stamp(&args, true)?.0.version);
        return Ok(());
    }
    let built = build(&args, false)?;
    println!("{}", summary(&built));
    Ok(())
}

/// The line `build` prints: `built …` when it wrote the library, `unchanged …` when an
/// identical library was kept.
pub fn summary(built: &Built) -> String {
    let what = match &built.installed {
        Installed::Unchanged { since, .. } => format!("unchanged since {since}:"),
        _ => "built".to_string(),
    };
    let kept = if matches!(built.installed, Installed::Unchanged { .. }) { ", kept" } else { "" };
    format!(
        "{what} {} {} -> {} ({} KiB, sha256 {}{kept}) in {:.1}s",
        built.name,
        built.version,
        built.library.display(),
        built.size / 1024,
        &built.sha256[..12],
        built.elapsed.as_secs_f64()
    )
}

/// The stamp a build of `args` gets, with the plugin's package and workspace.
fn plugin_stamp(args: &BuildArgs, quiet: bool) -> Result<(Stamp, Package, Metadata)> {
    for (flag, patterns) in [("--include", &args.include), ("--exclude", &args.exclude)] {
        for p in patterns {
            // hotswap-build compiles them too; checking here names the flag before a long build.
            if let Err(e) = regex::Regex::new(p) {
                bail!("invalid {flag} regex `{p}`: {e}");
            }
        }
    }
    let (package, metadata) = plugin_package(&args.plugin_dir)?;
    let output = args.output_dir.canonicalize().ok();
    let settings = Settings {
        profile: if args.debug { "dev" } else { "release" },
        cargo_args: &args.cargo_args,
        include: &args.include,
        exclude: &args.exclude,
        live_prefix: args.live_prefix.as_deref(),
        linked_statically: false,
        reproducible: args.reproducible,
        skip: output.as_deref(),
    };
    let stamp = crate::stamp::stamp(&metadata, &package, &settings, args.verbose, quiet)?;
    Ok((stamp, package, metadata))
}

/// Builds one plugin crate (not `--static-linking`) and installs its library and manifest in
/// the output folder atomically, unless an identical library is there already. With `quiet`,
/// cargo's own output is kept and shown only in the error if the build fails, and notes are
/// only returned.
pub fn build(args: &BuildArgs, quiet: bool) -> Result<Built> {
    if args.static_linking {
        bail!("build() makes plugin libraries; static hosts are built by run() with --static-linking");
    }
    let started = Instant::now();
    // 0755 whatever the umask allows beyond it: the runtime refuses a plugin folder that
    // group or others can write (strict modes).
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&args.output_dir)
            .with_context(|| format!("cannot create the output folder {}", args.output_dir.display()))?;
    }
    let tidied = crate::output_dir::tidy(&args.output_dir)?;
    if !quiet {
        for path in &tidied.removed_partials {
            eprintln!("removed {}, left by a build that died while writing", path.display());
        }
        for path in &tidied.orphan_manifests {
            eprintln!(
                "warning: {} has no library beside it (a build killed between writing the two, a library removed by hand, or a build writing right now); left in place",
                path.display()
            );
        }
    }
    let (stamp, package, metadata) = plugin_stamp(args, quiet)?;
    let workspace = metadata.workspace_root.as_std_path();
    let target_dir = metadata.target_directory.as_std_path();
    let plugin_dir = package.manifest_path.parent().expect("a manifest has a folder").as_std_path().to_path_buf();
    let temps =
        if args.leave_temps { Some(tempfile::Builder::new().prefix("hotswap-build-").tempdir()?.keep()) } else { None };

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(package.manifest_path.as_std_path())
        .arg("--lib")
        .arg("--message-format=json-render-diagnostics");
    if !args.debug {
        command.arg("--release");
    }
    let remap = Remap::new(workspace, target_dir);
    if args.reproducible {
        remap.apply(&mut command);
    }
    command.args(&args.cargo_args);
    command
        .env(hotswap_abi::env::VERSION, &stamp.version)
        .env(hotswap_abi::env::INCLUDE, args.include.join("\n"))
        .env(hotswap_abi::env::EXCLUDE, args.exclude.join("\n"))
        .env(hotswap_abi::env::LIVE_PREFIX, args.live_prefix.clone().unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(if quiet { Stdio::piped() } else { Stdio::inherit() });
    if args.verbose {
        eprintln!("running: {command:?}");
    }
    let mut child = command.spawn().with_context(|| format!("cannot run {cargo}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    // Drain stderr on its own thread so cargo never blocks on a full pipe.
    let stderr_reader = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        })
    });
    let mut artifact: Option<PathBuf> = None;
    let mut out_dir: Option<PathBuf> = None;
    let log = read_cargo_messages(stdout, args.leave_temps, |message| match message {
        Message::CompilerArtifact(a) if a.package_id == package.id => {
            if a.target.crate_types.iter().any(|t| t.to_string() == "cdylib") {
                artifact = a
                    .filenames
                    .iter()
                    .find(|f| f.extension() == Some(std::env::consts::DLL_EXTENSION))
                    .map(|f| f.as_std_path().to_path_buf());
            }
        }
        Message::BuildScriptExecuted(b) if b.package_id == package.id => {
            out_dir = Some(b.out_dir.as_std_path().to_path_buf());
        }
        _ => {}
    })?;
    let status = child.wait()?;
    let cargo_stderr = stderr_reader.map(|t| t.join().unwrap_or_default()).unwrap_or_default();
    if !status.success() {
        let diagnostics: Vec<&str> = cargo_stderr
            .lines()
            .filter(|l| !l.trim_start().starts_with("Compiling") && !l.trim_start().starts_with("Blocking"))
            .collect();
        let shown = if diagnostics.is_empty() { String::new() } else { format!("\n{}", diagnostics.join("\n")) };
        bail!("cargo build of {} failed ({status}); the output folder was not touched{shown}", package.name);
    }
    let artifact = artifact.with_context(|| format!("cargo built no cdylib for {}", package.name))?;
    let bytes = std::fs::read(&artifact).with_context(|| format!("reading {}", artifact.display()))?;
    let facts = inspect(&bytes).with_context(|| format!("{} is not a usable plugin", artifact.display()))?;
    if facts.version != stamp.version {
        bail!(
            "{} carries version {} instead of {}: does build.rs call hotswap_build::generate() and lib.rs include hotswap_runtime::plugin!()?",
            artifact.display(),
            facts.version,
            stamp.version
        );
    }
    let file_name = Manifest::library_file_name(&facts.name, &facts.version);
    let library_path = args.output_dir.join(&file_name);
    // The debug info goes beside the library, not in it (see `split_debug`).
    let scratch = tempfile::Builder::new().prefix(".hotswap-split-").tempdir_in(&args.output_dir)?;
    let stem = format!("{}@{}", facts.name, facts.version);
    let keep = args.keep_debuginfo || std::env::var_os(hotswap_abi::env::KEEP_DEBUGINFO).is_some_and(|v| v == "1");
    let split = if keep { None } else { crate::split_debug::split(&artifact, scratch.path(), &stem)? };
    let (bytes, debug_file) = match split {
        Some((stripped, debug)) => (stripped, Some(debug)),
        None => (bytes, None),
    };
    let manifest = Manifest {
        name: facts.name.clone(),
        version: facts.version.clone(),
        git_revision: stamp.git_revision.clone(),
        sha256: sha256_hex(&bytes),
        fingerprint: facts.fingerprint.clone(),
        built_at: stamp.built_at.clone(),
        library: file_name.clone(),
    };
    let mut notes = if args.reproducible { crate::repro::embedded_paths(&bytes, &remap) } else { Vec::new() };
    let generated: Vec<PathBuf> =
        [Some(target_dir.to_path_buf()), crate::stamp::cargo_home(), crate::repro::sysroot(&plugin_dir)]
            .into_iter()
            .flatten()
            .collect();
    notes.extend(crate::repro::uncovered_inputs(&artifact, &stamp.covered, &generated));
    if !quiet {
        for note in &notes {
            eprintln!("note: {note}");
        }
    }
    // Debug info first, then manifest and library: a host that sees the library sees both.
    if let Some(debug) = &debug_file {
        let to = args.output_dir.join(debug.file_name().expect("named by split_debug"));
        std::fs::rename(debug, &to).with_context(|| format!("renaming into {}", to.display()))?;
    }
    let installed = crate::output_dir::install(&args.output_dir, &bytes, &manifest)?;
    if let Some(temps) = &temps {
        std::fs::write(temps.join("cargo-messages.jsonl"), &log)?;
        std::fs::copy(&artifact, temps.join(artifact.file_name().expect("artifact has a name")))?;
        if let Some(out_dir) = &out_dir {
            let registry = out_dir.join("hotswap_registry.rs");
            if registry.exists() {
                std::fs::copy(&registry, temps.join("hotswap_registry.rs"))?;
            }
        }
        eprintln!("intermediate files left in {}", temps.display());
    }
    Ok(Built {
        name: facts.name,
        version: facts.version,
        library: library_path,
        size: bytes.len() as u64,
        sha256: manifest.sha256,
        installed,
        notes,
        tidied,
        elapsed: started.elapsed(),
    })
}

/// Reads cargo's JSON messages from its stdout and hands each to `on`; returns them as JSON
/// lines when `keep` is set (for `--leave-temps`), else nothing.
pub fn read_cargo_messages(
    stdout: std::process::ChildStdout,
    keep: bool,
    mut on: impl FnMut(Message),
) -> Result<Vec<u8>> {
    let mut log = Vec::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.context("reading cargo's messages")?;
        if keep {
            serde_json::to_writer(&mut log, &message)?;
            log.push(b'\n');
        }
        on(message);
    }
    Ok(log)
}

/// The package whose Cargo.toml is in `dir` (a `what`: plugin or host), and its workspace
/// (members only, `cargo metadata --no-deps`).
pub fn package_at(dir: &Path, what: &str) -> Result<(Package, Metadata)> {
    if !dir.is_dir() {
        bail!("{what} folder {} does not exist", dir.display());
    }
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} is not a crate: it has no Cargo.toml", dir.display());
    }
    let metadata = MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .with_context(|| format!("cargo metadata for {}", manifest.display()))?;
    let wanted = manifest.canonicalize()?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path().canonicalize().is_ok_and(|m| m == wanted))
        .cloned()
        .with_context(|| format!("{} is a workspace manifest, not a {what} crate", manifest.display()))?;
    Ok((package, metadata))
}

/// The package at `dir`, checked to be a plugin crate, and its workspace.
pub fn plugin_package(dir: &Path) -> Result<(Package, Metadata)> {
    let (package, metadata) = package_at(dir, "plugin")?;
    let not_plugin = |why: &str| anyhow::anyhow!("{} is not a hotswap plugin crate: {why}", dir.display());
    if !package.targets.iter().any(|t| t.crate_types.iter().any(|c| c.to_string() == "cdylib")) {
        return Err(not_plugin("its [lib] has no crate-type \"cdylib\""));
    }
    if !package.dependencies.iter().any(|d| d.name == "hotswap-runtime") {
        return Err(not_plugin("it does not depend on hotswap-runtime"));
    }
    if !package.dependencies.iter().any(|d| d.name == "hotswap-build") {
        return Err(not_plugin("it has no build-dependency on hotswap-build"));
    }
    Ok((package, metadata))
}
