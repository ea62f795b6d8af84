//! SIGHUP before and during the first load, and dropping a `SignalReloader` while its reload is
//! stuck. In a test binary of its own, with one test: it sends signals to its own process, and
//! every installed reloader of the process sees every signal.

use std::path::Path;
use std::time::{Duration, Instant};

use hotswap_runtime::{PluginManager, args};
use hotswap_tests::build_plugin;
use hotswap_tests::runtime_log::{capture, logged};

/// Deadline for anything that only has to happen eventually; never reached unless stuck.
const PATIENCE: Duration = Duration::from_secs(60);

fn sighup() {
    // SAFETY: kill and getpid have no memory-safety preconditions; the reloader's handler is
    // installed, so the signal does not end the process.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
}

fn wait_for_generation(manager: &PluginManager, number: u64) {
    let deadline = Instant::now() + PATIENCE;
    while manager.current().map_or(0, |g| g.number()) < number {
        assert!(Instant::now() < deadline, "generation {number} never came");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `done` holds, at most [`PATIENCE`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Threads of this process named `hotswap-signals` (the reloader's).
fn signal_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "hotswap-signals")
        .count()
}

/// Waits until a load is stuck in `ctl_stuck`'s `on_load` (it writes `<marker>.entered`).
fn wait_until_stuck(marker: &Path) {
    let entered = marker.with_extension("marker.entered");
    let deadline = Instant::now() + PATIENCE;
    while std::fs::remove_file(&entered).is_err() {
        assert!(Instant::now() < deadline, "no load got stuck in on_load");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_reloader_installed_first_survives_sighup_during_the_first_load_and_drops_at_once() {
    capture();
    let dir = tempfile::tempdir().unwrap();
    build_plugin("tests/plugins/ctl_stuck").install(dir.path());
    let marker = dir.path().join("ctl_stuck.marker");
    std::fs::write(&marker, b"").unwrap();
    // reuse_unchanged(false): every reload runs on_load again, so a reload can be made stuck.
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).reuse_unchanged(false).build().unwrap();

    // Installed before the first load, which then hangs in on_load.
    let reloader = manager.reload_on_signals().unwrap();
    let first = {
        let manager = manager.clone();
        std::thread::spawn(move || manager.load_plugins())
    };
    wait_until_stuck(&marker);
    assert!(manager.current().is_none(), "the first load is still running");
    sighup();
    // The process is still here, and the reloader got the signal: it waits for the first load
    // (logged at debug). The first load finishes once released, and the signal's reload
    // follows it.
    wait_until("the reloader waits for the first load", || !logged("SIGHUP", "reloading after it").is_empty());
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(first.join().unwrap().expect("the first load succeeds").generation, 1);
    wait_for_generation(&manager, 2);
    let plugin = manager.find_plugin("greeter").unwrap();
    assert_eq!(plugin.invoke::<String>("answer", args![]).unwrap(), "ctl_stuck");
    drop(plugin);

    // A reload on SIGHUP that gets stuck: dropping the reloader returns at once.
    std::fs::write(&marker, b"").unwrap();
    sighup();
    wait_until_stuck(&marker);
    let started = Instant::now();
    drop(reloader);
    assert!(started.elapsed() < Duration::from_secs(5), "drop waited {:?}", started.elapsed());
    // Generation 2 keeps serving while the reload is stuck.
    assert_eq!(manager.current().unwrap().number(), 2);
    let plugin = manager.find_plugin("greeter").unwrap();
    assert_eq!(plugin.invoke::<String>("answer", args![]).unwrap(), "ctl_stuck");
    drop(plugin);
    // Released, the abandoned reload finishes on its own thread.
    std::fs::remove_file(&marker).unwrap();
    wait_for_generation(&manager, 3);
    // After the drop, the reloader's thread ends once its abandoned reload is over; a SIGHUP
    // then has no thread to reload on, and is ignored (the process lives on).
    wait_until("the reloader's thread ends", || signal_threads() == 0);
    sighup();
    assert_eq!(manager.current().unwrap().number(), 3);
    assert_eq!(manager.reload_count(), 2, "the two reloads after the first load, nothing after the drop");
}
