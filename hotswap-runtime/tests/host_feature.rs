//! The `host` feature may only add or remove whole modules (and their re-exports), never a
//! field, variant or attribute of a type: plugins are built without it and hosts with it, and
//! the fingerprint (which hashes the same sources either way and ignores features) can only
//! tell the truth if every type that crosses the boundary has one layout in both builds.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_host_feature_only_gates_whole_modules_and_their_re_exports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut gated_modules = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.contains("feature = \"host\"") {
                continue;
            }
            let at = format!("{}:{}: {line}", file.display(), i + 1);
            let line = line.trim();
            if line == "#[cfg_attr(not(feature = \"host\"), allow(dead_code))]" {
                continue; // Items only the host side calls.
            }
            assert_eq!(line, "#[cfg(feature = \"host\")]", "{at}: only whole modules may depend on the feature");
            assert!(file.ends_with("src/lib.rs"), "{at}: gate the module in lib.rs instead");
            let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
            assert!(
                next.starts_with("mod ") || next.starts_with("pub mod ") || next.starts_with("pub use "),
                "{at}: gates `{next}`, not a module or a re-export"
            );
            gated_modules += 1;
        }
    }
    assert!(gated_modules >= 5, "the host side is gated in {gated_modules} places; is the scan broken?");
}

#[test]
fn the_fingerprint_does_not_depend_on_features() {
    let build = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs")).unwrap();
    assert!(!build.contains("CARGO_FEATURE_"), "build.rs reads a feature: a plugin without `host` would be refused");
}
