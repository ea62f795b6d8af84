//! Golden tests: the registry rendered for representative plugin sources is compared with the
//! expected output checked in under `tests/golden/`, as prost-build keeps its expected outputs,
//! so any change to the template, the hook table or the symbol names shows as a diff in review.
//!
//! After an intended change, refresh the files with `UPDATE_GOLDEN=1 cargo test -p
//! hotswap-build --test golden` and review the diff. With `CI` set, `UPDATE_GOLDEN` is refused:
//! a CI run compares, it never rewrites what it compares against.

use std::path::{Path, PathBuf};

use hotswap_build::Config;

mod common;
use common::{HOOKS, write_crate};

const LIVE: &str = r#"
pub fn live_add(a: i64, b: i64) -> i64 { a + b }
pub fn live_len(s: &str) -> usize { s.len() }
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub struct LiveJob { pub id: u64, pub tags: Vec<String> }
pub enum LiveState { Idle, Running(u64), Done { code: i32 } }
pub fn not_live() {}
"#;

/// Renders the registry of a plugin crate with `files` under `src/`, with a fixed name and
/// version so the output depends on nothing but the sources and hotswap-build itself.
fn render(files: &[(&str, &str)]) -> String {
    let dir = write_crate(files);
    let generated = Config::new()
        .crate_dir(dir.path())
        .out_dir(dir.path().join("out"))
        .plugin_name("golden")
        .version("1.0.0+golden")
        .emit_cargo_directives(false)
        .generate()
        .unwrap();
    let temp = dir.path().to_string_lossy().into_owned();
    assert!(!generated.source.contains(&temp), "the registry holds the build's absolute path {temp}");
    generated.source
}

fn check(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        assert!(
            !ci(),
            "UPDATE_GOLDEN is set under CI: a CI run must compare with the checked-in files, not rewrite them"
        );
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        panic!(
            "the registry rendered for `{name}` differs from {}:\n{}\nIf the change is intended, run \
             `UPDATE_GOLDEN=1 cargo test -p hotswap-build --test golden` and review the diff.",
            path.display(),
            diff(&expected, actual)
        );
    }
}

/// Whether the environment variable `CI` is set to anything but empty, `0` or `false` (as
/// `hotswap_tests::ci`, which this crate cannot depend on).
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| !matches!(ci.as_str(), "" | "0" | "false"))
}

/// A line diff (longest common subsequence), `-` expected, `+` actual, with two lines of
/// context around each change.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            lines.push(('+', b[j]));
            j += 1;
        } else {
            lines.push(('-', a[i]));
            i += 1;
        }
    }
    let changed: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| l.0 != ' ').map(|(n, _)| n).collect();
    let near = |n: usize| changed.iter().any(|&c| c.abs_diff(n) <= 2);
    let mut out = String::new();
    for (n, (mark, line)) in lines.iter().enumerate() {
        if near(n) {
            out.push_str(&format!("{mark} {line}\n"));
        } else if n > 0 && near(n - 1) {
            out.push_str("  ...\n");
        }
    }
    out
}

#[test]
fn hooks_at_the_root() {
    check("hooks_at_root", &render(&[("lib.rs", HOOKS)]));
}

#[test]
fn hooks_in_a_nested_module() {
    let nested = HOOKS.replace("pub fn on_init", "pub(crate) fn on_init");
    let source =
        render(&[("lib.rs", "mod outer;\n"), ("outer/mod.rs", "pub mod inner;\n"), ("outer/inner.rs", &nested)]);
    check("hooks_nested", &source);
}

#[test]
fn live_functions_and_types() {
    let source = render(&[
        ("lib.rs", &format!("mod hooks;\npub mod jobs;\n{LIVE}")),
        ("hooks.rs", HOOKS),
        ("jobs.rs", LIVE.replace("live_", "live_job_").replace("Live", "LiveJob").as_str()),
    ]);
    check("live_items", &source);
}

#[test]
fn the_diff_shows_changed_lines_with_context() {
    let text = diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nX\ne\nf\ng\n");
    assert_eq!(text, "  b\n  c\n- d\n+ X\n  e\n  f\n  ...\n");
}
