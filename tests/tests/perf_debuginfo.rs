//! `cargo xtask build` splits a plugin's debug info out of the library (so that a reload
//! reads, hashes and copies a small file) into `<name>@<version>.debug` beside it, and gdb,
//! attached to a running host, still finds a plugin function's source file and line: the
//! runtime links the `.debug` file beside the private copy it loaded.

use std::process::Command;

use hotswap_runtime::PluginManager;
use hotswap_tests::build_plugin;

const GREETER: &str = "tests/plugins/greeter_v1";

/// Whether gdb runs here; if not, a failure under CI and a loud skip elsewhere
/// ([`hotswap_tests::skip_unless_ci`]).
fn gdb_available() -> bool {
    let found = Command::new("gdb").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        hotswap_tests::skip_unless_ci("gdb is not installed (.ci/run installs it)");
    }
    found
}

/// gdb, attached to this very process, asked where `greeter_v1::answer` is.
fn gdb_info_line() -> String {
    let output = Command::new("gdb")
        .args(["-batch", "-nx", "-p"])
        .arg(std::process::id().to_string())
        .args(["-ex", "info line greeter_v1::answer"])
        .output()
        .expect("running gdb");
    let text = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let answer = text.lines().filter(|l| l.contains("answer")).collect::<Vec<_>>().join("\n");
    eprintln!("gdb: {answer}");
    assert!(!text.contains("ptrace: Operation not permitted"), "gdb cannot attach to the test process here:\n{text}");
    text
}

#[test]
fn the_library_is_built_without_debug_info_and_gdb_finds_its_lines_through_the_debug_file() {
    let built = build_plugin(GREETER);
    let debug = built.library.with_extension("debug");
    assert!(debug.is_file(), "xtask wrote {} beside the library", debug.display());
    let library_size = std::fs::metadata(&built.library).unwrap().len();
    let debug_size = std::fs::metadata(&debug).unwrap().len();
    assert!(
        library_size * 2 < debug_size,
        "the library ({library_size} B) is small beside its debug info ({debug_size} B)"
    );
    let sections = Command::new("objdump").arg("-h").arg(&built.library).output().expect("objdump (binutils)");
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(sections.contains(".gnu_debuglink"), "the library links its debug file:\n{sections}");
    assert!(!sections.contains(".debug_info"), "no DWARF left in the library:\n{sections}");
    if !gdb_available() {
        return;
    }

    // Without the .debug file beside it, gdb cannot place the function in its source: the
    // debug info really is not in the library.
    let bare = tempfile::tempdir().unwrap();
    built.install(bare.path());
    let manager = PluginManager::builder(bare.path()).build().unwrap();
    manager.load_plugins().unwrap();
    let answer: String = manager.invoke("greeter", "answer", hotswap_runtime::args![]).unwrap();
    assert_eq!(answer, "v1");
    let text = gdb_info_line();
    assert!(!text.contains("greeter_v1/src/lib.rs"), "no line information without the debug file:\n{text}");
    drop(manager);

    // With it (as `cargo xtask build` leaves it in the output folder), gdb finds the line.
    let dir = tempfile::tempdir().unwrap();
    built.install(dir.path());
    std::fs::copy(&debug, dir.path().join(debug.file_name().unwrap())).unwrap();
    let manager = PluginManager::builder(dir.path()).build().unwrap();
    manager.load_plugins().unwrap();
    let text = gdb_info_line();
    assert!(
        text.contains("Line ") && text.contains("greeter_v1/src/lib.rs"),
        "gdb resolves the plugin function to its source line:\n{text}"
    );
}
