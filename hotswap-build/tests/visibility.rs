//! What the generated registry (at the crate root) can reach, and what the generator says when
//! it cannot: a hook or live item in a module the root cannot name is refused at build time
//! with the module, its declaration's file and line, and the fix, instead of rustc's E0603 in
//! generated code.

use std::path::Path;

use hotswap_build::{Config, Error};

mod common;
use common::{HOOKS, write_crate};

fn generate(files: &[(&str, &str)]) -> Result<hotswap_build::Generated, Error> {
    let dir = write_crate(files);
    let out = dir.path().join("out");
    Config::new()
        .crate_dir(dir.path())
        .out_dir(Path::new(&out))
        .plugin_name("vis")
        .version("1")
        .emit_cargo_directives(false)
        .generate()
}

#[test]
fn a_private_module_declared_at_the_root_is_reachable() {
    // `mod hooks;` at the root: private modules of the root are visible to the whole crate.
    let generated = generate(&[("lib.rs", "mod hooks;\n"), ("hooks.rs", HOOKS)]).unwrap();
    assert!(generated.source.contains("crate::hooks::on_load"));
}

#[test]
fn hooks_in_a_private_nested_module_are_refused_naming_the_module_file_and_line() {
    let error = generate(&[
        ("lib.rs", "mod outer;\n"),
        ("outer/mod.rs", "// the hooks\nmod inner;\n"),
        ("outer/inner.rs", HOOKS),
    ])
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::HiddenModule { .. }), "{message}");
    assert!(message.starts_with("src/outer/mod.rs:2: module `outer::inner` is private"), "{message}");
    assert!(message.contains("hook `reloadable` (src/outer/inner.rs:4)"), "{message}");
    assert!(message.contains("E0603") && message.contains("`pub mod` or `pub(crate) mod`"), "{message}");
}

#[test]
fn pub_crate_and_pub_super_one_level_down_are_reachable() {
    for vis in ["pub", "pub(crate)", "pub(super)", "pub(in crate)"] {
        let outer = format!("{vis} mod inner;\n");
        let generated = generate(&[("lib.rs", "mod outer;\n"), ("outer/mod.rs", &outer), ("outer/inner.rs", HOOKS)]);
        assert!(generated.is_ok(), "{vis}: {:?}", generated.err());
    }
    // `pub(super)` two levels down only reaches `outer`, not the root.
    let error = generate(&[
        ("lib.rs", "mod outer;\n"),
        ("outer/mod.rs", "pub mod mid;\n"),
        ("outer/mid/mod.rs", "pub(super) mod inner;\n"),
        ("outer/mid/inner.rs", HOOKS),
    ])
    .unwrap_err();
    assert!(error.to_string().contains("module `outer::mid::inner` is private"), "{error}");
}

#[test]
fn inline_private_modules_and_live_items_are_checked_too() {
    let lib = format!("{HOOKS}\nmod outer {{ mod inner {{ pub fn live_add(a: i64) -> i64 {{ a }} }} }}\n");
    let message = generate(&[("lib.rs", &lib)]).unwrap_err().to_string();
    assert!(message.contains("src/lib.rs:12: module `outer::inner` is private"), "{message}");
    assert!(message.contains("live item `live_add` (src/lib.rs:12)"), "{message}");
}

#[test]
fn a_missing_hook_names_the_hook_the_signature_and_the_scanned_folder() {
    // What README.md and docs/guide.md promise for a missing hook: there is no line to name.
    let dir_hooks = HOOKS.replace("pub fn on_free() {}", "");
    let message = generate(&[("lib.rs", "mod hooks;\n"), ("hooks.rs", &dir_hooks)]).unwrap_err().to_string();
    assert!(
        message.starts_with("missing hook `on_free`: no `fn on_free` in the 2 scanned file(s) under "),
        "{message}"
    );
    assert!(message.contains("/src; expected `pub fn on_free()`"), "{message}");
}
