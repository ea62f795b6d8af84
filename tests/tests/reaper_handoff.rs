//! The reaper handoff under stress: a reaper stuck in the `on_free` of a generation a caller
//! handed over, handles outliving the manager, and arguments whose drop panics inside a
//! plugin.
//!
//! Fixtures: `greeter_v1`/`greeter_v2` serve; `mgr_hostile` is a build of `greeter` whose
//! `on_free` loops while the file `hostile-mode` says `loop_on_free` and no file `release`
//! exists; `abort_hooks` drops the arguments of every call inside the plugin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hotswap_runtime::{Args, InvokeError, PluginManager, args};
use hotswap_tests::runtime_log::{capture, logged};
use hotswap_tests::{build_plugin, mapped_under, unloading_manager};

const V1: &str = "tests/plugins/greeter_v1";
const V2: &str = "tests/plugins/greeter_v2";
const HOSTILE: &str = "tests/plugins/mgr_hostile";
const HOOKS: &str = "tests/plugins/abort_hooks";

/// Runs `work` on a new thread named `name` and returns how long it took there.
fn on_thread(name: &str, work: impl FnOnce() + Send + 'static) -> Duration {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let t = Instant::now();
            work();
            t.elapsed()
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_reaper_stuck_in_a_handed_over_on_free_blocks_no_caller_and_still_bounds_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    build_plugin(V1).install(&dir);
    let manager = PluginManager::builder(&dir)
        .free_delay(Duration::from_secs(3600))
        .reuse_unchanged(false)
        .retain_released_libraries(0)
        .build()
        .unwrap();
    manager.load_plugins().unwrap();
    std::fs::write(dir.join("hostile-mode"), "loop_on_free").unwrap();
    build_plugin(HOSTILE).install_newest(&dir);
    assert_eq!(manager.reload().unwrap().generation, 2);
    let hostile = manager.find_plugin("greeter").unwrap();
    build_plugin(V1).install_newest(&dir);
    assert_eq!(manager.reload().unwrap().generation, 3);
    let other = manager.find_plugin("greeter").unwrap();
    let other_library = other.loaded_from().to_path_buf();
    assert_eq!(manager.reload().unwrap().generation, 4);
    // The reaper lets go of generations 1 to 3; the handles keep 2 and 3.
    assert!(manager.free_released_now(Duration::from_secs(10)));
    // The last reference to generation 2 goes on a caller: handed over, and the reaper is now
    // stuck in its on_free.
    assert!(on_thread("caller", move || drop(hostile)) < Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!manager.free_released_now(Duration::from_millis(100)), "the reaper is stuck");
    // A caller dropping the last reference to generation 3 does not wait for the stuck reaper.
    assert!(on_thread("caller", move || drop(other)) < Duration::from_millis(500));
    // Reloads keep retiring generations: at most 16 wait, the others are leaked.
    for i in 0..20 {
        build_plugin(if i % 2 == 0 { V2 } else { V1 }).install_newest(&dir);
        manager.reload().unwrap();
    }
    assert_eq!(manager.unclosable_library_count(), 4, "16 wait behind the stuck reaper, 4 are leaked");
    // Released, the reaper frees everything that waits or was handed over.
    std::fs::write(dir.join("release"), "").unwrap();
    assert!(manager.free_released_now(Duration::from_secs(30)));
    let mapped = mapped_under(manager.work_dir());
    assert!(!mapped.contains(&other_library.to_string_lossy().into_owned()), "{mapped:?}");
    assert_eq!(mapped.len(), 1 + 4, "the serving library and the 4 leaked generations': {mapped:?}");
}

#[test]
fn handles_outliving_the_manager_free_their_generations_once_on_the_thread_that_drops_them() {
    capture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    build_plugin(V1).install(&dir);
    let manager = unloading_manager(&dir, 0);
    manager.load_plugins().unwrap();
    let first = manager.find_plugin("greeter").unwrap();
    build_plugin(V2).install_newest(&dir);
    manager.reload().unwrap();
    let second = manager.find_plugin("greeter").unwrap();
    let work = manager.work_dir().to_path_buf();
    assert_eq!(mapped_under(&work).len(), 2);
    let t = Instant::now();
    drop(manager);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(mapped_under(&work).len(), 2, "the handles keep both generations");
    // The reaper has stopped: the thread dropping the last handle frees and closes.
    on_thread("late-caller", move || {
        assert_eq!(first.invoke::<String>("answer", args![]).unwrap(), "v1");
        drop(first);
        assert_eq!(second.invoke::<String>("answer", args![]).unwrap(), "v2");
        drop(second);
    });
    assert_eq!(mapped_under(&work), Vec::<String>::new(), "both libraries closed");
    let freed = logged(" late-caller ", "on_free done");
    assert_eq!(freed.len(), 2, "each generation's on_free ran once: {freed:?}");
}

/// Counts its drops; panics when dropped if `PANIC`.
struct Dropped<const PANIC: bool>(Arc<AtomicUsize>);

impl<const PANIC: bool> Drop for Dropped<PANIC> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if PANIC {
            panic!("a host argument exploded when dropped");
        }
    }
}

#[test]
fn arguments_a_plugin_drops_are_all_dropped_when_one_of_them_panics() {
    let tmp = tempfile::tempdir().unwrap();
    build_plugin(HOOKS).install(tmp.path());
    let manager = PluginManager::builder(tmp.path()).free_delay(Duration::ZERO).build().unwrap();
    manager.load_plugins().unwrap();
    let plugin = manager.find_plugin("abort_hooks").unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ok = || Dropped::<false>(Arc::clone(&drops));
    let bad = || Dropped::<true>(Arc::clone(&drops));
    let calls: [(Args, usize); 3] =
        [(args![bad(), ok()], 2), (args![ok(), ok(), bad(), ok()], 4), (args![bad(), ok(), ok(), bad(), ok()], 5)];
    for (args, count) in calls {
        match plugin.invoke_func("answer", args) {
            Err(InvokeError::Panicked { message, .. }) => {
                assert!(message.contains("a host argument exploded when dropped"), "{message}")
            }
            other => panic!("expected the plugin's panic, got {other:?}"),
        }
        assert_eq!(drops.swap(0, Ordering::SeqCst), count, "every argument dropped once");
    }
    assert_eq!(plugin.invoke::<String>("answer", args![]).unwrap(), "abort_hooks");
}
