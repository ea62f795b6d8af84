//! Async plugins on a copy of tokio in each plugin (`hotswap_tokio::serve` / `call`, the route
//! without a shared tokio; guide section 10), with real builds of fixture `tokio_copy` (plugin
//! `copy`, builds v1 and v2) loaded by this test process on a multi-thread runtime:
//!
//! * plugin code awaits the host's timer and reactor (`tokio::time::sleep`, a
//!   `tokio::net::TcpStream` to a listener of the host's);
//! * a call in flight during a reload finishes on the generation that started it, freed at
//!   once otherwise (`free_delay(ZERO)`), while the next call gets the new code;
//! * a panic after an `.await` is caught in the plugin: `CallError::Panicked` naming plugin and
//!   function, and the next call is answered;
//! * calls the host drops (a client hanging up) drop the plugin's futures, inside the plugin;
//! * four callers keep calling while the plugin is reloaded 20 times, alternating its builds:
//!   no call fails, both builds answer, only the newest after the last reload.
//!
//! (`demo/service` runs on the shared route, one tokio for the process; these are the copy
//! route's checks.)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hotswap_runtime::PluginManager;
use hotswap_tests::{BuiltPlugin, build_plugin_with_features, make_newest};
use hotswap_tokio::CallError;

const FIXTURE: &str = "tests/plugins/tokio_copy";

/// The fixture's two builds, in this test's profile.
fn builds() -> (BuiltPlugin, BuiltPlugin) {
    let debug = cfg!(debug_assertions);
    (build_plugin_with_features(FIXTURE, &[], debug), build_plugin_with_features(FIXTURE, &["v2"], debug))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A manager on `plugins` that frees a replaced generation nobody holds within the reload.
fn manager(plugins: &Path, work: &Path) -> PluginManager {
    PluginManager::builder(plugins).work_root(work).free_delay(Duration::ZERO).build().unwrap()
}

/// Installs `build` as the newest file of plugin `copy` and reloads; the new generation.
fn swap_to(manager: &PluginManager, plugins: &Path, build: &BuiltPlugin) -> u64 {
    let library = build.install(plugins);
    make_newest(&library);
    manager.reload().unwrap().generation
}

async fn greet(manager: &PluginManager, delay_ms: u64) -> Result<String, CallError> {
    let plugin = manager.find_plugin("copy").expect("plugin copy is loaded");
    hotswap_tokio::call::<u64, String>(plugin, "greet", delay_ms)?.await
}

#[test]
fn plugin_code_awaits_the_hosts_timer_and_reactor() {
    let (v1, _) = builds();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    v1.install(dirs[0].path());
    let manager = manager(dirs[0].path(), dirs[1].path());
    assert_eq!(manager.reload().unwrap().generation, 1);
    runtime().block_on(async {
        assert_eq!(greet(&manager, 20).await.unwrap(), "v1 gen=1");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"from the host's listener").await.unwrap();
        });
        let plugin = manager.find_plugin("copy").unwrap();
        let text: String = hotswap_tokio::call(plugin, "fetch", addr).unwrap().await.unwrap();
        assert_eq!(text, "from the host's listener via v1 gen=1");
        server.await.unwrap();
    });
}

#[test]
fn a_call_in_flight_during_a_reload_finishes_on_its_generation() {
    let (v1, v2) = builds();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    v1.install(dirs[0].path());
    let manager = manager(dirs[0].path(), dirs[1].path());
    assert_eq!(manager.reload().unwrap().generation, 1);
    runtime().block_on(async {
        let plugin = manager.find_plugin("copy").unwrap();
        let slow = tokio::spawn(hotswap_tokio::call::<u64, String>(plugin, "greet", 400).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!slow.is_finished(), "the slow call is still in flight when the reload starts");
        assert_eq!(swap_to(&manager, dirs[0].path(), &v2), 2);
        assert_eq!(greet(&manager, 0).await.unwrap(), "v2 gen=2", "the next call gets the new code");
        // The fixture's `on_free` forgets the generation: `gen=0` would mean generation 1 was
        // freed under the call (the call holds it).
        assert_eq!(slow.await.unwrap().unwrap(), "v1 gen=1", "the call in flight finished on its own, unfreed code");
    });
}

#[test]
fn a_panic_after_an_await_is_caught_in_the_plugin() {
    let (v1, _) = builds();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    v1.install(dirs[0].path());
    let manager = manager(dirs[0].path(), dirs[1].path());
    manager.reload().unwrap();
    runtime().block_on(async {
        for round in 0..3 {
            let plugin = manager.find_plugin("copy").unwrap();
            let call = hotswap_tokio::call::<String, String>(plugin, "panic", format!("boom {round}")).unwrap();
            match call.await {
                Err(CallError::Panicked { plugin, func, message }) => {
                    assert_eq!((plugin.as_str(), func.as_str()), ("copy", "panic"));
                    assert!(message.contains(&format!("boom {round}")), "{message}");
                }
                other => panic!("expected a caught panic, got {other:?}"),
            }
            assert_eq!(greet(&manager, 0).await.unwrap(), "v1 gen=1", "the plugin answers after the panic");
        }
    });
}

#[test]
fn calls_the_host_drops_drop_the_plugins_futures() {
    let (v1, v2) = builds();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    v1.install(dirs[0].path());
    let manager = manager(dirs[0].path(), dirs[1].path());
    manager.reload().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    runtime().block_on(async {
        let mut hanging = Vec::new();
        for _ in 0..10 {
            let plugin = manager.find_plugin("copy").unwrap();
            let call = hotswap_tokio::call::<_, String>(plugin, "hang", Arc::clone(&dropped)).unwrap();
            hanging.push(tokio::spawn(call));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "the calls are pending");
        for task in &hanging {
            task.abort();
        }
        for task in hanging {
            assert!(task.await.unwrap_err().is_cancelled());
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 10, "each dropped call dropped the plugin's future");
        assert_eq!(swap_to(&manager, dirs[0].path(), &v2), 2);
        let mapped = hotswap_tests::mapped_under(dirs[1].path());
        assert_eq!(greet(&manager, 0).await.unwrap(), "v2 gen=2");
        assert!(mapped.iter().any(|m| m.contains("/g2-")), "{mapped:?}");
    });
}

#[test]
fn callers_keep_calling_through_twenty_reloads() {
    let (v1, v2) = builds();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    v1.install(dirs[0].path());
    let manager = manager(dirs[0].path(), dirs[1].path());
    manager.reload().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    runtime().block_on(async {
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (manager, stop) = (manager.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    let (mut answers, mut builds) = (0usize, std::collections::BTreeSet::new());
                    while !stop.load(Ordering::SeqCst) {
                        let text = greet(&manager, 1).await.expect("no call fails during reloads");
                        builds.insert(text.split(' ').next().unwrap().to_string());
                        answers += 1;
                    }
                    (answers, builds)
                })
            })
            .collect();
        let mut generation = 1;
        for round in 0..20 {
            let build = if round % 2 == 0 { &v2 } else { &v1 };
            let plugins = dirs[0].path().to_path_buf();
            let (manager, build) = (manager.clone(), build.clone());
            generation = tokio::task::spawn_blocking(move || swap_to(&manager, &plugins, &build)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(generation, 21);
        stop.store(true, Ordering::SeqCst);
        let mut seen = std::collections::BTreeSet::new();
        for caller in callers {
            let (answers, builds) = caller.await.unwrap();
            assert!(answers > 20, "each caller kept calling through the reloads: {answers}");
            seen.extend(builds);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["v1", "v2"], "both builds answered");
        assert_eq!(greet(&manager, 0).await.unwrap(), "v1 gen=21", "only the newest answers after the last reload");
    });
}
