//! The built-in reload trigger (`PluginManagerBuilder::reload_on_new_builds`), on real plugins:
//! a new build renamed into the folder is served without anyone calling `reload`; what is not
//! a new library (hidden files, manifests, reads) triggers nothing; a refused build leaves
//! the trigger working; a build that lands while another reload runs is still loaded; and
//! dropping the manager ends the watch and frees the manager.
//!
//! The waits below are bounds on how long something may take on a loaded machine, never
//! measurements (end-to-end latency is measured in `tests/benches/reload.rs`).

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hotswap_runtime::{HotFn, PluginManager};
use hotswap_tests::build_plugin;
use hotswap_tests::runtime_log::{capture, logged};

/// `live_add` is `a + b` in v1 and `a + b + 100` in v2.
const V1: &str = "tests/plugins/live_v1";
const V2: &str = "tests/plugins/live_v2";

/// How long a triggered reload may take at most on a busy machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// The tests count the trigger threads of the process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn install(dir: &Path, crate_dir: &str) {
    std::thread::sleep(Duration::from_millis(20)); // a strictly newer modification time
    build_plugin(crate_dir).install(dir);
}

fn manager(dir: &Path) -> PluginManager {
    PluginManager::builder(dir)
        .free_delay(Duration::ZERO)
        .reload_on_new_builds(Duration::from_millis(20))
        .build()
        .unwrap()
}

/// Waits until `done` holds, at most [`PATIENCE`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

type Add = fn(i64, i64) -> i64;

fn add(manager: &PluginManager) -> HotFn<Add> {
    manager.hot_fn::<Add>("live_add").unwrap()
}

/// A folder serving v1 through a manager with the trigger, and a handle on `live_add`.
fn serving_v1() -> (tempfile::TempDir, PluginManager, HotFn<Add>) {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let add = add(&manager);
    assert_eq!(add.call((1, 2)), 3);
    (dir, manager, add)
}

/// The `/proc/self/task/<tid>` folders of this process's threads named `hotswap-trigger`.
fn trigger_tasks() -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| Some(t.ok()?.path()))
        .filter(|task| std::fs::read_to_string(task.join("comm")).is_ok_and(|name| name.trim() == "hotswap-trigger"))
        .collect()
}

/// Threads of this process named `hotswap-trigger`.
fn trigger_threads() -> usize {
    trigger_tasks().len()
}

/// How many times the trigger threads have woken up so far (their voluntary context switches):
/// a waiting trigger does not wake, a trigger retrying a busy reload wakes every 20 ms.
fn trigger_wakeups() -> u64 {
    trigger_tasks()
        .iter()
        .filter_map(|task| std::fs::read_to_string(task.join("status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

#[test]
fn a_new_build_renamed_into_the_folder_is_served_without_a_reload_call() {
    let _serial = serial();
    let (dir, manager, add) = serving_v1();

    install(dir.path(), V2);
    wait_until("the new build is served", || add.call((1, 2)) == 103);
    assert_eq!(manager.generation_number(), 2, "one reload for one new build (library and manifest)");

    // And again: the trigger keeps working (v1 rebuilt is a newer file again).
    install(dir.path(), V1);
    wait_until("the rebuilt v1 is served", || add.call((1, 2)) == 3);
    assert_eq!(manager.reload_count(), 2);
}

#[test]
fn hidden_files_manifests_and_reads_trigger_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let v1 = build_plugin(V1);
    let installed = v1.install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();

    // A hidden library (where `cargo xtask build` writes before its rename), a manifest, a
    // file of another kind, and reading the served library.
    std::fs::copy(&v1.library, dir.path().join(".jobs@9.so")).unwrap();
    std::fs::write(dir.path().join("jobs@9.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    std::fs::rename(dir.path().join("notes.txt"), dir.path().join("notes2.txt")).unwrap();
    let _ = std::fs::read(&installed).unwrap();
    // A quiet gap of many debounce periods: a reload these wrongly triggered would start in it,
    // on its own, not merged with the real build's below.
    std::thread::sleep(Duration::from_millis(300));
    // Then a real build, which must be the only reload. The trigger handles events in order,
    // so once the real build is served every reload the earlier files caused has happened.
    install(dir.path(), V2);
    let add = add(&manager);
    wait_until("the real build is served", || add.call((1, 2)) == 103);
    assert_eq!(manager.reload_count(), 1, "only the real build triggered a reload");
}

#[test]
fn a_refused_build_keeps_the_old_generation_and_the_trigger_working() {
    let _serial = serial();
    capture();
    let (dir, manager, add) = serving_v1();

    // Not a library, under the plugin's name and newer: the triggered reload is refused.
    std::thread::sleep(Duration::from_millis(20));
    let junk = dir.path().join(".junk");
    std::fs::write(&junk, b"not an ELF file").unwrap();
    let broken = dir.path().join("jobs@9.9.9.so");
    std::fs::rename(&junk, &broken).unwrap();
    // The manager logs the refusal, naming the file (this test's own folder): wait for it.
    let named = broken.to_string_lossy().into_owned();
    wait_until("the trigger's reload is refused", || !logged("reload refused", &named).is_empty());
    assert_eq!((manager.generation_number(), add.call((1, 2))), (1, 3), "the serving generation keeps serving");
    assert_eq!(manager.reload_count(), 0);
    std::fs::remove_file(&broken).unwrap();

    install(dir.path(), V2);
    wait_until("the good build after the refused one is served", || add.call((1, 2)) == 103);
}

#[test]
fn a_build_landing_during_another_reload_is_loaded_after_it() {
    let _serial = serial();
    let (dir, manager, add) = serving_v1();

    // A reload that has scanned the folder (v1 only) and is held in its callback.
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let held = {
        let manager = manager.clone();
        std::thread::spawn(move || {
            manager.reload_with(move |_, _| {
                entered_tx.send(()).unwrap();
                released.lock().unwrap().recv().unwrap();
                Ok(())
            })
        })
    };
    entered.recv().unwrap();
    let wakeups = trigger_wakeups();
    install(dir.path(), V2); // the trigger's try_reload finds the held reload: Busy
    // The event and the debounce wake the trigger twice; more wakeups are its retries of the
    // busy reload (every 20 ms): wait for several.
    wait_until("the trigger retries the busy reload", || trigger_wakeups() >= wakeups + 6);
    assert_eq!(add.call((1, 2)), 3, "nothing new is served while the reload is held");
    release.send(()).unwrap();
    held.join().unwrap().expect("the held reload succeeds (with v1)");
    wait_until("the build that landed during the held reload is served", || add.call((1, 2)) == 103);
    assert_eq!(manager.generation_number(), 3);
}

#[test]
fn dropping_the_manager_ends_the_watch_and_frees_the_manager() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    // The tests run one at a time; an earlier test's trigger thread may still be ending.
    wait_until("earlier tests' trigger threads end", || trigger_threads() == 0);
    let before = trigger_threads();
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    // A thread takes its name once it runs, which may be a little after `build` returned.
    wait_until("the manager runs one trigger thread", || trigger_threads() == before + 1);
    let work = manager.work_dir().to_path_buf();
    assert!(work.exists());

    // Nothing but the manager itself holds it: the watch does not keep it alive.
    drop(manager);
    assert!(!work.exists(), "the manager was freed at once (its work folder is gone)");
    wait_until("the trigger thread ends", || trigger_threads() == before);
    // A build landing now reaches nobody, and nothing crashes.
    install(dir.path(), V2);
}
