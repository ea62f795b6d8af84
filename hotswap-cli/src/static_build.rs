//! `cargo xtask build --static-linking <hostDir> <outputDir>`: a host with its plugins linked in.
//!
//! The host lists the plugin crates it can link in its `hotswap-static` feature (as optional
//! dependencies), calls `hotswap_build::static_host()` from its build.rs, and hands
//! `static_plugins()` to `PluginManagerBuilder::static_plugins`. This command builds the host
//! with that feature and `HOTSWAP_STATIC=1` (so each plugin's registry is compiled without
//! exported symbols, which would clash in one binary), stamps every plugin's version as
//! `cargo xtask build` would (a hash of each crate's inputs), in a target folder of its own
//! (`target/hotswap-static`) so the dynamic builds are left alone, and writes the binary and a
//! manifest into the output folder.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cargo_metadata::Message;
use hotswap_runtime::inspect::sha256_hex;

use crate::plugin_build::{BuildArgs, package_at, read_cargo_messages, write_atomically};
use crate::repro::Remap;
use crate::stamp::{Settings, stamp};

/// The manifest written beside a statically linked host.
#[derive(serde::Serialize)]
struct StaticManifest {
    host: String,
    version: String,
    git_revision: Option<String>,
    plugins: Vec<LinkedPlugin>,
    sha256: String,
    profile: &'static str,
    built_at: String,
    binary: String,
}

#[derive(serde::Serialize)]
struct LinkedPlugin {
    package: String,
    version: String,
}

pub fn run(args: BuildArgs) -> Result<()> {
    let started = Instant::now();
    if !args.include.is_empty() || !args.exclude.is_empty() || args.live_prefix.is_some() {
        // They would apply to every plugin alike; per-plugin choices belong in each plugin's
        // build.rs (hotswap_build::Config).
        bail!(
            "--include, --exclude and --live-prefix are for plugin builds; with --static-linking set them in each plugin's build.rs"
        );
    }
    let (host, host_metadata) = package_at(&args.plugin_dir, "host")?;
    let target_dir = host_metadata.target_directory.as_std_path().to_path_buf();
    let host_dir = host.manifest_path.parent().expect("a manifest has a folder").as_std_path().to_path_buf();
    let Some(feature) = host.features.get("hotswap-static") else {
        bail!(
            "{} cannot be linked statically: its Cargo.toml has no `hotswap-static` feature listing the plugin crates (e.g. `hotswap-static = [\"dep:foo\"]`, with foo an optional dependency)",
            host_dir.display()
        );
    };
    let Some(binary) = host.targets.iter().find(|t| t.kind.iter().any(|k| k.to_string() == "bin")) else {
        bail!("{} has no binary target to build", host_dir.display());
    };
    let binary_name = binary.name.clone();

    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(host.manifest_path.as_std_path())
        .args(["--bin", &binary_name, "--features", "hotswap-static", "--message-format=json-render-diagnostics"])
        .arg("--target-dir")
        .arg(target_dir.join("hotswap-static"))
        .env(hotswap_abi::env::STATIC, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !args.debug {
        command.arg("--release");
    }
    Remap::new(host_metadata.workspace_root.as_std_path(), &target_dir).apply(&mut command);
    command.args(&args.cargo_args);
    let settings = |linked_statically| Settings {
        profile: if args.debug { "dev" } else { "release" },
        cargo_args: &args.cargo_args,
        linked_statically,
        ..Settings::default()
    };

    let mut plugins = Vec::new();
    for entry in feature {
        let name = entry.strip_prefix("dep:").unwrap_or(entry);
        let dependency =
            host.dependencies.iter().find(|d| d.rename.as_deref().unwrap_or(&d.name) == name).with_context(|| {
                format!("the hotswap-static feature names `{name}`, which is not a dependency of {}", host.name)
            })?;
        let Some(path) = &dependency.path else {
            bail!("plugin `{name}` of the hotswap-static feature must be a path dependency");
        };
        let (package, metadata) = package_at(path.as_std_path(), "plugin")?;
        let plugin = stamp(&metadata, &package, &settings(true), args.verbose, false)?;
        let key = hotswap_abi::env::version_for(&package.name);
        command.env(&key, &plugin.version);
        plugins.push(LinkedPlugin { package: package.name.to_string(), version: plugin.version });
    }
    let host_stamp = stamp(&host_metadata, &host, &settings(false), args.verbose, false)?;
    if args.verbose {
        eprintln!("running: {command:?}");
    }
    let mut child = command.spawn().context("cannot run cargo")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executable: Option<PathBuf> = None;
    let mut out_dir: Option<PathBuf> = None;
    let log = read_cargo_messages(stdout, args.leave_temps, |message| match message {
        Message::CompilerArtifact(a) if a.package_id == host.id => {
            if let Some(path) = a.executable {
                executable = Some(path.into_std_path_buf());
            }
        }
        Message::BuildScriptExecuted(b) if b.package_id == host.id => out_dir = Some(b.out_dir.into_std_path_buf()),
        _ => {}
    })?;
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build of the static host {} failed ({status}); the output folder was not touched", host.name);
    }
    let executable = executable.context("cargo built no executable for the host")?;
    let bytes = std::fs::read(&executable).with_context(|| format!("reading {}", executable.display()))?;

    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&args.output_dir)
            .with_context(|| format!("cannot create the output folder {}", args.output_dir.display()))?;
    }
    let target = args.output_dir.join(&binary_name);
    let manifest = StaticManifest {
        host: host.name.to_string(),
        version: host_stamp.version.clone(),
        git_revision: host_stamp.git_revision.clone(),
        plugins,
        sha256: sha256_hex(&bytes),
        profile: if args.debug { "debug" } else { "release" },
        built_at: host_stamp.built_at.clone(),
        binary: binary_name.clone(),
    };
    write_atomically(
        &args.output_dir.join(format!("{binary_name}.json")),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    write_atomically(&target, &bytes)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
    }
    if args.leave_temps {
        let temps = tempfile::Builder::new().prefix("hotswap-build-").tempdir()?.keep();
        std::fs::write(temps.join("cargo-messages.jsonl"), &log)?;
        if let Some(registry) = out_dir.map(|d| d.join("hotswap_static_plugins.rs")).filter(|p| p.exists()) {
            std::fs::copy(&registry, temps.join("hotswap_static_plugins.rs"))?;
        }
        eprintln!("intermediate files left in {}", temps.display());
    }
    println!(
        "built static host {} {} with {} -> {} ({} KiB) in {:.1}s",
        host.name,
        host_stamp.version,
        manifest.plugins.iter().map(|p| format!("{} {}", p.package, p.version)).collect::<Vec<_>>().join(", "),
        target.display(),
        bytes.len() / 1024,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
