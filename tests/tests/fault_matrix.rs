//! The guide's fault matrix (section 11) lists every fault test, so the documented matrix and
//! the tests cannot drift apart.

use hotswap_tests::workspace_root;

const FAULT_FILES: [&str; 9] = [
    "faults.rs",
    "faults_manager.rs",
    "faults_abort.rs",
    "control_faults.rs",
    "control_signals.rs",
    "security.rs",
    "panics_cross.rs",
    "identity.rs",
    "wakers.rs",
];

#[test]
fn the_guides_fault_matrix_lists_every_fault_test() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/guide.md")).unwrap();
    let matrix = guide.split("## 11. Fault matrix").nth(1).expect("the guide has a fault matrix");
    let mut count = 0;
    for file in FAULT_FILES {
        let source = std::fs::read_to_string(workspace_root().join("tests/tests").join(file)).unwrap();
        let mut lines = source.lines().peekable();
        while let Some(line) = lines.next() {
            if line.trim() != "#[test]" {
                continue;
            }
            let name = lines
                .by_ref()
                .map(str::trim)
                .find(|l| l.starts_with("fn "))
                .and_then(|l| l.strip_prefix("fn "))
                .and_then(|l| l.split('(').next())
                .unwrap()
                .to_string();
            let row = format!("`{file}::{name}`");
            assert!(matrix.contains(&row), "the fault matrix does not list {row}");
            count += 1;
        }
    }
    assert!(count >= 45, "the fault matrix has {count} cases; the issue asks for at least 45");
}
