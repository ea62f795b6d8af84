//! What a long-lived `watch` keeps between plugin builds, so that a cycle pays only for what
//! changed (issue 24): the crate's `cargo metadata`, the toolchain (`rustc -vV`,
//! `rustc --print sysroot`), the plugin's `Cargo.lock` closure, the digest of every file the
//! version stamp hashes, and the last commit touching the crate. A one-shot `build` starts
//! from an empty cache ([`BuildCache::default`]) and so computes everything.
//!
//! Each entry is kept with the identity of the files it was computed from (size, modification
//! and change times to the nanosecond, inode and device: [`FileKey`]), checked again on every
//! use, so an entry whose files changed is computed afresh:
//! - metadata: the workspace's root `Cargo.toml`, every member's and path dependency's
//!   `Cargo.toml`, and the cargo configuration files that apply;
//! - toolchain: `$RUSTC`, `$RUSTUP_TOOLCHAIN`, the `rust-toolchain(.toml)` files from the
//!   crate's folder up, rustup's `settings.toml` and its `toolchains` folder (installing or
//!   updating a toolchain changes it);
//! - lock closure: `Cargo.lock`;
//! - a file's digest: the file itself; a digest is kept only when the file's modification time
//!   was more than [`RACY`] before it was read, so a write landing in the same clock tick as
//!   the read can never be mistaken for the content read (git's "racy clean" rule);
//! - the commit: the commit `HEAD` names (from the `git status` each stamp runs anyway).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Metadata, Package};

/// How much older than its read a file's modification time must be for its digest to be kept.
pub const RACY: Duration = Duration::from_secs(1);

/// The identity of a file's content as `stat` tells it; `None` when it does not exist.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileKey(Option<[i64; 7]>);

impl FileKey {
    /// The key of `path` now (following symbolic links).
    pub fn of(path: &Path) -> FileKey {
        FileKey(std::fs::metadata(path).ok().map(|m| {
            [m.size() as i64, m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), m.ino() as i64, m.dev() as i64]
        }))
    }
}

fn keys(paths: &[PathBuf]) -> Vec<FileKey> {
    paths.iter().map(|p| FileKey::of(p)).collect()
}

/// A plugin crate's package, its workspace, and its path packages (label → folder), as the
/// stamp needs them.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PackageFacts {
    /// The plugin's package.
    pub package: Package,
    /// Its workspace (members only).
    pub metadata: Metadata,
    /// The plugin and its path dependencies, transitively (`name version` → folder).
    pub path_packages: BTreeMap<String, PathBuf>,
}

/// The toolchain a crate's folder selects.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Toolchain {
    /// `rustc -vV`.
    pub version: String,
    /// `rustc --print sysroot`, when rustc answers.
    pub sysroot: Option<PathBuf>,
}

/// A file's digest, and the files its source includes from outside its crate by a literal path.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileFacts {
    /// sha256 of the content.
    pub digest: [u8; 32],
    /// `include_str!`/`include_bytes!`/`include!` targets outside the crate (absolute).
    pub includes: Vec<PathBuf>,
}

/// A value and the files (and their keys) it was computed from.
type Keyed<T> = (Vec<PathBuf>, Vec<FileKey>, T);

/// The lock closure of a plugin (`name version`) in a lock file, and the lock file's key.
type LockEntry = (FileKey, Arc<Vec<String>>);

/// See the module's documentation. Kept across one-shot builds in a file under the target
/// folder ([`crate::build_cache_file`]).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct BuildCache {
    #[serde(with = "entries")]
    packages: HashMap<PathBuf, Keyed<Arc<PackageFacts>>>,
    #[serde(with = "entries")]
    toolchains: HashMap<PathBuf, Keyed<Toolchain>>,
    #[serde(with = "entries")]
    locks: HashMap<(PathBuf, String), LockEntry>,
    #[serde(with = "entries")]
    files: HashMap<PathBuf, (FileKey, FileFacts)>,
    #[serde(with = "entries")]
    commits: HashMap<(PathBuf, String), Option<String>>,
}

/// A map written as a list of `(key, value)` pairs (JSON keys are strings only).
mod entries {
    use std::collections::HashMap;
    use std::hash::Hash;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(map: &HashMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

impl BuildCache {
    /// The facts of the plugin crate in `plugin_dir`, from `compute` unless the files they
    /// came from are unchanged; `compute` also returns the manifests and configuration files
    /// they depend on.
    pub fn package(
        &mut self,
        plugin_dir: &Path,
        compute: impl FnOnce() -> Result<(PackageFacts, Vec<PathBuf>)>,
    ) -> Result<Arc<PackageFacts>> {
        if let Some((paths, old, facts)) = self.packages.get(plugin_dir)
            && keys(paths) == *old
        {
            return Ok(Arc::clone(facts));
        }
        let started = SystemTime::now();
        let (facts, paths) = compute()?;
        let facts = Arc::new(facts);
        if paths.iter().all(|p| !p.exists() || settled(p, started)) {
            let old = keys(&paths);
            self.packages.insert(plugin_dir.to_path_buf(), (paths, old, Arc::clone(&facts)));
        }
        Ok(facts)
    }

    /// The target folder of the plugin crate in `plugin_dir`, if its facts are cached.
    pub fn target_dir(&self, plugin_dir: &Path) -> Option<PathBuf> {
        self.packages.get(plugin_dir).map(|(_, _, facts)| facts.metadata.target_directory.clone().into_std_path_buf())
    }

    /// The toolchain `crate_dir` selects.
    pub fn toolchain(&mut self, crate_dir: &Path) -> Result<Toolchain> {
        let mut paths = Vec::new();
        for dir in crate_dir.ancestors() {
            paths.extend(["rust-toolchain", "rust-toolchain.toml"].map(|f| dir.join(f)));
        }
        let rustup = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")));
        if let Some(rustup) = rustup {
            paths.extend([rustup.join("settings.toml"), rustup.join("toolchains")]);
        }
        // The variables as if they were files: a change of either is a change of key.
        let vars = format!("{:?} {:?}", std::env::var_os("RUSTC"), std::env::var_os("RUSTUP_TOOLCHAIN"));
        paths.push(PathBuf::from(vars));
        if let Some((old_paths, old, toolchain)) = self.toolchains.get(crate_dir)
            && *old_paths == paths
            && keys(&paths) == *old
        {
            return Ok(toolchain.clone());
        }
        let toolchain = Toolchain { version: rustc_version(crate_dir)?, sysroot: sysroot(crate_dir) };
        let old = keys(&paths);
        self.toolchains.insert(crate_dir.to_path_buf(), (paths, old, toolchain.clone()));
        Ok(toolchain)
    }

    /// The lock closure of `plugin` (`name version`) in `lock`, from `compute` unless the lock
    /// file is unchanged.
    pub fn lock_closure(
        &mut self,
        lock: &Path,
        plugin: &str,
        compute: impl FnOnce() -> Result<Vec<String>>,
    ) -> Result<Arc<Vec<String>>> {
        let id = (lock.to_path_buf(), plugin.to_string());
        if let Some((old, lines)) = self.locks.get(&id)
            && FileKey::of(lock) == *old
        {
            return Ok(Arc::clone(lines));
        }
        let started = SystemTime::now();
        let lines = Arc::new(compute()?);
        // `compute` may have written the lock; its key is taken after.
        if settled(lock, started) {
            self.locks.insert(id, (FileKey::of(lock), Arc::clone(&lines)));
        }
        Ok(lines)
    }

    /// The digest of `path` and what `scan` finds in its content, computed again only when
    /// the file changed.
    pub fn file(&mut self, path: &Path, scan: impl FnOnce(&[u8]) -> Vec<PathBuf>) -> Result<FileFacts> {
        use sha2::Digest;
        let key = FileKey::of(path);
        if let Some((old, facts)) = self.files.get(path)
            && *old == key
        {
            return Ok(facts.clone());
        }
        let started = SystemTime::now();
        let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let facts = FileFacts { digest: sha2::Sha256::digest(&content).into(), includes: scan(&content) };
        if settled(path, started) {
            self.files.insert(path.to_path_buf(), (key, facts.clone()));
        }
        Ok(facts)
    }

    /// The short commit of the last commit touching `dir`, given the commit `HEAD` names.
    pub fn commit(&mut self, dir: &Path, head: &str) -> Option<String> {
        let id = (dir.to_path_buf(), head.to_string());
        if let Some(commit) = self.commits.get(&id) {
            return commit.clone();
        }
        let commit = git(dir, &["log", "-1", "--format=%H", "--", "."]).filter(|c| c.len() >= 9);
        let commit = commit.map(|c| c[..9].to_string());
        self.commits.insert(id, commit.clone());
        commit
    }
}

/// Whether `path` was last modified more than [`RACY`] before `read`.
fn settled(path: &Path, read: SystemTime) -> bool {
    std::fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|m| read.duration_since(m).is_ok_and(|age| age > RACY))
}

/// `rustc -vV` as run in the crate's folder (so a `rust-toolchain.toml` there counts).
fn rustc_version(crate_dir: &Path) -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .current_dir(crate_dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `{rustc} -vV` for the version stamp"))?;
    if !out.status.success() {
        bail!("`{rustc} -vV` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The toolchain's sysroot (`rustc --print sysroot`) as run in `crate_dir`.
pub fn sysroot(crate_dir: &Path) -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).args(["--print", "sysroot"]).current_dir(crate_dir).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `git status` of a crate's folder, started before the stamp hashes the files and read
/// after ([`GitStatus::finish`]): one process per stamp, running beside the hashing.
#[derive(Debug)]
pub struct GitStatus {
    child: Option<Child>,
    dir: PathBuf,
}

impl GitStatus {
    /// Starts `git status --porcelain=v2 --branch -- .` in `dir`.
    pub fn start(dir: &Path) -> GitStatus {
        let child = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["status", "--porcelain=v2", "--branch", "--", "."])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        GitStatus { child, dir: dir.to_path_buf() }
    }

    /// The short commit of the last commit touching the folder, and whether the folder has
    /// uncommitted changes; `None` outside git or before the first commit. Nine digits
    /// whatever the repository's size, so clones agree.
    pub fn finish(self, cache: &mut BuildCache) -> Option<(String, bool)> {
        let out = self.child?.wait_with_output().ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let head = text.lines().find_map(|l| l.strip_prefix("# branch.oid "))?.trim();
        if head == "(initial)" {
            return None;
        }
        let dirty = text.lines().any(|l| !l.starts_with('#') && !l.is_empty());
        Some((cache.commit(&self.dir, head)?, dirty))
    }
}
