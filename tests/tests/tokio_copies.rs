//! The copies route of `hotswap-tokio` (guide, section 10): a plugin with its own copy of tokio
//! serves plain async fns with `hotswap_tokio::serve`, and the host awaits them with
//! `hotswap_tokio::call` on its runtime. (The service demo showed this before its port to axum;
//! these are the checks its test made.)

use std::time::Duration;

use hotswap_tests::{build_plugin, unloading_manager};
use hotswap_tokio::{CallError, call};

#[test]
fn a_call_in_flight_during_a_reload_finishes_on_its_generation_and_a_panic_fails_only_its_call() {
    let plugin = build_plugin("tests/plugins/tokio_copies");
    let dir = tempfile::tempdir().unwrap();
    plugin.install(dir.path());
    // Free delay zero, nothing retained: a generation nobody holds is freed at once.
    let manager = unloading_manager(dir.path(), 0);
    manager.load_plugins().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let find = || manager.find_plugin("tokio_copies").expect("loaded");
        // Awaits the host's timer in plugin code, across a reload.
        let slow = tokio::spawn(call::<u64, String>(find(), "sleep", 300).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let reloading = manager.clone();
        let report = tokio::task::spawn_blocking(move || reloading.reload()).await.unwrap().unwrap();
        assert_eq!(report.generation, 2);
        let next: String = call(find(), "sleep", 0u64).unwrap().await.unwrap();
        assert_eq!(next, "slept 0 ms on generation 2", "the next call finds the new code");
        let slow = slow.await.unwrap().unwrap();
        assert_eq!(slow, "slept 300 ms on generation 1", "the call in flight finished on the old code");

        // A panic after an `.await` is that call's error, three times; the plugin goes on.
        for _ in 0..3 {
            let error = call::<(), String>(find(), "fail", ()).unwrap().await.unwrap_err();
            assert!(
                matches!(&error, CallError::Panicked { message, .. } if message.contains("fails on purpose (generation 2)")),
                "{error}"
            );
        }
        // A call dropped while it sleeps (a client gone): its future is dropped in the plugin.
        let gone = tokio::time::timeout(Duration::from_millis(20), call::<u64, String>(find(), "sleep", 10_000).unwrap());
        assert!(gone.await.is_err(), "the sleeping call was still running when dropped");
        let after: String = call(find(), "sleep", 1u64).unwrap().await.unwrap();
        assert_eq!(after, "slept 1 ms on generation 2");
    });
}
