//! SIGUSR2 rolls back a generation on probation. In a test binary of its own: it sends a
//! signal to its own process.

use std::time::{Duration, Instant};

use hotswap_runtime::{PluginManager, Probation, ProbationResult, args};
use hotswap_tests::build_plugin_with_features;

#[test]
fn sigusr2_rolls_back() {
    let build =
        |features: &[&str]| build_plugin_with_features("tests/plugins/probation", features, cfg!(debug_assertions));
    let (p1, p2) = (build(&[]), build(&["v2"]));
    let dir = tempfile::tempdir().unwrap();
    p1.install(dir.path());
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();
    let signals = manager.reload_on_signals().unwrap();
    manager.load_plugins().unwrap();
    p2.install_newest(dir.path());
    manager.reload_on_probation(Probation::new(Duration::from_secs(600))).unwrap();
    assert_eq!(manager.invoke::<String>("probe", "answer", args![]).unwrap(), "p2");
    // SAFETY: kill and getpid have no memory-safety preconditions; the handler is installed.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while manager.generation_number() != 1 {
        assert!(Instant::now() < deadline, "no rollback within 20 s of SIGUSR2");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(manager.invoke::<String>("probe", "answer", args![]).unwrap(), "p1");
    let end = manager.last_probation().unwrap();
    assert_eq!((end.result, end.automatic), (ProbationResult::RolledBack, false));
    drop(signals);
}
