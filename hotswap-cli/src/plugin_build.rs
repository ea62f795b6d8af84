//! Building one plugin crate into a stamped library and its manifest, installed in an output
//! folder (`build <pluginDir> <outputDir>`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cargo_metadata::Message;
use hotswap_runtime::Manifest;
use hotswap_runtime::inspect::inspect;

use crate::build_cache::{BuildCache, PackageFacts};
use crate::cargo::CargoBuild;
use crate::options::BuildOptions;
use crate::output_dir::{Installed, Tidied};
use crate::package::{crate_dir, plugin_package};
use crate::repro::{Remap, ReproNote};
use crate::shared_route::{Before, SharedRoute};
use crate::staged::StagedLibrary;
use crate::stamp::{Settings, Stamp};

/// What [`build`] produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// The folder holding the intermediate files, with [`BuildOptions::leave_temps`].
    pub temps: Option<PathBuf>,
    /// Wall-clock time of the whole build.
    pub elapsed: Duration,
    /// Where that time went.
    pub times: BuildTimes,
}

/// Where a build's time went: cargo's, and ours on either side of it.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct BuildTimes {
    /// The version stamp: `cargo metadata`, `rustc -vV`, git, hashing the inputs.
    pub stamp: Duration,
    /// `cargo build`.
    pub cargo: Duration,
    /// Splitting the debug info out (`objcopy --strip-debug`).
    pub split: Duration,
    /// The rest: the output folder tidied, the library read, inspected and hashed, the notes,
    /// the manifest and library installed.
    pub install: Duration,
}

impl BuildTimes {
    /// Everything but cargo.
    pub fn ours(&self) -> Duration {
        self.stamp + self.split + self.install
    }

    /// The sum of both.
    pub fn add(&mut self, other: &BuildTimes) {
        self.stamp += other.stamp;
        self.cargo += other.cargo;
        self.split += other.split;
        self.install += other.install;
    }
}

impl Built {
    /// The line `build` prints: `built …` when it wrote the library, `unchanged since …` when
    /// an identical library was kept.
    pub fn summary(&self) -> String {
        let (what, kept) = match &self.installed {
            Installed::Unchanged { since, .. } => (format!("unchanged since {since}:"), ", kept"),
            _ => ("built".to_string(), ""),
        };
        format!(
            "{what} {} {} -> {} ({} KiB, sha256 {}{kept}) in {:.1}s",
            self.name,
            self.version,
            self.library.display(),
            self.size / 1024,
            &self.sha256[..12],
            self.elapsed.as_secs_f64()
        )
    }
}

/// The version stamp a build of the plugin in `plugin_dir` with `options` would get
/// (`build --print-stamp`); `output_dir` is left out of the hash when it lies in the crate.
pub fn stamp(plugin_dir: &Path, output_dir: &Path, options: &BuildOptions) -> Result<Stamp> {
    Ok(plugin_stamp(plugin_dir, output_dir, options, &mut BuildCache::default())?.0)
}

/// The facts of the plugin crate in `plugin_dir`, and the files they come from.
fn package_facts(plugin_dir: &Path) -> Result<(PackageFacts, Vec<PathBuf>)> {
    let (package, metadata) = plugin_package(plugin_dir)?;
    let path_packages = crate::stamp::path_packages(&metadata, &package)?;
    let workspace = metadata.workspace_root.as_std_path();
    let mut sources = vec![workspace.join("Cargo.toml")];
    sources.extend(metadata.packages.iter().map(|p| p.manifest_path.as_std_path().to_path_buf()));
    sources.extend(path_packages.values().map(|d| d.join("Cargo.toml")));
    sources.extend(crate::stamp::cargo_configs(crate_dir(&package)));
    Ok((PackageFacts { package, metadata, path_packages }, sources))
}

/// The workspace's shared route and the host's shared library before the build.
type Shared = Option<(SharedRoute, Before)>;

/// The stamp a build gets, with the plugin's package and workspace, and on the shared route
/// the host's shared library (whose hash is in the stamp).
fn plugin_stamp(
    plugin_dir: &Path,
    output_dir: &Path,
    options: &BuildOptions,
    cache: &mut BuildCache,
) -> Result<(Stamp, Arc<PackageFacts>, Shared)> {
    for (flag, patterns) in [("--include", &options.include), ("--exclude", &options.exclude)] {
        for p in patterns {
            // hotswap-build compiles them too; checking here names the flag before a long build.
            if let Err(e) = regex::Regex::new(p) {
                bail!("invalid {flag} regex `{p}`: {e}");
            }
        }
    }
    let facts = cache.package(plugin_dir, || package_facts(plugin_dir))?;
    let output = output_dir.canonicalize().ok();
    let shared = match SharedRoute::of(&facts.metadata)? {
        Some(route) => {
            let before = Before::take(route.library(facts.metadata.target_directory.as_std_path(), options.profile))?;
            Some((route, before))
        }
        None => None,
    };
    let shared_library = shared.as_ref().map(|(_, before)| before.sha256.as_deref().unwrap_or("none"));
    let settings = Settings { skip: output.as_deref(), shared_library, ..Settings::of(options) };
    let stamp = crate::stamp::stamp_cached(
        &facts.metadata,
        &facts.package,
        &facts.path_packages,
        &settings,
        options.verbose,
        cache,
    )?;
    Ok((stamp, facts, shared))
}

/// What cargo said about the plugin crate.
#[derive(Default)]
struct Artifacts {
    /// The cdylib.
    library: Option<PathBuf>,
    /// The build script's `OUT_DIR`, where the generated registry is.
    out_dir: Option<PathBuf>,
    /// The shared crate's `dylib`, on the shared route.
    shared: Option<cargo_metadata::Artifact>,
}

/// Builds the plugin crate in `plugin_dir` and installs its library and manifest in
/// `output_dir` (created if needed) atomically, unless an identical library is there already.
/// Prints only cargo's own output ([`BuildOptions::cargo_output`]), with
/// [`BuildOptions::verbose`] the commands run, and a note if `objcopy` cannot be run (see
/// [`crate::split_debug`]): notes and tidying come back in [`Built`].
///
/// What does not change between builds comes from the cache the last build saved under the
/// target folder ([`crate::build_cache_file`]), and this build saves it again.
pub fn build(plugin_dir: &Path, output_dir: &Path, options: &BuildOptions) -> Result<Built> {
    let mut cache = crate::build_cache_file::load(plugin_dir);
    let built = build_with(plugin_dir, output_dir, options, &mut cache);
    crate::build_cache_file::save(&cache, plugin_dir);
    built
}

/// [`build`], taking what has not changed since the last build from `cache` (what a
/// long-lived `watch` does; see [`crate::build_cache`]).
pub fn build_with(
    plugin_dir: &Path,
    output_dir: &Path,
    options: &BuildOptions,
    cache: &mut BuildCache,
) -> Result<Built> {
    build_prepared(plugin_dir, output_dir, options, cache, None)
}

/// A version stamp computed ahead of the build ([`prepare`]): `watch` computes it while it
/// waits for a save to settle, and uses it only if no change arrived after it started.
#[derive(Debug)]
pub struct Prepared {
    stamp: Stamp,
    facts: Arc<PackageFacts>,
    shared: Shared,
    /// How long it took.
    pub took: Duration,
}

/// The stamp [`build_prepared`] would compute first, computed now: valid for a build of the
/// files as they are now (the caller knows whether they changed since).
pub fn prepare(
    plugin_dir: &Path,
    output_dir: &Path,
    options: &BuildOptions,
    cache: &mut BuildCache,
) -> Result<Prepared> {
    let started = Instant::now();
    crate::output_dir::create(output_dir)?;
    let (stamp, facts, shared) = plugin_stamp(plugin_dir, output_dir, options, cache)?;
    Ok(Prepared { stamp, facts, shared, took: started.elapsed() })
}

/// [`build_with`], with the stamp computed beforehand by [`prepare`] when `prepared` is given
/// (its time is not counted in [`BuildTimes::stamp`]: it was spent before the build).
pub fn build_prepared(
    plugin_dir: &Path,
    output_dir: &Path,
    options: &BuildOptions,
    cache: &mut BuildCache,
    prepared: Option<Prepared>,
) -> Result<Built> {
    let started = Instant::now();
    crate::output_dir::create(output_dir)?;
    let tidied = crate::output_dir::tidy(output_dir)?;
    let stamp_started = Instant::now();
    let (stamp, facts, shared) = match prepared {
        Some(p) => (p.stamp, p.facts, p.shared),
        None => plugin_stamp(plugin_dir, output_dir, options, cache)?,
    };
    let (package, metadata) = (&facts.package, &facts.metadata);
    let mut times = BuildTimes { stamp: stamp_started.elapsed(), ..BuildTimes::default() };
    let workspace = metadata.workspace_root.as_std_path();
    let target_dir = metadata.target_directory.as_std_path();
    let plugin_dir = crate_dir(package);
    let temps = if options.leave_temps {
        Some(tempfile::Builder::new().prefix("hotswap-build-").tempdir()?.keep())
    } else {
        None
    };

    let mut cargo = CargoBuild::new(package.manifest_path.as_std_path(), options.profile, package.name.as_str());
    cargo.command().arg("--lib");
    let remap = Remap::new(workspace, target_dir);
    if options.reproducible {
        remap.apply(cargo.command());
    }
    if let Some((route, _)) = &shared {
        route.apply(cargo.command());
    }
    cargo
        .command()
        .args(&options.cargo_args)
        .env(hotswap_abi::env::VERSION, &stamp.version)
        .env(hotswap_abi::env::INCLUDE, options.include.join("\n"))
        .env(hotswap_abi::env::EXCLUDE, options.exclude.join("\n"))
        .env(hotswap_abi::env::LIVE_PREFIX, options.live_prefix.clone().unwrap_or_default());
    let mut found = Artifacts::default();
    let cargo_started = Instant::now();
    let log = cargo.run(options.cargo_output, options.leave_temps, options.verbose, |message| match message {
        Message::CompilerArtifact(a)
            if a.package_id == package.id && a.target.crate_types.iter().any(|t| t.to_string() == "cdylib") =>
        {
            found.library = a
                .filenames
                .iter()
                .find(|f| f.extension() == Some(std::env::consts::DLL_EXTENSION))
                .map(|f| f.as_std_path().to_path_buf());
        }
        Message::BuildScriptExecuted(b) if b.package_id == package.id => {
            found.out_dir = Some(b.out_dir.into_std_path_buf());
        }
        Message::CompilerArtifact(a) if shared.as_ref().is_some_and(|(r, _)| crate::shared_route::is_shared(&a, r)) => {
            found.shared = Some(a);
        }
        _ => {}
    })?;
    // On the shared route: refused when the build changed the host's shared library.
    let shared_library = match shared {
        Some((_, before)) => Some(before.finish(&package.name, found.shared.as_ref())?),
        None => None,
    };
    times.cargo = cargo_started.elapsed();
    let artifact = found.library.with_context(|| format!("cargo built no cdylib for {}", package.name))?;
    // Staged in the output folder (a hard link where it can) and read once: its bytes serve
    // the checks, the hash and the notes, and the staged file is what gets installed.
    let staged = StagedLibrary::link(&artifact, output_dir)?;
    let facts = inspect(&staged.bytes).with_context(|| format!("{} is not a usable plugin", artifact.display()))?;
    if facts.version != stamp.version {
        bail!(
            "{} carries version {} instead of {}: does build.rs call hotswap_build::generate() and lib.rs include hotswap_runtime::plugin!()?",
            artifact.display(),
            facts.version,
            stamp.version
        );
    }
    let file_name = Manifest::library_file_name(&facts.name, &facts.version);
    let library_path = output_dir.join(&file_name);
    // The debug info goes beside the library, not in it (see `split_debug`).
    let scratch = tempfile::Builder::new().prefix(".hotswap-split-").tempdir_in(output_dir)?;
    let stem = format!("{}@{}", facts.name, facts.version);
    let keep = options.keep_debuginfo || std::env::var_os(hotswap_abi::env::KEEP_DEBUGINFO).is_some_and(|v| v == "1");
    let split_started = Instant::now();
    let split =
        if keep { None } else { crate::split_debug::split(staged.path(), &staged.bytes, scratch.path(), &stem)? };
    times.split = split_started.elapsed();
    let (staged, debug_file) = match split {
        Some((stripped, debug)) => (StagedLibrary::adopt(stripped)?, Some(debug)),
        None => (staged, None),
    };
    let manifest = Manifest {
        name: facts.name.clone(),
        version: facts.version.clone(),
        git_revision: stamp.git_revision.clone(),
        sha256: staged.sha256().to_string(),
        fingerprint: facts.fingerprint.clone(),
        crate_identity: facts.identity.clone(),
        shared_library,
        built_at: stamp.built_at.clone(),
        library: file_name.clone(),
    };
    let mut notes: Vec<ReproNote> = ReproNote::for_stamp(&stamp, plugin_dir).into_iter().collect();
    if options.reproducible {
        notes.extend(crate::repro::embedded_paths(&staged.bytes, &remap));
    }
    let generated: Vec<PathBuf> =
        [Some(target_dir.to_path_buf()), crate::stamp::cargo_home(), cache.toolchain(plugin_dir)?.sysroot]
            .into_iter()
            .flatten()
            .collect();
    notes.extend(crate::repro::uncovered_inputs(&artifact, &stamp.covered, &generated));
    // Debug info first, then manifest and library: a host that sees the library sees both.
    if let Some(debug) = &debug_file {
        let to = output_dir.join(debug.file_name().expect("named by split_debug"));
        std::fs::rename(debug, &to).with_context(|| format!("renaming into {}", to.display()))?;
    }
    let size = staged.bytes.len() as u64;
    let installed = crate::output_dir::install(output_dir, staged, &manifest, !options.no_sync)?;
    if let Some(temps) = &temps {
        std::fs::write(temps.join("cargo-messages.jsonl"), &log)?;
        std::fs::copy(&artifact, temps.join(artifact.file_name().expect("artifact has a name")))?;
        if let Some(registry) = found.out_dir.map(|d| d.join("hotswap_registry.rs")).filter(|p| p.exists()) {
            std::fs::copy(&registry, temps.join("hotswap_registry.rs"))?;
        }
    }
    Ok(Built {
        name: facts.name,
        version: facts.version,
        library: library_path,
        size,
        sha256: manifest.sha256,
        installed,
        notes,
        tidied,
        temps,
        elapsed: started.elapsed(),
        times: BuildTimes {
            install: started.elapsed().saturating_sub(times.stamp + times.cargo + times.split),
            ..times
        },
    })
}
