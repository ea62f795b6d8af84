//! `build <pluginDir> <outputDir>`: one plugin crate to a stamped library and its manifest.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, MetadataCommand, Package};
use clap::Args;
use hotswap_runtime::Manifest;
use hotswap_runtime::inspect::{inspect, sha256_hex};

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
    /// Keep the debug info in the library instead of splitting it out into
    /// `<name>@<version>.debug` beside it (see `split_debug`); also with
    /// `HOTSWAP_KEEP_DEBUGINFO=1` in the environment.
    #[arg(long)]
    pub keep_debuginfo: bool,
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

/// The version stamp and where it came from.
pub struct Stamp {
    pub version: String,
    pub git_revision: Option<String>,
    pub built_at: String,
}

/// What [`build`] produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// Plugin name (the crate name).
    pub name: String,
    /// The version stamp it carries.
    pub version: String,
    /// The library written into the output folder.
    pub library: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, as in the manifest.
    pub sha256: String,
    /// Wall-clock time of the whole build.
    pub elapsed: std::time::Duration,
}

/// Runs `build` as the command line does, printing one line on success.
pub fn run(args: BuildArgs) -> Result<()> {
    if args.static_linking {
        return crate::static_build::run(args);
    }
    let built = build(&args, false)?;
    println!(
        "built {} {} -> {} ({} KiB, sha256 {}…) in {:.1}s",
        built.name,
        built.version,
        built.library.display(),
        built.size / 1024,
        &built.sha256[..12],
        built.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Builds one plugin crate (not `--static-linking`) and writes its library and manifest into
/// the output folder atomically. With `quiet`, cargo's own output is kept and shown only in
/// the error if the build fails.
pub fn build(args: &BuildArgs, quiet: bool) -> Result<Built> {
    if args.static_linking {
        bail!("build() makes plugin libraries; static hosts are built by run() with --static-linking");
    }
    let started = Instant::now();
    for (flag, patterns) in [("--include", &args.include), ("--exclude", &args.exclude)] {
        for p in patterns {
            // hotswap-build compiles them too; checking here names the flag before a long build.
            if let Err(e) = regex::Regex::new(p) {
                bail!("invalid {flag} regex `{p}`: {e}");
            }
        }
    }
    let package = plugin_package(&args.plugin_dir)?;
    let plugin_dir = package.manifest_path.parent().expect("a manifest has a folder").as_std_path().to_path_buf();
    let stamp = stamp(&plugin_dir, &package.version.to_string(), args.verbose, quiet);
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
    command.args(&args.cargo_args);
    command
        .env("HOTSWAP_VERSION", &stamp.version)
        .env("HOTSWAP_INCLUDE", args.include.join("\n"))
        .env("HOTSWAP_EXCLUDE", args.exclude.join("\n"))
        .env("HOTSWAP_LIVE_PREFIX", args.live_prefix.clone().unwrap_or_default())
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
    let keep = args.keep_debuginfo || std::env::var_os("HOTSWAP_KEEP_DEBUGINFO").is_some_and(|v| v == "1");
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
    // Debug info and manifest first, then the library: a host that sees the library sees both.
    if let Some(debug) = &debug_file {
        let to = args.output_dir.join(debug.file_name().expect("named by split_debug"));
        std::fs::rename(debug, &to).with_context(|| format!("renaming into {}", to.display()))?;
    }
    let manifest_path = Manifest::path_for(&library_path);
    write_atomically(&manifest_path, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    write_atomically(&library_path, &bytes)?;

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

/// The package whose Cargo.toml is in `dir` (a `what`: plugin or host), and the target folder
/// of its workspace.
pub fn package_at(dir: &Path, what: &str) -> Result<(Package, PathBuf)> {
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
    let target_dir = metadata.target_directory.as_std_path().to_path_buf();
    let package = metadata
        .packages
        .into_iter()
        .find(|p| p.manifest_path.as_std_path().canonicalize().is_ok_and(|m| m == wanted))
        .with_context(|| format!("{} is a workspace manifest, not a {what} crate", manifest.display()))?;
    Ok((package, target_dir))
}

/// The package at `dir`, checked to be a plugin crate.
pub fn plugin_package(dir: &Path) -> Result<Package> {
    let (package, _) = package_at(dir, "plugin")?;
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
    Ok(package)
}

/// `<crate version>+g<commit>[.dirty].<UTC build time>`, or without the git part outside git.
pub fn stamp(plugin_dir: &Path, crate_version: &str, verbose: bool, quiet: bool) -> Stamp {
    let now = SystemTime::now();
    let built_at = humantime::format_rfc3339_seconds(now).to_string();
    let compact: String = built_at.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").arg("-C").arg(plugin_dir).args(args).stderr(Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["log", "-1", "--format=%h", "--", "."]).filter(|c| !c.is_empty());
    match commit {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
            let revision = if dirty { format!("{commit}-dirty") } else { commit.clone() };
            let version = format!("{crate_version}+g{commit}{}.{compact}", if dirty { ".dirty" } else { "" });
            if verbose {
                eprintln!("version stamp {version} (git {revision})");
            }
            Stamp { version, git_revision: Some(revision), built_at }
        }
        None => {
            if !quiet {
                eprintln!(
                    "note: {} has no git history (not a git checkout, no commit touching it, or no git); the version stamp uses the build time only",
                    plugin_dir.display()
                );
            }
            Stamp { version: format!("{crate_version}+{compact}"), git_revision: None, built_at }
        }
    }
}

/// Writes `path` by writing a hidden temporary file in the same folder and renaming it, so a
/// reader (or a host mapping the old file) never sees a partial file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".hotswap-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
