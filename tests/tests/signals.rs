//! SIGHUP and SIGUSR1 trigger a reload. In a test binary of its own: it sends signals to its
//! own process.

use std::time::{Duration, Instant};

use hotswap_runtime::PluginManager;
use hotswap_tests::build_plugin;

fn wait_for_generation(manager: &PluginManager, number: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while manager.current().unwrap().number() < number {
        assert!(Instant::now() < deadline, "no reload within 30 s of the signal");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sighup_and_sigusr1_reload() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin("tests/plugins/greeter_v1").install(dir.path());
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();
    manager.load_plugins().unwrap();
    let reloader = manager.reload_on_signals().unwrap();
    // SAFETY: kill and getpid have no memory-safety preconditions; the handler is installed.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    wait_for_generation(&manager, 2);
    // SAFETY: as above.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    wait_for_generation(&manager, 3);
    assert_eq!(manager.reload_count(), 2);
    drop(reloader);
}
