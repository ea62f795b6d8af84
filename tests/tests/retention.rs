//! Replaced libraries are closed once nothing refers to them, keeping memory bounded; a
//! handle, a returned value or a live-function handle keeps its library mapped. Whatever
//! thread drops the last reference, the manager's reaper thread runs `on_free` and closes the
//! library.

use std::path::Path;
use std::time::Duration;

use hotswap_runtime::{PluginManager, args};
use hotswap_tests::runtime_log::{capture, logged};
use hotswap_tests::{build_plugin, build_plugin_with_cargo_args, mapped_under, unloading_manager};

const V1: &str = "tests/plugins/greeter_v1";
const V2: &str = "tests/plugins/greeter_v2";

#[test]
fn memory_stays_bounded_over_many_reloads() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = unloading_manager(dir.path(), 1);
    manager.load_plugins().unwrap();
    for i in 0..20 {
        let (crate_dir, expected) = if i % 2 == 0 { (V2, "v2") } else { (V1, "v1") };
        build_plugin(crate_dir).install_newest(dir.path());
        manager.reload().unwrap();
        let served: String = manager.find_plugin("greeter").unwrap().invoke("answer", args![]).unwrap();
        assert_eq!(served, expected, "reload {i} serves the build just installed");
    }
    let mapped = mapped_under(manager.work_dir());
    // The serving library and at most one released one.
    assert!(mapped.len() <= 2, "{} libraries still mapped: {mapped:?}", mapped.len());
    assert!(manager.closed_library_count() >= 19, "closed {}", manager.closed_library_count());
    let copies = std::fs::read_dir(manager.work_dir()).unwrap().count();
    assert!(copies <= 2, "{copies} private copies left on disk");
}

#[test]
fn a_handle_or_a_value_keeps_its_library_mapped_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = unloading_manager(dir.path(), 0);
    manager.load_plugins().unwrap();
    let old = manager.find_plugin("greeter").unwrap();
    let old_library = old.loaded_from().to_string_lossy().into_owned();
    let value = old.invoke_func("answer", args![]).unwrap();
    for crate_dir in [V2, V1, V2] {
        build_plugin(crate_dir).install(dir.path());
        manager.reload().unwrap();
    }
    assert!(mapped_under(manager.work_dir()).contains(&old_library), "the handle keeps generation 1 mapped");
    assert_eq!(old.invoke::<String>("answer", args![]).unwrap(), "v1", "and callable");
    drop(old);
    assert!(manager.free_released_now(Duration::from_secs(10)));
    assert!(mapped_under(manager.work_dir()).contains(&old_library), "the value keeps its library mapped");
    assert!(value.type_name().contains("String"));
    assert_eq!(value.downcast::<String>().unwrap(), "v1");
    manager.free_released_now(Duration::from_secs(10));
    assert!(!mapped_under(manager.work_dir()).contains(&old_library), "released with the last reference");
    assert!(!Path::new(&old_library).exists(), "its private copy is deleted");
}

#[test]
fn a_live_function_handle_keeps_its_library_mapped() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin("tests/plugins/live_v1").install(dir.path());
    let manager = unloading_manager(dir.path(), 0);
    manager.load_plugins().unwrap();
    let library = manager.find_plugin("jobs").unwrap().loaded_from().to_string_lossy().into_owned();
    let add = manager.current().unwrap().vault().live_func::<fn(i64, i64) -> i64>("live_add").unwrap();
    build_plugin("tests/plugins/live_v2").install(dir.path());
    manager.reload().unwrap();
    assert!(mapped_under(manager.work_dir()).contains(&library));
    assert_eq!(add.call((1, 2)), 3, "v1's function, still mapped");
    drop(add);
    manager.free_released_now(Duration::from_secs(10));
    assert!(!mapped_under(manager.work_dir()).contains(&library));
}

#[test]
fn a_caller_dropping_the_last_reference_never_runs_on_free_nor_closes_the_library() {
    capture();
    let dir = tempfile::tempdir().unwrap();
    // A build of live_v1 of this test's own (another cargo setting, so another version): the
    // `on_free` lines of its version are this test's, whatever the other tests load.
    let own = build_plugin_with_cargo_args(
        "tests/plugins/live_v1",
        "retention-caller",
        cfg!(debug_assertions),
        &["--config", "profile.dev.debug=1"],
    );
    assert_ne!(own.version(), build_plugin("tests/plugins/live_v1").version());
    own.install(dir.path());
    let manager = unloading_manager(dir.path(), 0);
    manager.load_plugins().unwrap();
    let v1 = manager.find_plugin("jobs").unwrap();
    let v1_library = v1.loaded_from().to_string_lossy().into_owned();
    let hot = manager.hot_fn::<fn(i64, i64) -> i64>("live_add").unwrap();
    assert_eq!(hot.call((1, 2)), 3, "the HotFn caches generation 1's function");
    build_plugin("tests/plugins/live_v2").install(dir.path());
    manager.reload().unwrap();
    assert!(mapped_under(manager.work_dir()).contains(&v1_library), "held by the handle and the HotFn");
    // On a caller thread: the handle goes (the last reference to generation 1: its on_free),
    // then the HotFn moves on to generation 2 (the last reference to v1's library: its close).
    std::thread::Builder::new()
        .name("caller".into())
        .spawn(move || {
            drop(v1);
            assert_eq!(hot.call((1, 2)), 103, "live_v2's live_add");
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(manager.free_released_now(Duration::from_secs(10)));
    assert!(!mapped_under(manager.work_dir()).contains(&v1_library), "closed");
    // One `on_free` of this test's own build, on the reaper, none on the caller. The library's
    // private copy is this manager's own.
    let freed = logged("on_free done", &format!("version={}", own.version()));
    assert_eq!(freed.len(), 1, "{freed:?}");
    assert!(freed[0].contains(" hotswap-reaper "), "{freed:?}");
    let closed = logged(&v1_library, "library closed and unmapped");
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert!(closed[0].contains(" hotswap-reaper "), "{closed:?}");
}

#[test]
fn never_unload_keeps_every_library() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = PluginManager::builder(dir.path())
        .free_delay(Duration::ZERO)
        .reuse_unchanged(false)
        .never_unload()
        .build()
        .unwrap();
    manager.load_plugins().unwrap();
    for _ in 0..3 {
        manager.reload().unwrap();
    }
    assert_eq!(mapped_under(manager.work_dir()).len(), 4);
    assert_eq!((manager.closed_library_count(), manager.unclosable_library_count()), (0, 3));
}

#[test]
fn the_work_folder_of_a_killed_host_is_removed_by_the_next_manager() {
    let root = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    build_plugin(V1).install(plugins.path());
    // A process that has exited: its pid names a host that is gone.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = root.path().join(format!("hotswap-{dead}-Ab12Cd"));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("g1-1-greeter.so"), b"a copy left behind").unwrap();
    let alive = root.path().join(format!("hotswap-{}-Ef34Gh", std::process::id()));
    std::fs::create_dir(&alive).unwrap();
    let unrelated = root.path().join("hotswap-notapid");
    std::fs::create_dir(&unrelated).unwrap();

    let manager = PluginManager::builder(plugins.path()).work_root(root.path()).build().unwrap();
    manager.load_plugins().unwrap();
    assert!(!stale.exists(), "the dead host's copies are removed");
    assert!(alive.exists(), "a live process's folder is kept");
    assert!(unrelated.exists(), "folders not named by hotswap are kept");
    assert!(manager.work_dir().starts_with(root.path()));
    assert!(
        manager
            .work_dir()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!("hotswap-{}-", std::process::id())),
        "{}",
        manager.work_dir().display()
    );
}
