//! Running one test case in a child process, for cases that used to abort or crash the process
//! (an abort or a SIGSEGV cannot be caught): the test binary runs itself again for that one
//! test, and the parent asserts that the child exited normally after running its case to the
//! end. The parent builds the fixtures and passes their paths to the child.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::BuiltPlugin;

/// Deadline for what only has to happen eventually in a case; never reached unless stuck.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Set in the child process to the name of the test it runs.
const CHILD: &str = "HOTSWAP_CHILD_CASE";
/// The fixture libraries the parent built, one path a line.
const FIXTURES: &str = "HOTSWAP_CHILD_CASE_FIXTURES";
/// Printed by the child when its case ran to the end.
const DONE: &str = "hotswap_tests::child_case: the child ran its case to the end";

/// In the parent: builds the fixtures with `build`, runs test `test` of this test binary in a
/// child process with `env` added, asserts that the child exited normally after running `case`
/// to the end, and returns the child's standard error. In the child: runs `case` with the
/// parent's fixtures (in `build`'s order) and returns `None`.
pub fn in_child(
    test: &str,
    env: &[(&str, &str)],
    build: impl FnOnce() -> Vec<BuiltPlugin>,
    case: impl FnOnce(&[BuiltPlugin]),
) -> Option<String> {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        let fixtures: Vec<BuiltPlugin> = std::env::var(FIXTURES)
            .expect("the parent passes the fixtures")
            .lines()
            .map(|library| BuiltPlugin {
                library: library.into(),
                manifest: PathBuf::from(library).with_extension("json"),
            })
            .collect();
        case(&fixtures);
        println!("{DONE}");
        return None;
    }
    let fixtures = build();
    let paths: Vec<String> = fixtures.iter().map(|f| f.library.display().to_string()).collect();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .env(FIXTURES, paths.join("\n"))
        .envs(env.iter().copied())
        .output()
        .expect("running the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(DONE),
        "the child running `{test}` did not finish normally ({}; an abort is signal 6, a SIGSEGV signal 11)\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    Some(stderr.into_owned())
}
