//! Byte-reproducible builds: the path remapping passed to rustc, and the checks that say what
//! in a finished library would still differ between checkouts or machines.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::normalize;
use crate::stamp::{Stamp, cargo_home};

/// The folders whose absolute paths must not reach the library, and what they become.
#[derive(Debug, Clone)]
pub struct Remap {
    /// `(from, to)`, most general first: rustc lets the last matching prefix win.
    pub prefixes: Vec<(PathBuf, String)>,
}

impl Remap {
    /// The workspace becomes `.`, cargo's home (registry and git sources) `/cargo`, and a
    /// target folder outside the workspace `./target`.
    pub fn new(workspace: &Path, target_dir: &Path) -> Remap {
        let mut prefixes = Vec::new();
        if let Some(home) = cargo_home() {
            prefixes.push((home, "/cargo".to_string()));
        }
        prefixes.push((workspace.to_path_buf(), ".".to_string()));
        if !target_dir.starts_with(workspace) {
            prefixes.push((target_dir.to_path_buf(), "./target".to_string()));
        }
        prefixes.sort_by_key(|(from, _)| from.as_os_str().len());
        Remap { prefixes }
    }

    fn flags(&self) -> Vec<String> {
        self.prefixes.iter().map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display())).collect()
    }

    /// Adds the flags to a cargo command without dropping the user's own: appended to
    /// `CARGO_ENCODED_RUSTFLAGS` or `RUSTFLAGS` when one is set (either replaces cargo's
    /// configured flags), else merged into `build.rustflags` with `--config`. A configured
    /// `target.<triple>.rustflags` overrides `build.rustflags`; [`embedded_paths`] then says
    /// which paths were left in.
    pub fn apply(&self, command: &mut Command) {
        let flags = self.flags();
        let encoded = std::env::var("CARGO_ENCODED_RUSTFLAGS").ok().filter(|f| !f.is_empty());
        let plain = std::env::var("RUSTFLAGS").ok().filter(|f| !f.trim().is_empty());
        let existing: Option<Vec<String>> = match (encoded, plain) {
            (Some(e), _) => Some(e.split('\x1f').map(str::to_string).collect()),
            (None, Some(p)) => Some(p.split_whitespace().map(str::to_string).collect()),
            (None, None) => None,
        };
        match existing {
            Some(mut all) => {
                all.extend(flags);
                command.env_remove("RUSTFLAGS").env("CARGO_ENCODED_RUSTFLAGS", all.join("\x1f"));
            }
            None => {
                let list: Vec<String> =
                    flags.iter().map(|f| serde_json::to_string(f).expect("strings serialize")).collect();
                command.arg("--config").arg(format!("build.rustflags=[{}]", list.join(", ")));
            }
        }
    }
}

/// Something that keeps a library from being byte-identical across checkouts or machines, an
/// input the version stamp does not see, or a stamp without a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReproNote {
    /// The library contains this absolute path (a remapping did not apply).
    EmbeddedPath {
        /// The path.
        path: PathBuf,
        /// How many times it occurs.
        count: usize,
    },
    /// The compiler read these files, which the version stamp does not hash.
    Uncovered {
        /// The files.
        files: Vec<PathBuf>,
    },
    /// The crate has no git history, so its version stamp names no commit.
    NoGitHistory {
        /// The crate's folder.
        crate_dir: PathBuf,
    },
}

impl ReproNote {
    /// The note a stamp of the crate in `crate_dir` calls for: [`ReproNote::NoGitHistory`]
    /// when it names no commit.
    pub fn for_stamp(stamp: &Stamp, crate_dir: &Path) -> Option<ReproNote> {
        stamp.git_revision.is_none().then(|| ReproNote::NoGitHistory { crate_dir: crate_dir.to_path_buf() })
    }
}

impl std::fmt::Display for ReproNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReproNote::EmbeddedPath { path, count } => write!(
                f,
                "the library contains the absolute path {} ({count} times), so it differs between checkouts at other paths: the --remap-path-prefix flags did not apply (a `target.<triple>.rustflags` in the cargo configuration overrides the `build.rustflags` they are added to)",
                path.display()
            ),
            ReproNote::Uncovered { files } => {
                // The first few by name: in a large workspace the list holds every member's
                // manifest (inputs of the crate-identity step), which would fill the screen.
                const SHOWN: usize = 5;
                let mut names =
                    files.iter().take(SHOWN).map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
                if files.len() > SHOWN {
                    names.push_str(&format!(" and {} more", files.len() - SHOWN));
                }
                write!(
                    f,
                    "the compiler read {} file(s) the version stamp does not hash, so a change to them alone keeps the version (and the next build refuses to replace the library): {names}",
                    files.len()
                )
            }
            ReproNote::NoGitHistory { crate_dir } => write!(
                f,
                "{} has no git history (not a git checkout, no commit touching it, or no git); the version stamp has no commit",
                crate_dir.display()
            ),
        }
    }
}

/// The remapped folders whose absolute path still occurs in `bytes`.
pub fn embedded_paths(bytes: &[u8], remap: &Remap) -> Vec<ReproNote> {
    remap
        .prefixes
        .iter()
        .filter_map(|(from, _)| {
            let needle = from.as_os_str().as_encoded_bytes();
            let count = memchr::memmem::find_iter(bytes, needle).count();
            (count > 0).then(|| ReproNote::EmbeddedPath { path: from.clone(), count })
        })
        .collect()
}

/// Files listed in the artifact's dep-info (`<artifact>.d`, written by cargo) that lie under
/// none of `covered` (hashed folders and files) nor `generated` (target folder, cargo home,
/// toolchain sysroot). Nothing when the dep-info is missing.
pub fn uncovered_inputs(artifact: &Path, covered: &[PathBuf], generated: &[PathBuf]) -> Option<ReproNote> {
    let text = std::fs::read_to_string(artifact.with_extension("d")).ok()?;
    let (_, deps) = text.lines().next()?.split_once(": ")?;
    let mut files: Vec<PathBuf> = split_escaped(deps)
        .into_iter()
        .map(|d| normalize(Path::new(&d)))
        .filter(|d| !covered.iter().chain(generated).any(|c| d.starts_with(c)))
        .collect();
    files.sort();
    files.dedup();
    (!files.is_empty()).then_some(ReproNote::Uncovered { files })
}

/// Splits a make-style dependency list at unescaped spaces (`\ ` is a space in a name).
fn split_escaped(list: &str) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current).into());
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current.into());
    }
    out
}

/// The toolchain's sysroot (`rustc --print sysroot`), whose files are covered by `rustc -vV`.
pub fn sysroot(crate_dir: &Path) -> Option<PathBuf> {
    crate::build_cache::sysroot(crate_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_lists_keep_escaped_spaces() {
        assert_eq!(split_escaped("/a/b\\ c.rs /d.rs"), vec![OsString::from("/a/b c.rs"), OsString::from("/d.rs")]);
    }

    #[test]
    fn the_most_specific_prefix_comes_last() {
        let remap = Remap::new(Path::new("/w"), Path::new("/elsewhere/target-folder"));
        let lengths: Vec<usize> = remap.prefixes.iter().map(|(p, _)| p.as_os_str().len()).collect();
        assert!(lengths.windows(2).all(|w| w[0] <= w[1]), "{remap:?}");
        assert!(remap.prefixes.iter().any(|(p, to)| p == Path::new("/w") && to == "."));
    }
}
