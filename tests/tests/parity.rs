//! Reload callbacks, whitelist, switching the plugin folder, unchanged and non-reloadable
//! plugins, the reload counter: on real plugins built by `cargo xtask build`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotswap_runtime::{PluginManager, PluginManagerBuilder, Stage, args};
use hotswap_tests::build_plugin;

const V1: &str = "tests/plugins/greeter_v1";
const V2: &str = "tests/plugins/greeter_v2";
const PINNED: &str = "tests/plugins/parity_pinned";
const PINNED_IMPORTER: &str = "tests/plugins/parity_pinned_importer";

fn builder(dir: &std::path::Path) -> PluginManagerBuilder {
    PluginManager::builder(dir).free_delay(Duration::ZERO)
}

fn answer(manager: &PluginManager) -> String {
    manager.find_plugin("greeter").unwrap().invoke("answer", args![]).unwrap()
}

#[test]
fn callbacks_see_the_new_and_old_generation_before_it_is_published() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    // (new generation, old generation, the new one's answer), per callback.
    type Seen = Vec<(u64, Option<u64>, String)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let manager = {
        let seen = seen.clone();
        builder(dir.path())
            .reload_callback(move |new, old| {
                // The new generation works already; the old one (absent at first) still serves.
                let answer: String = new.find_plugin("greeter").unwrap().invoke("answer", args![])?;
                seen.lock().unwrap().push((new.number(), old.map(|g| g.number()), answer));
                Ok(())
            })
            .build()
            .unwrap()
    };
    manager.load_plugins().unwrap();
    build_plugin(V2).install_newest(dir.path());
    let current_during_callback = Arc::new(AtomicU64::new(0));
    let report = {
        let (manager2, current) = (manager.clone(), current_during_callback.clone());
        manager
            .reload_with(move |_, _| {
                current.store(manager2.current().unwrap().number(), Ordering::SeqCst);
                Ok(())
            })
            .unwrap()
    };
    assert_eq!(report.generation, 2);
    assert_eq!(current_during_callback.load(Ordering::SeqCst), 1, "the extra callback ran before publication");
    assert_eq!(*seen.lock().unwrap(), [(1, None, "v1".to_string()), (2, Some(1), "v2".to_string())]);
}

#[test]
fn a_callback_that_fails_or_panics_fails_the_reload_and_the_old_generation_serves() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let fail = Arc::new(AtomicBool::new(false));
    let manager = {
        let fail = fail.clone();
        builder(dir.path())
            .reload_callback(
                move |_, _| if fail.load(Ordering::SeqCst) { Err("health check failed".into()) } else { Ok(()) },
            )
            .build()
            .unwrap()
    };
    manager.load_plugins().unwrap();
    build_plugin(V2).install_newest(dir.path());
    fail.store(true, Ordering::SeqCst);
    let error = manager.reload().unwrap_err();
    assert_eq!(error.stage, Stage::Callback);
    assert!(error.to_string().contains("health check failed"), "{error}");
    assert_eq!(answer(&manager), "v1");
    fail.store(false, Ordering::SeqCst);
    let error = manager.reload_with(|_, _| panic!("callback exploded")).unwrap_err();
    assert!(error.reason.contains("a reload callback panicked: callback exploded"), "{error}");
    assert_eq!(answer(&manager), "v1");
    assert_eq!(manager.current().unwrap().number(), 1);
    assert_eq!(manager.reload().unwrap().generation, 2);
    assert_eq!(answer(&manager), "v2");
}

#[test]
fn the_whitelist_ignores_other_plugins_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let pinned = build_plugin(PINNED).install(dir.path());
    let manager = builder(dir.path()).whitelist(["greeter"]).build().unwrap();
    let report = manager.load_plugins().unwrap();
    assert_eq!(report.plugins.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["greeter"]);
    assert_eq!(report.ignored.len(), 1);
    assert_eq!(report.ignored[0].name, "pinned");
    assert_eq!(report.ignored[0].file, pinned);
    assert_eq!(report.ignored[0].note, "not in the whitelist");
    assert!(manager.find_plugin("pinned").is_none());
}

#[test]
fn unchanged_plugins_are_reused_and_changed_ones_loaded() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = builder(dir.path()).build().unwrap();
    manager.load_plugins().unwrap();
    let report = manager.reload().unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(report.plugins[0].note, "unchanged");
    let plugin = manager.find_plugin("greeter").unwrap();
    assert_eq!(plugin.generation().number(), 2);
    assert_eq!(plugin.loaded_in_generation(), 1, "the serving instance was kept");
    let log: Vec<String> = plugin.invoke("hook_log", args![]).unwrap();
    assert_eq!(log.len(), 5, "no hook ran again: {log:?}");

    build_plugin(V2).install_newest(dir.path());
    let report = manager.reload().unwrap();
    assert_eq!(report.plugins[0].note, "loaded");
    assert_eq!(answer(&manager), "v2");

    // With reuse switched off, an identical file is loaded again.
    let manager = builder(dir.path()).reuse_unchanged(false).build().unwrap();
    manager.load_plugins().unwrap();
    assert_eq!(manager.reload().unwrap().plugins[0].note, "loaded");
    assert_eq!(manager.find_plugin("greeter").unwrap().loaded_in_generation(), 2);
}

#[test]
fn a_non_reloadable_plugin_is_kept_and_may_not_import_a_reloadable_one() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    build_plugin(PINNED).install(dir.path());
    let manager = builder(dir.path()).build().unwrap();
    manager.load_plugins().unwrap();
    build_plugin(V2).install_newest(dir.path());
    let report = manager.reload().unwrap();
    let notes: Vec<(&str, &str)> = report.plugins.iter().map(|p| (p.name.as_str(), p.note.as_str())).collect();
    assert_eq!(notes, [("greeter", "loaded"), ("pinned", "not reloadable")]);
    assert_eq!(manager.find_plugin("pinned").unwrap().invoke::<u64>("loads", args![]).unwrap(), 1);

    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    build_plugin(PINNED_IMPORTER).install(dir.path());
    let error = builder(dir.path()).build().unwrap().load_plugins().unwrap_err();
    assert_eq!(error.stage, Stage::Dependencies);
    assert!(error.reason.contains("plugin `pinned_importer` is not reloadable but imports `greeter`"), "{error}");
}

#[test]
fn the_reload_counter_and_current_generation() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = builder(dir.path()).build().unwrap();
    assert!(manager.current().is_none());
    assert_eq!(manager.reload_count(), 0);
    manager.load_plugins().unwrap();
    assert_eq!((manager.reload_count(), manager.current().unwrap().number()), (0, 1));
    std::fs::write(dir.path().join("broken.so"), b"junk").unwrap();
    manager.reload().unwrap_err();
    assert_eq!(
        (manager.reload_count(), manager.current().unwrap().number()),
        (0, 1),
        "a refused reload counts nothing"
    );
    std::fs::remove_file(dir.path().join("broken.so")).unwrap();
    manager.reload().unwrap();
    assert_eq!((manager.reload_count(), manager.current().unwrap().number()), (1, 2));
}

#[test]
fn switching_the_folder_while_reloads_run_is_safe() {
    let (blue, green) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_plugin(V1).install(blue.path());
    build_plugin(V2).install(green.path());
    let manager = builder(blue.path()).build().unwrap();
    manager.load_plugins().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (manager, stop) = (manager.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reloads = 0;
            while !stop.load(Ordering::SeqCst) {
                let report = manager.reload().expect("both folders hold a good plugin");
                assert!(report.plugins[0].note == "loaded" || report.plugins[0].note == "unchanged");
                reloads += 1;
            }
            reloads
        })
    };
    // After each switch, a reload of our own reads the new folder and serves its build.
    let (v1_version, v2_version) = (build_plugin(V1).version(), build_plugin(V2).version());
    for i in 0..20 {
        let (folder, expected, version) =
            if i % 2 == 0 { (green.path(), "v2", &v2_version) } else { (blue.path(), "v1", &v1_version) };
        manager.set_plugin_dir(folder);
        let report = manager.reload().expect("both folders hold a good plugin");
        assert_eq!(&report.plugins[0].version, version, "switch {i}: the reload after the switch read {folder:?}");
        // Our generation answers from that folder's build (unless the other thread's reload,
        // also of this folder or begun before the switch, has already replaced it).
        let serving = manager.current().unwrap();
        if serving.number() == report.generation {
            let served: String = serving.plugins()[0].invoke("answer", args![]).unwrap();
            assert_eq!(served, expected, "switch {i}");
        }
    }
    manager.set_plugin_dir(green.path());
    stop.store(true, Ordering::SeqCst);
    assert!(reloader.join().unwrap() > 0);
    manager.reload().unwrap();
    assert_eq!(manager.plugin_dir(), green.path());
    assert_eq!(answer(&manager), "v2");
}

/// A thread's nice value, from `/proc/self/task/<tid>/stat` (field 19).
fn nice_of(task: &std::path::Path) -> i64 {
    let stat = std::fs::read_to_string(task.join("stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name.split_whitespace().nth(16).unwrap().parse().unwrap()
}

/// The nice value of every thread of this process named `name`.
fn nice_of_threads(name: &str) -> Vec<i64> {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap().flatten().map(|t| t.path());
    tasks
        .filter(|t| std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|t| nice_of(&t))
        .collect()
}

/// `reload_nice`: the reload's work (a reload callback runs on the reload thread) and the
/// reaper (which freed the replaced generation) run with their nice value raised by it; the
/// caller's own is untouched, and without the setting the reload runs at the caller's.
#[test]
fn reload_nice_lowers_the_priority_of_the_reload_and_reaper_threads_only() {
    let own = nice_of(std::path::Path::new("/proc/thread-self"));
    let lowered = (own + 5).min(19);
    let nice_in_callback = |nice: Option<i32>| {
        let dir = tempfile::tempdir().unwrap();
        build_plugin(V1).install(dir.path());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut builder = {
            let seen = seen.clone();
            builder(dir.path()).reload_callback(move |_, _| {
                seen.lock().unwrap().push(nice_of(std::path::Path::new("/proc/thread-self")));
                Ok(())
            })
        };
        if let Some(nice) = nice {
            builder = builder.reload_nice(nice);
        }
        let manager = builder.build().unwrap();
        manager.load_plugins().unwrap();
        build_plugin(V2).install_newest(dir.path());
        manager.reload().unwrap();
        assert_eq!(answer(&manager), "v2");
        // With a zero free delay the reaper has freed generation 1 before `reload` returned.
        let reapers = nice_of_threads("hotswap-reaper");
        let seen = seen.lock().unwrap().clone();
        (seen, reapers)
    };
    let (seen, reapers) = nice_in_callback(Some(5));
    assert_eq!(seen, [lowered, lowered], "the first load and the reload ran at nice {lowered}");
    assert!(reapers.contains(&lowered), "a reaper at nice {lowered} among {reapers:?}");
    assert_eq!(nice_of(std::path::Path::new("/proc/thread-self")), own, "the caller's nice is untouched");
    let (seen, _) = nice_in_callback(None);
    assert_eq!(seen, [own, own], "without reload_nice the reload runs at the caller's nice");
}

/// `add_reload_callback`: a callback added while the manager runs sees each later new
/// generation before it is published, fails the reload when it fails (the old generation
/// serves), and runs no more once its guard is dropped.
#[test]
fn a_callback_added_at_run_time_runs_until_its_guard_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = builder(dir.path()).build().unwrap();
    manager.load_plugins().unwrap();
    // (new generation, old generation, the new one's answer), per call.
    type Seen = Vec<(u64, Option<u64>, String)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let fail = Arc::new(AtomicBool::new(false));
    let guard = {
        let (seen, fail) = (seen.clone(), fail.clone());
        manager.add_reload_callback(move |new, old| {
            let answer: String = new.find_plugin("greeter").unwrap().invoke("answer", args![])?;
            seen.lock().unwrap().push((new.number(), old.map(|g| g.number()), answer));
            if fail.load(Ordering::SeqCst) { Err("not ready".into()) } else { Ok(()) }
        })
    };
    build_plugin(V2).install_newest(dir.path());
    manager.reload().unwrap();
    assert_eq!(answer(&manager), "v2");
    fail.store(true, Ordering::SeqCst);
    build_plugin(V1).install_newest(dir.path());
    let error = manager.reload().unwrap_err();
    assert_eq!(error.stage, Stage::Callback);
    assert!(error.to_string().contains("not ready"), "{error}");
    assert_eq!(answer(&manager), "v2", "the old generation serves");
    drop(guard);
    manager.reload().unwrap();
    assert_eq!(answer(&manager), "v1");
    assert_eq!(
        *seen.lock().unwrap(),
        [(2, Some(1), "v2".to_string()), (3, Some(2), "v1".to_string())],
        "seen on the two reloads before the guard was dropped, not after"
    );
}
