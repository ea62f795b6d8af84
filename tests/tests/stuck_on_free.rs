//! A plugin whose `on_free` does not return, under a zero free delay: the reload that replaces
//! its generation, and every reload after it, answer (through the API and the control socket)
//! while that `on_free` is provably still running, with one warning in all; once it returns,
//! every waiting generation gets its `on_free` exactly once, and a zero delay again means
//! "freed within the reload".
//!
//! Fixture: `mem_cache`, whose `on_free` logs `entered <generation>` and `returned
//! <generation>` to `on_free.log` in the plugin folder, and in between loops while a file
//! `stall-on-free` exists and no file `release` does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hotswap_runtime::{ControlRequest, ControlResponse, ControlServer, PluginManager, args, send_request};
use hotswap_tests::runtime_log::{capture, logged};
use hotswap_tests::{build_plugin, mapped_under};

const CACHE: &str = "tests/plugins/mem_cache";

/// The lines `on_free` logged so far.
fn on_free_log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("on_free.log")).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Lets every stalled `on_free` go after `after`, unless `cancel` is set first: so that, were a
/// reload's answer to wait for the stuck `on_free`, it would come only after `on_free`
/// returned, which the test then sees in the log, instead of hanging.
fn watchdog(dir: PathBuf, after: Duration, cancel: Arc<AtomicBool>) -> Arc<AtomicBool> {
    let fired = Arc::new(AtomicBool::new(false));
    let fired_here = Arc::clone(&fired);
    std::thread::spawn(move || {
        let until = std::time::Instant::now() + after;
        while std::time::Instant::now() < until {
            if cancel.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        fired_here.store(true, Ordering::SeqCst);
        std::fs::write(dir.join("release"), "").unwrap();
    });
    fired
}

#[test]
fn a_stuck_on_free_under_zero_free_delay_delays_no_reload_answer() {
    capture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    build_plugin(CACHE).install(&dir);
    std::fs::write(dir.join("cache-mode"), "free").unwrap();
    std::fs::write(dir.join("cache-mib"), "1").unwrap();
    // A reload deadline far beyond the watchdog: the deadline cannot be what ends a wait.
    let manager = PluginManager::builder(&dir)
        .free_delay(Duration::ZERO)
        .reuse_unchanged(false)
        .retain_released_libraries(0)
        .reload_deadline(Duration::from_secs(600))
        .build()
        .unwrap();
    assert_eq!(manager.load_plugins().unwrap().generation, 1);
    let socket = tmp.path().join("control.sock");
    let _control = ControlServer::start(manager.clone(), &socket).unwrap();

    // From now on every on_free stalls until `release` exists.
    std::fs::write(dir.join("stall-on-free"), "").unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let released_by_watchdog = watchdog(dir.clone(), Duration::from_secs(40), Arc::clone(&cancel));
    let still_stuck = |after: &str| {
        let log = on_free_log(&dir);
        assert!(log.contains(&"entered 1".to_string()), "generation 1's on_free ran ({after}): {log:?}");
        assert!(
            !log.iter().any(|l| l.starts_with("returned")) && !released_by_watchdog.load(Ordering::SeqCst),
            "{after} answered only once on_free was let go: it waited for the stuck on_free: {log:?}"
        );
    };

    // The reload that replaces generation 1 answers while its on_free is stuck...
    assert_eq!(manager.reload().unwrap().generation, 2);
    still_stuck("the reload to generation 2");
    // ... and so does every later one, through the API and the control socket alike.
    let timeout = Duration::from_secs(120);
    for generation in 3..=6 {
        if generation % 2 == 0 {
            assert_eq!(manager.reload().unwrap().generation, generation);
        } else {
            match send_request(&socket, &ControlRequest::Reload, timeout).unwrap() {
                ControlResponse::Accepted { generation: g, .. } => assert_eq!(g, generation),
                other => panic!("the socket's reload answered {other:?}"),
            }
        }
        still_stuck(&format!("the reload to generation {generation}"));
        assert_eq!(manager.find_plugin("mem_cache").unwrap().invoke::<u64>("generation", args![]).unwrap(), generation);
    }
    // One warning for the stuck on_free, not one per reload.
    let warnings = logged("WARN", "on_free has not returned");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("generation 1 (mem_cache)"), "{warnings:?}");

    // Let go, every replaced generation gets its on_free once, in order, and is unmapped.
    cancel.store(true, Ordering::SeqCst);
    std::fs::write(dir.join("release"), "").unwrap();
    assert!(manager.free_released_now(Duration::from_secs(60)));
    let expected: Vec<String> = (1..=5).flat_map(|g| [format!("entered {g}"), format!("returned {g}")]).collect();
    assert_eq!(on_free_log(&dir), expected);
    assert_eq!(mapped_under(manager.work_dir()).len(), 1, "only the serving library is mapped");

    // With on_free prompt again, a zero delay means freed within the reload.
    std::fs::remove_file(dir.join("stall-on-free")).unwrap();
    assert_eq!(manager.reload().unwrap().generation, 7);
    let log = on_free_log(&dir);
    assert_eq!(&log[log.len() - 2..], ["entered 6", "returned 6"], "generation 6 was freed within the reload");
    assert_eq!(mapped_under(manager.work_dir()).len(), 1, "only the serving library is mapped");
}
