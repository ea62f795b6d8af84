//! A plugin's statics are never dropped when its library is unloaded: heap a plugin keeps in a
//! static stays allocated after its generation is freed, unless its `on_free` lets go of it.
//! The reload report, `PluginManager::memory` and the control socket's `status` show the
//! process's RSS and how it moved across generations, so an operator sees it.
//!
//! One test in this file, so the process's RSS is this test's alone (other test files run in
//! processes of their own). Fixture: `mem_cache`, which fills a static with 36 MiB of heap in
//! `on_init` and, when the file `cache-mode` says `free`, lets go of it in `on_free`.

use std::path::Path;
use std::time::Duration;

use hotswap_runtime::{ControlRequest, ControlResponse, ControlServer, MemoryReport, PluginManager, send_request};
use hotswap_tests::{build_plugin, unloading_manager};

const CACHE: &str = "tests/plugins/mem_cache";
const MIB: i64 = 1 << 20;
/// What one generation of `mem_cache` keeps in its static.
const CACHE_MIB: i64 = 36;
const RELOADS: u64 = 4;

/// Loads `mem_cache` in `mode` and reloads it [`RELOADS`] times (each a fresh copy of the
/// library, freed within the reload: zero free delay, no library kept mapped), checking each
/// report's memory against the RSS the socket's `status` shows; returns the last report's.
fn reload_repeatedly(root: &Path, mode: &str) -> MemoryReport {
    let dir = root.join(mode);
    std::fs::create_dir(&dir).unwrap();
    build_plugin(CACHE).install(&dir);
    std::fs::write(dir.join("cache-mode"), mode).unwrap();
    let manager: PluginManager = unloading_manager(&dir, 0);
    let first = manager.load_plugins().unwrap().memory.expect("the report shows the RSS");
    assert_eq!((first.rss_change_bytes, first.rss_since_first_load_bytes, first.reloads_since_first_load), (0, 0, 0));
    let mut last = first;
    for n in 1..=RELOADS {
        let report = manager.reload().unwrap();
        let memory = report.memory.expect("the report shows the RSS");
        assert_eq!(memory.reloads_since_first_load, n);
        assert_eq!(memory.rss_since_first_load_bytes, memory.rss_bytes as i64 - first.rss_bytes as i64);
        assert_eq!(memory.rss_change_bytes, memory.rss_bytes as i64 - last.rss_bytes as i64);
        last = memory;
    }
    // `status` shows the same, sampled now, on the socket and in the API.
    let socket = root.join(format!("{mode}.sock"));
    let _control = ControlServer::start(manager.clone(), &socket).unwrap();
    match send_request(&socket, &ControlRequest::Status, Duration::from_secs(30)).unwrap() {
        ControlResponse::Serving { memory: Some(now), .. } => {
            assert_eq!(now.reloads_since_first_load, RELOADS);
            assert_eq!(now.rss_since_first_load_bytes, now.rss_bytes as i64 - first.rss_bytes as i64);
            assert!((now.rss_bytes as i64 - last.rss_bytes as i64).abs() < 16 * MIB, "{now:?} against {last:?}");
        }
        other => panic!("status answered {other:?}"),
    }
    assert_eq!(manager.memory().unwrap().reloads_since_first_load, RELOADS);
    drop(manager);
    last
}

#[test]
fn heap_a_plugin_keeps_in_a_static_shows_as_rss_growth_across_reloads_unless_on_free_frees_it() {
    let root = tempfile::tempdir().unwrap();
    // First the plugin that lets go of its cache in on_free: each reload's new cache takes the
    // place of the one freed, so the RSS stays within about one cache of where it started.
    let freeing = reload_repeatedly(root.path(), "free");
    // Then the plugin that keeps it: every replaced generation's cache stays allocated.
    let leaking = reload_repeatedly(root.path(), "leak");
    eprintln!("after {RELOADS} reloads: freeing in on_free {freeing}; leaking {leaking}");
    let leaked = RELOADS as i64 * CACHE_MIB * MIB;
    assert!(
        leaking.rss_since_first_load_bytes >= leaked * 9 / 10,
        "{RELOADS} leaked caches of {CACHE_MIB} MiB show as RSS growth: {leaking}"
    );
    assert!(leaking.rss_change_bytes >= CACHE_MIB * MIB * 9 / 10, "the last reload's leak shows: {leaking}");
    assert!(
        freeing.rss_since_first_load_bytes < CACHE_MIB * MIB,
        "a plugin that frees its cache in on_free does not grow: {freeing}"
    );
}
