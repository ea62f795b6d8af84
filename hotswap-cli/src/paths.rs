//! Lexical path handling shared by the stamp, the reproducibility checks and scaffolding.

use std::path::{Component, Path, PathBuf};

/// `path` with `.` and `..` resolved lexically, without touching the file system (the path
/// may not exist yet).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_parent_folders() {
        assert_eq!(normalize(Path::new("/a/b/src/../../templates/x")), PathBuf::from("/a/templates/x"));
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
    }
}
