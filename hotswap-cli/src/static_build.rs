//! Building a host with its plugins linked in (`build --static-linking <hostDir> <outputDir>`).
//!
//! The host lists the plugin crates it can link in its `hotswap-static` feature (as optional
//! dependencies), calls `hotswap_build::static_host()` from its build.rs, and hands
//! `static_plugins()` to `PluginManagerBuilder::static_plugins`. This builds the host with that
//! feature and `HOTSWAP_STATIC=1` (so each plugin's registry is compiled without exported
//! symbols, which would clash in one binary), stamps every plugin's version as a plugin build
//! would (a hash of each crate's inputs), in a target folder of its own
//! (`target/hotswap-static`) so the dynamic builds are left alone, and writes the binary and a
//! manifest into the output folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cargo_metadata::Message;
use hotswap_runtime::inspect::sha256_hex;

use crate::atomic::write_atomically;
use crate::cargo::CargoBuild;
use crate::options::{BuildOptions, Profile};
use crate::package::{crate_dir, package_at};
use crate::repro::{Remap, ReproNote};
use crate::shared_route::SharedRoute;
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

/// A plugin linked into a static host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkedPlugin {
    /// Its package name.
    pub package: String,
    /// The version stamp it was compiled with.
    pub version: String,
}

/// What [`build`] produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StaticBuilt {
    /// The host's package name.
    pub host: String,
    /// Its version stamp.
    pub version: String,
    /// The plugins linked in.
    pub plugins: Vec<LinkedPlugin>,
    /// The binary in the output folder (its manifest is beside it, `<binary>.json`).
    pub binary: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Crates whose stamp names no commit.
    pub notes: Vec<ReproNote>,
    /// The folder holding the intermediate files, with [`BuildOptions::leave_temps`].
    pub temps: Option<PathBuf>,
    /// Wall-clock time of the whole build.
    pub elapsed: Duration,
}

impl StaticBuilt {
    /// The line `build --static-linking` prints.
    pub fn summary(&self) -> String {
        format!(
            "built static host {} {} with {} -> {} ({} KiB) in {:.1}s",
            self.host,
            self.version,
            self.plugins.iter().map(|p| format!("{} {}", p.package, p.version)).collect::<Vec<_>>().join(", "),
            self.binary.display(),
            self.size / 1024,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Builds the host crate in `host_dir` with its plugins linked in, and writes the binary and
/// its manifest into `output_dir` (created if needed), each atomically. `include`, `exclude`
/// and `live_prefix` are refused (they belong in each plugin's build.rs), `keep_debuginfo`
/// does not apply, and paths are always remapped.
pub fn build(host_dir: &Path, output_dir: &Path, options: &BuildOptions) -> Result<StaticBuilt> {
    let started = Instant::now();
    if !options.include.is_empty() || !options.exclude.is_empty() || options.live_prefix.is_some() {
        // They would apply to every plugin alike; per-plugin choices belong in each plugin's
        // build.rs (hotswap_build::Config).
        bail!(
            "--include, --exclude and --live-prefix are for plugin builds; with --static-linking set them in each plugin's build.rs"
        );
    }
    let (host, host_metadata) = package_at(host_dir, "host")?;
    if let Some(route) = SharedRoute::of(&host_metadata)? {
        // A binary that depends on a `dylib`-only crate links it and std as shared libraries
        // (without `-C prefer-dynamic` rustc refuses: "cannot satisfy dependencies so `std`
        // only shows up once"): such a host is never one self-contained binary.
        bail!(
            "--static-linking cannot build {}: its workspace is on the shared route ([workspace.metadata.{}] {} = \"{}\" in {}/Cargo.toml), so the host links {} and std as shared libraries and is never one self-contained binary; build the host as on the shared route (RUSTFLAGS=\"{}\" cargo build) and its plugins with `build`",
            host.name,
            hotswap_abi::shared::METADATA_TABLE,
            hotswap_abi::shared::METADATA_SHARED,
            route.crate_name,
            host_metadata.workspace_root,
            route.crate_name,
            route.flags().join(" ")
        );
    }
    let target_dir = host_metadata.target_directory.as_std_path().to_path_buf();
    let host_dir = crate_dir(&host);
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

    let mut cargo =
        CargoBuild::new(host.manifest_path.as_std_path(), options.profile, format!("the static host {}", host.name));
    cargo
        .command()
        .args(["--bin", &binary_name, "--features", "hotswap-static"])
        .arg("--target-dir")
        .arg(target_dir.join("hotswap-static"))
        .env(hotswap_abi::env::STATIC, "1");
    Remap::new(host_metadata.workspace_root.as_std_path(), &target_dir).apply(cargo.command());
    cargo.command().args(&options.cargo_args);
    // As the stamps of static hosts always were: remapped, but not hashed as `reproducible`.
    let settings = |linked_statically| Settings { linked_statically, reproducible: false, ..Settings::of(options) };

    let mut plugins = Vec::new();
    let mut notes = Vec::new();
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
        let plugin = stamp(&metadata, &package, &settings(true), options.verbose)?;
        notes.extend(ReproNote::for_stamp(&plugin, crate_dir(&package)));
        cargo.command().env(hotswap_abi::env::version_for(&package.name), &plugin.version);
        plugins.push(LinkedPlugin { package: package.name.to_string(), version: plugin.version });
    }
    let host_stamp = stamp(&host_metadata, &host, &settings(false), options.verbose)?;
    notes.extend(ReproNote::for_stamp(&host_stamp, host_dir));
    let mut executable: Option<PathBuf> = None;
    let mut out_dir: Option<PathBuf> = None;
    let log = cargo.run(options.cargo_output, options.leave_temps, options.verbose, |message| match message {
        Message::CompilerArtifact(a) if a.package_id == host.id => {
            if let Some(path) = a.executable {
                executable = Some(path.into_std_path_buf());
            }
        }
        Message::BuildScriptExecuted(b) if b.package_id == host.id => out_dir = Some(b.out_dir.into_std_path_buf()),
        _ => {}
    })?;
    let executable = executable.context("cargo built no executable for the host")?;
    let bytes = std::fs::read(&executable).with_context(|| format!("reading {}", executable.display()))?;

    crate::output_dir::create(output_dir)?;
    let target = output_dir.join(&binary_name);
    let manifest = StaticManifest {
        host: host.name.to_string(),
        version: host_stamp.version.clone(),
        git_revision: host_stamp.git_revision.clone(),
        plugins,
        sha256: sha256_hex(&bytes),
        profile: if options.profile == Profile::Dev { "debug" } else { "release" },
        built_at: host_stamp.built_at.clone(),
        binary: binary_name.clone(),
    };
    write_atomically(
        &output_dir.join(format!("{binary_name}.json")),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    write_atomically(&target, &bytes)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
    }
    let temps = if options.leave_temps {
        let temps = tempfile::Builder::new().prefix("hotswap-build-").tempdir()?.keep();
        std::fs::write(temps.join("cargo-messages.jsonl"), &log)?;
        if let Some(registry) = out_dir.map(|d| d.join("hotswap_static_plugins.rs")).filter(|p| p.exists()) {
            std::fs::copy(&registry, temps.join("hotswap_static_plugins.rs"))?;
        }
        Some(temps)
    } else {
        None
    };
    Ok(StaticBuilt {
        host: manifest.host,
        version: manifest.version,
        plugins: manifest.plugins,
        binary: target,
        size: bytes.len() as u64,
        notes,
        temps,
        elapsed: started.elapsed(),
    })
}
