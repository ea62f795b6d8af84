//! Tidy: the host–plugin contract is written once, in `hotswap-abi`. This test reads every Rust
//! source and template of the repository and fails if an exported symbol name, a `HOTSWAP_*`
//! environment variable or a hook name is written as a literal anywhere else, outside
//! comments and the places allowed below (tests, which set their own variables and log hook
//! names; the golden outputs; the build script's private variable).

use std::path::{Path, PathBuf};

/// Files (relative to the repository, `/`-separated) and the `HOTSWAP_*` name each may write.
const ALLOWED: &[(&str, &str, &str)] = &[
    // `cargo:rustc-env` from the build script to the crate's own `env!`: private to the crate,
    // and `env!` takes a literal.
    ("hotswap-runtime/build.rs", "HOTSWAP_ABI_FINGERPRINT", "build script to its crate"),
    ("hotswap-runtime/src/abi.rs", "HOTSWAP_ABI_FINGERPRINT", "build script to its crate"),
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Rust sources and templates outside `target`, `.git`, `hotswap-abi` and test folders.
fn checked_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let skipped =
                    ["target", ".git", "hotswap-abi", "tests"].contains(&name.as_str()) || name.starts_with('.');
                if !skipped {
                    folders.push(path);
                }
            } else if name.ends_with(".rs") || name.ends_with(".tmpl") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The line without its `//` comment (a `//` inside a string literal ends the check early,
/// which can only hide a finding, never invent one).
fn code_of(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

/// Every `HOTSWAP_…` word in `code` (not preceded by a word character, so
/// `CARGO_FEATURE_HOTSWAP_STATIC` is not one).
fn hotswap_words(code: &str) -> Vec<&str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("HOTSWAP_") {
        let start = from + at;
        let end = code[start..].find(|c: char| !word(c)).map_or(code.len(), |n| start + n);
        if !code[..start].ends_with(word) {
            found.push(&code[start..end]);
        }
        from = end;
    }
    found
}

fn violations(root: &Path) -> Vec<String> {
    let hook_literals: Vec<String> = hotswap_abi::Hook::ALL.iter().map(|h| format!("\"{}\"", h.name())).collect();
    let mut found = Vec::new();
    for file in checked_files(root) {
        let relative = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line);
            for word in hotswap_words(code) {
                if !ALLOWED.iter().any(|(f, w, _)| *f == relative && *w == word) {
                    found.push(format!("{relative}:{}: `{word}`: use the constant from hotswap_abi", n + 1));
                }
            }
            for literal in &hook_literals {
                if code.contains(literal.as_str()) {
                    found.push(format!("{relative}:{}: hook name {literal}: use hotswap_abi::Hook", n + 1));
                }
            }
        }
    }
    found
}

#[test]
fn the_contract_is_written_only_in_hotswap_abi() {
    let found = violations(&repository());
    assert!(found.is_empty(), "the host–plugin contract is written outside hotswap-abi:\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_what_it_looks_for() {
    // The checker itself, on a copy of the kinds of line it must catch and must let pass.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("crate/src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "const A: &str = \"HOTSWAP_VERSION\";\n\
         // HOTSWAP_VERSION in a comment is documentation\n\
         let enabled = std::env::var_os(\"CARGO_FEATURE_HOTSWAP_STATIC\");\n\
         match name { \"on_load\" => 1, _ => 0 }\n",
    )
    .unwrap();
    std::fs::write(src.join("registry.rs.tmpl"), "pub static HOTSWAP_PLUGIN_DESCRIPTOR_V1: u8 = 0;\n").unwrap();
    let found = violations(dir.path());
    assert_eq!(
        found,
        [
            "crate/src/lib.rs:1: `HOTSWAP_VERSION`: use the constant from hotswap_abi",
            "crate/src/lib.rs:4: hook name \"on_load\": use hotswap_abi::Hook",
            "crate/src/registry.rs.tmpl:1: `HOTSWAP_PLUGIN_DESCRIPTOR_V1`: use the constant from hotswap_abi",
        ]
    );
}

#[test]
fn the_fake_abi_fixture_exports_the_current_symbol_names() {
    // tests/plugins/fault_fake_abi must spell the names out (`no_mangle` takes the item's
    // name); it only tests what it means to if they are today's names.
    let text = std::fs::read_to_string(repository().join("tests/plugins/fault_fake_abi/src/lib.rs")).unwrap();
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("pub static "))
        .filter_map(|l| l.split(':').next())
        .filter(|name| name.starts_with("HOTSWAP_"))
        .collect();
    let mut expected = hotswap_abi::SYMBOLS.to_vec();
    let mut exported_sorted = exported.clone();
    expected.sort();
    exported_sorted.sort();
    assert_eq!(exported_sorted, expected);
}
