//! `HotFn`: a typed live-function handle that follows reloads, on real plugins, under
//! concurrent callers, with libraries closed as soon as nothing needs them
//! (`retain_released_libraries(0)`), so a call through a stale pointer would crash the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hotswap_runtime::{PluginManager, Stage};
use hotswap_tests::build_plugin;

/// `live_add` is `a + b` in v1 and `a + b + 100` in v2; v2 has no `LIVE_twice`.
const V1: &str = "tests/plugins/live_v1";
const V2: &str = "tests/plugins/live_v2";

fn install(dir: &std::path::Path, crate_dir: &str) {
    std::thread::sleep(Duration::from_millis(20)); // a strictly newer modification time
    build_plugin(crate_dir).install(dir);
}

fn manager(dir: &std::path::Path) -> PluginManager {
    PluginManager::builder(dir).free_delay(Duration::ZERO).retain_released_libraries(0).build().unwrap()
}

#[test]
fn a_hot_fn_follows_every_reload_while_threads_call_it() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let add = manager.hot_fn::<fn(i64, i64) -> i64>("live_add").unwrap();
    assert_eq!((add.name(), add.call((1, 2))), ("live_add", 3));

    let stop = Arc::new(AtomicBool::new(false));
    let (calls, wrong) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (add, stop, calls, wrong) = (add.clone(), stop.clone(), calls.clone(), wrong.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let sum = add.call((1, 2));
                    if sum != 3 && sum != 103 {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for round in 0..10 {
        let (krate, expected) = if round % 2 == 0 { (V2, 103) } else { (V1, 3) };
        install(dir.path(), krate);
        manager.reload().unwrap();
        assert_eq!(add.call((1, 2)), expected, "round {round}: the next call runs the new generation");
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().expect("no caller crashed or panicked");
    }
    assert_eq!(wrong.load(Ordering::Relaxed), 0);
    assert!(calls.load(Ordering::Relaxed) > 100, "the callers ran during the reloads");
    assert!(
        manager.closed_library_count() >= 8,
        "old libraries were really closed: {}",
        manager.closed_library_count()
    );
}

#[test]
fn a_reload_that_would_break_a_hot_fn_is_refused_while_the_handle_lives() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let twice = manager.hot_fn::<fn(i64) -> i64>("LIVE_twice").unwrap();
    assert_eq!(twice.call((21,)), 42);
    // The wrong signature is refused when the handle is fetched.
    let wrong = manager.hot_fn::<fn(i64) -> String>("LIVE_twice").unwrap_err();
    assert!(wrong.to_string().contains("fn(i64) -> i64"), "{wrong}");

    install(dir.path(), V2);
    let error = manager.reload().unwrap_err();
    assert_eq!(error.stage, Stage::VaultSetup);
    assert!(error.to_string().contains("HotFn on live function `LIVE_twice`"), "{error}");
    assert_eq!(twice.call((4,)), 8, "the serving generation keeps serving the handle");
    let clone = twice.clone();
    drop(twice);
    assert!(manager.reload().is_err(), "a clone keeps the contract");
    drop(clone);
    assert_eq!(manager.reload().expect("no handle needs LIVE_twice any more").generation, 2);
}
