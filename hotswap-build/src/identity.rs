//! Computing a crate identity record ([`hotswap_abi::identity`]) from a build script: the
//! crates the package being built links, as `cargo metadata` resolves them for the target, with
//! a hash of every file of each path crate.
//!
//! Cost: `cargo metadata` runs only when `Cargo.lock` or a manifest it read changed (their size
//! and modification time are kept in `$OUT_DIR`), and a file is read only when its size or
//! modification time changed; otherwise the record comes from stat calls alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use hotswap_abi::identity::{CrateEntry, Record, fnv1a};

use crate::Error;

/// Crates in the ABI fingerprint already (with the features that may differ between a host
/// and its plugins), left out of the record.
const IN_FINGERPRINT: [&str; 2] = ["hotswap-runtime", "hotswap-abi"];

const CACHE_FILE: &str = "hotswap_identity.cache";

/// What the build script of `manifest_dir`'s package links. `with_dev`: the package's own
/// dev-dependencies too (a host's tests and benches link them). Prints
/// `cargo:rerun-if-changed` for every input when `emit`.
pub(crate) fn compute(manifest_dir: &Path, out_dir: &Path, with_dev: bool, emit: bool) -> Result<Record, Error> {
    let cache_path = out_dir.join(CACHE_FILE);
    let cache = std::fs::read_to_string(&cache_path).unwrap_or_default();
    // Valid for this package only: a target folder that moved with its cache, or was seeded
    // from another checkout's (`cp -al`), holds a resolve whose path crates are that checkout's
    // folders, whose files would be hashed in place of this one's.
    let (resolved, inputs) = match Cached::parse(&cache)
        .filter(|c| c.inputs_unchanged() && c.with_dev == with_dev && c.manifest_dir == manifest_dir)
    {
        Some(c) => (c.packages, c.inputs),
        None => {
            let (packages, inputs) = resolve(manifest_dir, with_dev)?;
            (packages, inputs.into_iter().map(|p| (stat(&p), p)).collect())
        }
    };
    let old_files = Cached::parse(&cache).map(|c| c.files).unwrap_or_default();
    let mut files_seen = BTreeMap::new();
    let mut record = Record::default();
    for p in &resolved {
        // The `host` feature of a hotswap crate (`hotswap-tokio`) only adds the host's modules,
        // like the runtime's: hosts turn it on and plugins do not.
        let features =
            p.features.iter().filter(|f| !(p.name.starts_with("hotswap-") && *f == "host")).cloned().collect();
        let mut entry = CrateEntry::new(&p.name, &p.version, p.source.as_deref().unwrap_or("path"), features);
        if let (None, Some(dir)) = (&p.source, &p.dir) {
            let mut listed = Vec::new();
            walk(dir, dir, &mut listed)?;
            listed.sort();
            for (relative, path) in listed {
                let key = stat(&path);
                let hash = match old_files.get(&path) {
                    Some((k, h)) if *k == key => *h,
                    _ => {
                        let bytes = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
                        fnv1a(&bytes)
                    }
                };
                entry.add_file(&relative, hash);
                if emit {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
                files_seen.insert(path, (key, hash));
            }
            if emit && !out_dir.starts_with(dir) {
                // A file added to the crate (not for a crate holding the target folder, whose
                // every build would look like a change).
                println!("cargo:rerun-if-changed={}", dir.display());
            }
        }
        record.insert(entry);
    }
    if emit {
        for (_, path) in &inputs {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let text =
        Cached { manifest_dir: manifest_dir.to_path_buf(), with_dev, inputs, packages: resolved, files: files_seen }
            .render();
    if text != cache {
        // Through a new file and a rename, never in place: a target folder whose files are
        // hard links of another's (a seeded worktree, `cp -al`) must not rewrite the other's.
        let tmp = cache_path.with_extension("cache.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &cache_path);
        }
    }
    Ok(record)
}

/// One package of the resolve.
#[derive(Debug, Clone)]
struct Resolved {
    name: String,
    version: String,
    /// `None` for a path package.
    source: Option<String>,
    features: Vec<String>,
    /// The folder of a path package.
    dir: Option<PathBuf>,
}

/// Size and modification time (ns), or `-` for a missing file.
fn stat(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => {
            let t = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            format!("{}:{t}", m.len())
        }
        Err(_) => "-".to_string(),
    }
}

/// The cache kept in `$OUT_DIR`: the inputs of the last `cargo metadata` (by stat), its result,
/// and the hash of every file read (by stat). Paths are absolute, but this never leaves
/// `$OUT_DIR`, nor goes into any output.
struct Cached {
    /// The package the resolve is for.
    manifest_dir: PathBuf,
    with_dev: bool,
    inputs: Vec<(String, PathBuf)>,
    packages: Vec<Resolved>,
    files: BTreeMap<PathBuf, (String, u64)>,
}

impl Cached {
    fn inputs_unchanged(&self) -> bool {
        !self.inputs.is_empty() && self.inputs.iter().all(|(key, path)| stat(path) == *key)
    }

    fn render(&self) -> String {
        let mut out = format!("v4 {}\t{}\n", u8::from(self.with_dev), self.manifest_dir.display());
        for (key, path) in &self.inputs {
            out.push_str(&format!("input\t{key}\t{}\n", path.display()));
        }
        for p in &self.packages {
            out.push_str(&format!(
                "package\t{}\t{}\t{}\t{}\t{}\n",
                p.name,
                p.version,
                p.source.as_deref().unwrap_or(""),
                p.features.join(","),
                p.dir.as_deref().map(|d| d.display().to_string()).unwrap_or_default()
            ));
        }
        for (path, (key, hash)) in &self.files {
            out.push_str(&format!("file\t{key}\t{hash}\t{}\n", path.display()));
        }
        out
    }

    fn parse(text: &str) -> Option<Cached> {
        let mut lines = text.lines();
        let (with_dev, manifest_dir) = lines.next()?.strip_prefix("v4 ")?.split_once('\t')?;
        let mut c = Cached {
            manifest_dir: PathBuf::from(manifest_dir),
            with_dev: with_dev == "1",
            inputs: Vec::new(),
            packages: Vec::new(),
            files: BTreeMap::new(),
        };
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields[..] {
                ["input", key, path] => c.inputs.push((key.to_string(), PathBuf::from(path))),
                ["package", name, version, source, features, dir] => c.packages.push(Resolved {
                    name: name.to_string(),
                    version: version.to_string(),
                    source: (!source.is_empty()).then(|| source.to_string()),
                    features: features.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect(),
                    dir: (!dir.is_empty()).then(|| PathBuf::from(dir)),
                }),
                ["file", key, hash, path] => {
                    c.files.insert(PathBuf::from(path), (key.to_string(), hash.parse().ok()?));
                }
                _ => return None,
            }
        }
        Some(c)
    }
}

/// Runs `cargo metadata` for the target and walks the resolve from the package: its normal
/// dependencies, transitively (and its own dev-dependencies with `with_dev`); build
/// dependencies and proc-macro crates run at build time and share no values with the build's
/// output. Returns the
/// packages and the files whose change can change the resolve.
fn resolve(manifest_dir: &Path, with_dev: bool) -> Result<(Vec<Resolved>, Vec<PathBuf>), Error> {
    let manifest = manifest_dir.join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(["metadata", "--format-version", "1", "--manifest-path"]).arg(&manifest);
    // Only the target's packages: the others need not be downloaded (a fresh machine has only
    // what this build needed).
    if let Ok(target) = std::env::var("TARGET") {
        command.args(["--filter-platform", &target]);
    }
    let failed = |why: String| {
        Error::Invalid(format!("`{cargo} metadata` for the crate identity of {}: {why}", manifest.display()))
    };
    let output = command.output().map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| failed(format!("unreadable output: {e}")))?;
    let packages: BTreeMap<&str, &serde_json::Value> =
        json["packages"].as_array().into_iter().flatten().filter_map(|p| Some((p["id"].as_str()?, p))).collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = json["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = packages
        .iter()
        .find(|(_, p)| p["manifest_path"].as_str().is_some_and(|m| Path::new(m) == manifest))
        .map(|(id, _)| *id)
        .ok_or_else(|| failed("the package is not in its own metadata".into()))?;
    let mut seen = BTreeSet::from([root]);
    let mut queue = vec![(root, true)];
    while let Some((id, is_root)) = queue.pop() {
        let Some(node) = nodes.get(id) else { continue };
        // The runtime and the contract are covered by the fingerprint, and their dependencies
        // are theirs: the workspace's unified `host` feature would otherwise list host-only
        // crates (libloading, …) in a plugin's record.
        if !is_root && packages.get(id).is_some_and(|p| IN_FINGERPRINT.iter().any(|n| p["name"].as_str() == Some(n))) {
            continue;
        }
        for dep in node["deps"].as_array().into_iter().flatten() {
            let kinds = dep["dep_kinds"].as_array().into_iter().flatten();
            let linked = kinds.into_iter().any(|k| match k["kind"].as_str() {
                None => true,
                Some("dev") => is_root && with_dev,
                Some(_) => false,
            });
            // A proc-macro crate (and what only it uses) runs in the compiler: none of its
            // types reach the build's output.
            let proc_macro =
                |id: &str| {
                    packages.get(id).is_some_and(|p| {
                        p["targets"].as_array().into_iter().flatten().any(|t| {
                            t["kind"].as_array().into_iter().flatten().any(|k| k.as_str() == Some("proc-macro"))
                        })
                    })
                };
            if let Some(next) = dep["pkg"].as_str()
                && linked
                && !proc_macro(next)
                && seen.insert(next)
            {
                queue.push((next, false));
            }
        }
    }
    seen.remove(root);
    let workspace = json["workspace_root"].as_str().map(PathBuf::from).unwrap_or_default();
    let mut inputs = vec![workspace.join("Cargo.lock"), workspace.join("Cargo.toml"), manifest.clone()];
    // Cargo unifies features over the workspace's members: any member's manifest counts.
    for member in json["workspace_members"].as_array().into_iter().flatten().filter_map(|m| m.as_str()) {
        if let Some(path) = packages.get(member).and_then(|p| p["manifest_path"].as_str()) {
            inputs.push(PathBuf::from(path));
        }
    }
    let mut out = Vec::new();
    for id in seen {
        let (Some(p), Some(node)) = (packages.get(id), nodes.get(id)) else { continue };
        let name = p["name"].as_str().unwrap_or_default().to_string();
        if IN_FINGERPRINT.contains(&name.as_str()) {
            continue;
        }
        let source = p["source"].as_str().map(str::to_string);
        let path_manifest = p["manifest_path"].as_str().map(PathBuf::from);
        let dir = match (&source, &path_manifest) {
            (None, Some(m)) => {
                inputs.push(m.clone());
                m.parent().map(Path::to_path_buf)
            }
            _ => None,
        };
        let features =
            node["features"].as_array().into_iter().flatten().filter_map(|f| f.as_str()).map(str::to_string).collect();
        out.push(Resolved {
            name,
            version: p["version"].as_str().unwrap_or_default().to_string(),
            source,
            features,
            dir,
        });
    }
    inputs.sort();
    inputs.dedup();
    Ok((out, inputs))
}

/// The files of a path crate, as the stamp takes them: hidden entries, nested crates and cargo
/// target folders left out; each with its path relative to the crate, `/`-separated.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if path.join("Cargo.toml").exists() || path.join("CACHEDIR.TAG").exists() {
                continue;
            }
            walk(root, &path, out)?;
        } else if path.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push((relative.join("/"), path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace with package `app` depending on path crate `dep`, whose source says `text`.
    fn workspace(root: &Path, text: &str) {
        let write = |path: &str, body: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        };
        write("Cargo.toml", "[workspace]\nresolver = \"3\"\nmembers = [\"app\", \"dep\"]\n");
        write(
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\ndep = { path = \"../dep\" }\n",
        );
        write("app/src/lib.rs", "");
        write("dep/Cargo.toml", "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2024\"\n");
        write("dep/src/lib.rs", text);
    }

    /// A target folder copied or moved with its cache (a seeded worktree, a CI cache restored
    /// at another path) must not hash the first checkout's path crates in place of its own.
    #[test]
    fn a_cache_from_another_checkout_is_not_reused() {
        let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        workspace(first.path(), "pub const WORD: &str = \"first\";\n");
        workspace(second.path(), "pub const WORD: &str = \"second, another length\";\n");
        let out = tempfile::tempdir().unwrap();
        let of_first = compute(&first.path().join("app"), out.path(), false, false).unwrap().render();
        // The same out dir (its cache) now serves the second checkout.
        let of_second = compute(&second.path().join("app"), out.path(), false, false).unwrap().render();
        let fresh = tempfile::tempdir().unwrap();
        let expected = compute(&second.path().join("app"), fresh.path(), false, false).unwrap().render();
        assert_ne!(of_first, expected, "the two checkouts' `dep` differ");
        assert_eq!(of_second, expected, "the cache of the first checkout was reused for the second");
    }
}
