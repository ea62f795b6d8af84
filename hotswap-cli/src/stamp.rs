//! The version stamp: `<crate version>+g<commit>[.dirty].h<inputs>`, where `<inputs>` is a
//! short hash of everything that determines the library, so the same inputs give the same name
//! on any machine and in any checkout, and any change gives a new name.
//!
//! What the hash covers, each entry labelled so that no two inputs can be confused:
//! - every file of the plugin crate's folder and of every path dependency's folder (normal and
//!   build dependencies, transitively), by path relative to the crate and content; hidden
//!   entries, cargo target folders, nested crates and the output folder are left out;
//! - files those crates include from outside their folder with a literal path
//!   (an `include_str!` of a path that leaves the crate, such as the shared templates), by
//!   path relative to the workspace and content;
//! - the `Cargo.lock` entries (name, version, source, checksum, dependencies) reachable from the
//!   plugin, so a resolved dependency version counts but an unrelated lock change does not;
//! - the workspace's root `Cargo.toml` (profiles, patches) and the cargo configuration files
//!   that apply (`.cargo/config.toml` from the crate's folder up, and in `$CARGO_HOME`);
//! - the profile, the extra cargo arguments (except those that cannot change the output, such
//!   as `--offline` or `-j N`), `--include`, `--exclude`, `--live-prefix`, whether the crate is
//!   compiled for static linking;
//! - `rustc -vV` (the toolchain the crate's folder selects) and the environment variables
//!   cargo reads for flags (`RUSTFLAGS`, `CARGO_ENCODED_RUSTFLAGS`, `CARGO_PROFILE_*`, …).
//!
//! Absolute paths are never hashed: two checkouts at different paths get the same stamp. The
//! git commit (the last one touching the crate's folder) is there for people; it is an input
//! too, since it is part of the name compiled into the library.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, Package};
use sha2::{Digest, Sha256};

use crate::build_cache::{BuildCache, GitStatus};
use crate::options::BuildOptions;
use crate::paths::normalize;

/// How many hex digits of the input hash go into the version.
pub const HASH_DIGITS: usize = 12;

/// The version stamp and where it came from.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// `<crate version>+g<commit>[.dirty].h<inputs>`, or `<crate version>+h<inputs>` outside git.
    pub version: String,
    /// Short commit of the crate folder, `-dirty` with uncommitted changes; `None` outside git
    /// (see [`crate::repro::ReproNote::NoGitHistory`]).
    pub git_revision: Option<String>,
    /// The full input hash (hex); the version carries its first [`HASH_DIGITS`] digits.
    pub inputs: String,
    /// The build time, RFC 3339, UTC: information only, never part of the name.
    pub built_at: String,
    /// Every folder and file whose content was hashed (absolute), for the coverage check.
    pub covered: Vec<PathBuf>,
}

/// What decides the library besides the crate's files.
#[derive(Debug, Clone, Default)]
pub struct Settings<'a> {
    /// `dev` or `release`.
    pub profile: &'a str,
    /// Extra arguments for cargo.
    pub cargo_args: &'a [String],
    /// `--include` regexes.
    pub include: &'a [String],
    /// `--exclude` regexes.
    pub exclude: &'a [String],
    /// `--live-prefix`.
    pub live_prefix: Option<&'a str>,
    /// Compiled to be linked into a host.
    pub linked_statically: bool,
    /// Absolute paths remapped (`build --reproducible`).
    pub reproducible: bool,
    /// A folder never to hash (the output folder, when it lies inside a crate).
    pub skip: Option<&'a Path>,
    /// On the shared route, the sha256 of the host's shared library the plugin links
    /// (`none` before the host was built).
    pub shared_library: Option<&'a str>,
}

impl<'a> Settings<'a> {
    /// The settings `options` give a plugin build; set `skip` and `linked_statically` after.
    pub fn of(options: &'a BuildOptions) -> Settings<'a> {
        Settings {
            profile: options.profile.cargo_name(),
            cargo_args: &options.cargo_args,
            include: &options.include,
            exclude: &options.exclude,
            live_prefix: options.live_prefix.as_deref(),
            linked_statically: false,
            reproducible: options.reproducible,
            skip: None,
            shared_library: None,
        }
    }
}

/// Cargo arguments that cannot change what is built, left out of the hash. Flags followed by
/// a value are listed with `=`.
const NEUTRAL_ARGS: &[&str] =
    &["--offline", "--locked", "--frozen", "-q", "--quiet", "-v", "-vv", "--verbose", "-j=", "--jobs=", "--color="];

/// Feeds labelled values into a sha256, each as `label`, length, bytes, so that no two
/// sequences of inputs hash alike.
struct Hasher(Sha256);

impl Hasher {
    fn put(&mut self, label: &str, value: &[u8]) {
        for part in [label.as_bytes(), value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }
}

/// Computes the stamp of the crate `package` of the workspace `metadata`. With `verbose`,
/// prints the stamp and the full input hash on standard error.
pub fn stamp(metadata: &Metadata, package: &Package, settings: &Settings, verbose: bool) -> Result<Stamp> {
    let path_packages = path_packages(metadata, package)?;
    stamp_cached(metadata, package, &path_packages, settings, verbose, &mut BuildCache::default())
}

/// [`stamp`], with the plugin's path packages ([`path_packages`]) given, and what does not
/// change between builds taken from `cache` (see [`crate::build_cache`]).
pub fn stamp_cached(
    metadata: &Metadata,
    package: &Package,
    path_packages: &BTreeMap<String, PathBuf>,
    settings: &Settings,
    verbose: bool,
    cache: &mut BuildCache,
) -> Result<Stamp> {
    let crate_dir = package.manifest_path.parent().context("a manifest has a folder")?.as_std_path();
    let workspace = metadata.workspace_root.as_std_path();
    // Runs while the files are hashed.
    let git = GitStatus::start(crate_dir);
    let mut h = Hasher(Sha256::new());
    h.put("stamp format", b"hotswap 1");
    h.put("crate", format!("{} {}", package.name, package.version).as_bytes());
    h.put("profile", settings.profile.as_bytes());
    for arg in significant_args(settings.cargo_args) {
        h.put("cargo arg", arg.as_bytes());
    }
    for p in settings.include {
        h.put("include", p.as_bytes());
    }
    for p in settings.exclude {
        h.put("exclude", p.as_bytes());
    }
    h.put("live prefix", settings.live_prefix.unwrap_or("").as_bytes());
    h.put("static", &[u8::from(settings.linked_statically)]);
    h.put("reproducible", &[u8::from(settings.reproducible)]);
    h.put("toolchain", cache.toolchain(crate_dir)?.version.as_bytes());
    if let Some(shared) = settings.shared_library {
        h.put("shared library", shared.as_bytes());
    }
    for (key, value) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if is_flag_variable(&key) {
            h.put(&format!("env {key}"), value.as_bytes());
        }
    }
    let mut covered = Vec::new();
    for config in cargo_configs(crate_dir) {
        if let Ok(text) = std::fs::read(&config) {
            h.put("cargo config", &text);
            covered.push(config);
        }
    }
    let root_manifest = workspace.join("Cargo.toml");
    if root_manifest != package.manifest_path.as_std_path()
        && let Ok(text) = std::fs::read(&root_manifest)
    {
        h.put("workspace manifest", &text);
        covered.push(root_manifest);
    }
    let version = package.version.to_string();
    let lines = cache.lock_closure(&workspace.join("Cargo.lock"), &format!("{} {version}", package.name), || {
        lock_closure(workspace, &package.name, &version)
    })?;
    for line in lines.iter() {
        h.put("lock", line.as_bytes());
    }
    let mut includes_outside = BTreeSet::new();
    for (label, dir) in path_packages {
        let mut files =
            FolderHash { root: dir.clone(), skip: settings.skip, hasher: &mut h, outside: BTreeSet::new(), cache };
        files.put_folder(label)?;
        includes_outside.extend(files.outside);
        covered.push(dir.clone());
    }
    for file in includes_outside {
        let label = file.strip_prefix(workspace).map(Path::to_path_buf).unwrap_or_else(|_| file.clone());
        let content = std::fs::read(&file).unwrap_or_default();
        h.put(&format!("included {}", label.display()), &content);
        covered.push(file);
    }
    let inputs: String = h.0.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let short = &inputs[..HASH_DIGITS];
    let built_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let crate_version = package.version.to_string();
    let (version, git_revision) = match git.finish(cache) {
        Some((commit, dirty)) => {
            let version = format!("{crate_version}+g{commit}{}.h{short}", if dirty { ".dirty" } else { "" });
            (version, Some(if dirty { format!("{commit}-dirty") } else { commit }))
        }
        None => (format!("{crate_version}+h{short}"), None),
    };
    if verbose {
        eprintln!("version stamp {version} (inputs {inputs})");
    }
    Ok(Stamp { version, git_revision, inputs, built_at, covered })
}

/// The cargo arguments that can change the output, in order.
fn significant_args(args: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let neutral = NEUTRAL_ARGS.iter().any(|n| match n.strip_suffix('=') {
            Some(flag) => {
                if arg == flag {
                    skip_value = true;
                    true
                } else {
                    arg.starts_with(n) || (flag.len() == 2 && arg.starts_with(flag))
                }
            }
            None => arg == n,
        });
        if !neutral {
            out.push(arg.as_str());
        }
    }
    out
}

/// Environment variables cargo or rustc read for compiler flags or profiles. Paths that are
/// remapped away (`CARGO_TARGET_DIR`, `CARGO_HOME`) and wrappers that do not change the output
/// (`RUSTC_WRAPPER`) are not among them.
fn is_flag_variable(key: &str) -> bool {
    matches!(key, "RUSTFLAGS" | "CARGO_ENCODED_RUSTFLAGS" | "RUSTC_BOOTSTRAP" | "CARGO_BUILD_RUSTFLAGS")
        || key.starts_with("CARGO_PROFILE_")
        || (key.starts_with("CARGO_TARGET_") && key != "CARGO_TARGET_DIR")
        || key == "CARGO_BUILD_TARGET"
}

/// Cargo configuration files that apply to a build in `dir`, outermost first.
pub fn cargo_configs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(home) = cargo_home() {
        found.extend(["config", "config.toml"].map(|f| home.join(f)));
    }
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    for folder in ancestors {
        found.extend(["config", "config.toml"].map(|f| folder.join(".cargo").join(f)));
    }
    found.dedup();
    found.into_iter().filter(|p| p.is_file()).collect()
}

/// `$CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// The lines of `Cargo.lock` describing the packages reachable from `name version`, sorted.
/// A workspace without a lock file, or whose lock lacks the crate (just added), gets it written
/// first, as the build would, so the first build and the next hash the same lock.
fn lock_closure(workspace: &Path, name: &str, version: &str) -> Result<Vec<String>> {
    let lock_path = workspace.join("Cargo.lock");
    let listed = |text: &str| text.contains(&format!("name = \"{name}\"\nversion = \"{version}\"\n"));
    if !std::fs::read_to_string(&lock_path).is_ok_and(|t| listed(&t)) {
        // What `cargo build` would do first: a new lock file, or the new member added to it
        // (other entries kept as they are).
        let cargo = crate::cargo::program();
        let mut command = Command::new(&cargo);
        if lock_path.exists() {
            command.args(["update", "--workspace", "--quiet"]);
        } else {
            command.args(["generate-lockfile", "--quiet"]);
        }
        let status = command
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .status()
            .with_context(|| format!("cannot run {cargo} to write {}", lock_path.display()))?;
        if !status.success() {
            bail!("cargo could not write {} ({status})", lock_path.display());
        }
    }
    let text = std::fs::read_to_string(&lock_path).with_context(|| format!("reading {}", lock_path.display()))?;
    let doc: toml_edit::DocumentMut = text.parse().with_context(|| format!("parsing {}", lock_path.display()))?;
    let mut packages: Vec<LockEntry> = Vec::new();
    if let Some(array) = doc.get("package").and_then(|p| p.as_array_of_tables()) {
        for table in array.iter() {
            let field = |key: &str| table.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let dependencies = table
                .get("dependencies")
                .and_then(|d| d.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            packages.push(LockEntry {
                name: field("name"),
                version: field("version"),
                source: field("source"),
                checksum: field("checksum"),
                dependencies,
            });
        }
    }
    let find = |reference: &str| -> Option<usize> {
        // "name", "name version" or "name version (source)".
        let mut parts = reference.splitn(3, ' ');
        let (n, v) = (parts.next()?, parts.next());
        let s = parts.next().map(|s| s.trim_start_matches('(').trim_end_matches(')'));
        packages.iter().position(|p| p.name == n && v.is_none_or(|v| p.version == v) && s.is_none_or(|s| p.source == s))
    };
    let start = packages
        .iter()
        .position(|p| p.name == name && p.version == version && p.source.is_empty())
        .with_context(|| format!("{} has no entry for {name} {version}", lock_path.display()))?;
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for reference in &packages[i].dependencies {
            let j = find(reference).with_context(|| {
                format!(
                    "{}: {} depends on `{reference}`, which it does not list",
                    lock_path.display(),
                    packages[i].name
                )
            })?;
            if seen.insert(j) {
                queue.push_back(j);
            }
        }
    }
    let mut lines: Vec<String> = seen
        .into_iter()
        .map(|i| {
            let p = &packages[i];
            format!("{} {} {} {} [{}]", p.name, p.version, p.source, p.checksum, p.dependencies.join(", "))
        })
        .collect();
    lines.sort();
    Ok(lines)
}

struct LockEntry {
    name: String,
    version: String,
    source: String,
    checksum: String,
    dependencies: Vec<String>,
}

/// The plugin and its path dependencies (normal and build, transitively), each with a label
/// that does not depend on where the checkout is (`name version`) and its folder.
pub fn path_packages(metadata: &Metadata, package: &Package) -> Result<BTreeMap<String, PathBuf>> {
    let mut found = BTreeMap::new();
    let mut queue: VecDeque<Package> = VecDeque::from([package.clone()]);
    let mut seen = BTreeSet::new();
    while let Some(p) = queue.pop_front() {
        let dir = p.manifest_path.parent().context("a manifest has a folder")?.as_std_path().to_path_buf();
        if !seen.insert(dir.clone()) {
            continue;
        }
        for dep in &p.dependencies {
            if dep.kind == DependencyKind::Development {
                continue;
            }
            let Some(path) = &dep.path else { continue };
            let manifest = path.join("Cargo.toml");
            let member = metadata.packages.iter().find(|m| m.manifest_path == manifest).cloned();
            let next = match member {
                Some(m) => m,
                None => {
                    // A path dependency outside the workspace: ask cargo about its own.
                    let outside = MetadataCommand::new()
                        .manifest_path(manifest.as_std_path())
                        .no_deps()
                        .exec()
                        .with_context(|| format!("cargo metadata for {manifest}"))?;
                    outside
                        .packages
                        .into_iter()
                        .find(|m| m.manifest_path == manifest)
                        .with_context(|| format!("{manifest} is not a package"))?
                }
            };
            queue.push_back(next);
        }
        found.insert(format!("{} {}", p.name, p.version), dir);
    }
    Ok(found)
}

/// Hashes the files of one crate folder, and collects the files its sources include from
/// outside it by a literal path.
struct FolderHash<'a, 'h> {
    root: PathBuf,
    skip: Option<&'a Path>,
    hasher: &'h mut Hasher,
    outside: BTreeSet<PathBuf>,
    cache: &'h mut BuildCache,
}

impl FolderHash<'_, '_> {
    fn put_folder(&mut self, label: &str) -> Result<()> {
        let mut entries = Vec::new();
        self.collect(&self.root.clone(), &mut entries)?;
        entries.sort();
        for (relative, path) in entries {
            let key = format!("{label} file {}", String::from_utf8_lossy(relative.as_os_str().as_bytes()));
            let meta = std::fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)?;
                self.hasher.put(&format!("{key} -> "), target.as_os_str().as_bytes());
                if !path.is_file() {
                    continue;
                }
            }
            let is_source = path.extension().is_some_and(|e| e == "rs");
            let facts =
                self.cache.file(&path, |content| if is_source { includes(&path, content) } else { Vec::new() })?;
            self.outside.extend(facts.includes.into_iter().filter(|target| !target.starts_with(&self.root)));
            self.hasher.put(&key, &facts.digest);
        }
        Ok(())
    }

    fn collect(&self, dir: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
        let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if entry.file_name().as_bytes().starts_with(b".") || Some(path.as_path()) == self.skip {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                // Another crate (hashed on its own if it is a dependency) or a cargo target folder.
                if path.join("Cargo.toml").exists() || path.join("CACHEDIR.TAG").exists() {
                    continue;
                }
                self.collect(&path, out)?;
            } else {
                let relative = path.strip_prefix(&self.root).expect("walked from the root").to_path_buf();
                out.push((relative, path));
            }
        }
        Ok(())
    }
}

/// The targets of `include_str!`, `include_bytes!` and `include!` with a literal path in the
/// source `file` (whose content is `content`).
fn includes(file: &Path, content: &[u8]) -> Vec<PathBuf> {
    static PATTERN: OnceLock<regex::bytes::Regex> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::bytes::Regex::new(r#"include(?:_str|_bytes)?!\s*\(\s*"([^"\\]+)"\s*\)"#).expect("valid regex")
    });
    let folder = file.parent().unwrap_or(Path::new("."));
    pattern
        .captures_iter(content)
        .map(|caps| normalize(&folder.join(Path::new(std::ffi::OsStr::from_bytes(&caps[1])))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_arguments_are_left_out_and_others_kept() {
        let args: Vec<String> =
            ["--offline", "-j", "4", "--features", "loud", "--jobs=2", "-q", "--locked", "-j8", "--color", "never"]
                .map(String::from)
                .to_vec();
        assert_eq!(significant_args(&args), vec!["--features", "loud"]);
    }
}
