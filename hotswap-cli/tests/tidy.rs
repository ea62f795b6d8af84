//! Tidy checks on the sources of hotswap-cli and hotswap-runtime, in the style of
//! rust-analyzer's tidy tests: plain tests that read the files (the reading is in
//! `tidy_support`).
//!
//! - No import cycle between hotswap-cli's modules: a module never uses, directly or through
//!   others, a module that uses it (paths through `crate::`, `super::`, `self::` or a child
//!   module's name; comments, strings and `#[cfg(test)] mod tests` blocks do not count, nor
//!   `mod x;` declarations). The command layer (`commands`) dispatches; `plugin_build` and
//!   `static_build` do not refer to each other at all.
//! - hotswap-runtime's modules below the manager (the loader and what it uses) never refer to
//!   the manager, the control socket or the signal handlers.
//! - No source file of either crate over 500 lines unless its first lines say why ("over 500
//!   lines: …").

mod tidy_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tidy_support::{ModPath, describe, find_cycle, library_sources, module_graph, name, rust_files};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = module_graph(&library_sources(&crate_dir()));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle between hotswap-cli's modules:\n{}", describe(&cycle, &graph));
    }
    // The command layer dispatches: it is what uses the builds, never the other way.
    let in_commands = |m: &ModPath| m.first().is_some_and(|f| f == "commands");
    for build in ["plugin_build", "static_build"] {
        let build = vec![build.to_string()];
        assert!(
            graph.iter().any(|(m, edges)| in_commands(m) && edges.contains_key(&build)),
            "the command layer dispatches to {}: {graph:#?}",
            name(&build)
        );
    }
    for (module, edges) in &graph {
        if let Some((to, at)) = edges.iter().find(|(to, _)| in_commands(to)) {
            assert!(
                module.is_empty() || in_commands(module),
                "{} uses the command layer ({}, src/{}:{})",
                name(module),
                name(to),
                at.file,
                at.line
            );
        }
    }
}

#[test]
fn plugin_build_and_static_build_do_not_refer_to_each_other() {
    let graph = module_graph(&library_sources(&crate_dir()));
    let (plugin, static_) = (vec!["plugin_build".to_string()], vec!["static_build".to_string()]);
    for (from, to) in [(&plugin, &static_), (&static_, &plugin)] {
        if let Some(at) = graph[from].get(to) {
            panic!("{} refers to {} (src/{}:{})", name(from), name(to), at.file, at.line);
        }
    }
}

/// The checks above find what they look for: a cycle through `use` and a call, and nothing in
/// comments, strings, raw strings or test modules.
#[test]
fn the_cycle_check_finds_cycles_and_ignores_comments_strings_and_tests() {
    let sources = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect()
    };
    let cyclic = sources(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("a.rs", "use crate::{b::Thing, c};\n"),
        ("b.rs", "fn f() {\n    let x = '\"';\n    crate::c::g(x)\n}\n"),
        ("c.rs", "pub fn g() { super::a::h() }\n"),
    ]);
    let graph = module_graph(&cyclic);
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a");
    let text = describe(&cycle, &graph);
    assert!(text.contains("c -> a (src/c.rs:1)"), "{text}");
    assert!(text.contains("b -> c (src/b.rs:3)"), "{text}");

    let clean = sources(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub use a::Thing;\n"),
        ("a.rs", "use crate::b::x; // crate::b\n"),
        (
            "b.rs",
            "/* crate::a::y */ const S: &str = \"crate::a\";\nconst R: &str = r#\"crate::a \" \"#;\n\
             pub fn x<'a>(s: &'a str) -> &'a str { s }\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::a::Thing;\n}\n",
        ),
    ]);
    let graph = module_graph(&clean);
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
    assert!(graph[&vec!["a".to_string()]].contains_key(&vec!["b".to_string()]), "{graph:#?}");
    assert!(graph[&Vec::new()].contains_key(&vec!["a".to_string()]), "{graph:#?}");
}

/// Files under `folders` of the crate in `dir` that are over 500 lines without a reason in
/// their first lines.
fn long_files_without_a_reason(dir: &Path, folders: &[&str]) -> Vec<String> {
    let mut long = Vec::new();
    for folder in folders {
        for file in rust_files(&dir.join(folder)) {
            let path = dir.join(folder).join(&file);
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = text.lines().count();
            let reason = text.lines().take(20).any(|l| l.contains("over 500 lines:"));
            if lines > 500 && !reason {
                long.push(format!("{folder}/{} ({lines} lines)", file.display()));
            }
        }
    }
    long
}

#[test]
fn no_file_over_500_lines_without_a_reason_at_its_top() {
    let long = long_files_without_a_reason(&crate_dir(), &["src", "tests"]);
    assert!(long.is_empty(), "files over 500 lines without `over 500 lines: <why>` in their first lines: {long:?}");
}

fn runtime_dir() -> PathBuf {
    crate_dir().parent().expect("the workspace").join("hotswap-runtime")
}

#[test]
fn no_runtime_file_over_500_lines_without_a_reason_at_its_top() {
    let long = long_files_without_a_reason(&runtime_dir(), &["src", "tests"]);
    assert!(
        long.is_empty(),
        "hotswap-runtime files over 500 lines without `over 500 lines: <why>` in their first lines: {long:?}"
    );
}

/// The runtime's layers, top down: the signal handlers and the control socket drive the
/// manager; the manager loads through the loader and the modules below it. A module of the
/// runtime that is none of these is below the manager.
fn is_above_the_loader(module: &ModPath) -> bool {
    module.is_empty() || matches!(module[0].as_str(), "manager" | "control" | "signals")
}

/// The modules below the manager (the loader, the library file, ELF inspection, manifests,
/// retention, values, the vault, …) never refer to the manager, the control socket or the
/// signal handlers: what they need from above comes in as an argument or a trait of their own.
#[test]
fn runtime_modules_below_the_manager_do_not_reach_up_into_it() {
    let graph = module_graph(&library_sources(&runtime_dir()));
    let loader = vec!["loader".to_string()];
    assert!(graph.contains_key(&loader), "the runtime has a loader module: {:?}", graph.keys());
    let mut up = Vec::new();
    for (module, edges) in graph.iter().filter(|(m, _)| !is_above_the_loader(m)) {
        for (to, at) in edges.iter().filter(|(to, _)| is_above_the_loader(to) && !to.is_empty()) {
            up.push(format!("{} -> {} (src/{}:{})", name(module), name(to), at.file, at.line));
        }
    }
    assert!(up.is_empty(), "hotswap-runtime modules below the manager refer to it or above:\n{}", up.join("\n"));
    // And the manager does use the loader (the layering is the real one, not a vacuous check).
    let manager_uses_loader =
        graph.iter().any(|(m, edges)| m.first().is_some_and(|f| f == "manager") && edges.contains_key(&loader));
    assert!(manager_uses_loader, "the manager loads through the loader: {graph:#?}");
}
