//! Loads real plugin libraries built by `cargo xtask build` and reloads them under load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hotswap_runtime::{ControlRequest, ControlResponse, ControlServer, PluginManager, Stage, args};
use hotswap_tests::build_plugin;

const V1: &str = "tests/plugins/greeter_v1";
const V2: &str = "tests/plugins/greeter_v2";

fn manager(dir: &std::path::Path) -> PluginManager {
    PluginManager::builder(dir).free_delay(Duration::from_millis(50)).build().unwrap()
}

fn answer(manager: &PluginManager) -> String {
    manager.find_plugin("greeter").expect("greeter loaded").invoke::<String>("answer", args![]).unwrap()
}

#[test]
fn reload_under_four_calling_threads_loses_no_call() {
    let (v1, v2) = (build_plugin(V1), build_plugin(V2));
    let dir = tempfile::tempdir().unwrap();
    v1.install(dir.path());
    let manager = manager(dir.path());
    let first = manager.load_plugins().unwrap();
    assert_eq!(first.generation, 1);
    assert_eq!(answer(&manager), "v1");

    // Twenty reloads alternating v2 and v1: odd generations serve v1, even ones v2. Each call
    // checks that it ran the version of the generation that served it, and that it did not
    // run a generation older than the newest one published before it started. Before each
    // reload, every thread has made calls on the serving generation.
    const THREADS: usize = 4;
    const RELOADS: u64 = 20;
    const CALLS_PER_THREAD: u64 = 5;
    let published = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(THREADS + 1));
    // Calls each thread made on the generation `published` names, reset at each reload.
    let calls_on_newest: Arc<Vec<AtomicU64>> = Arc::new((0..THREADS).map(|_| AtomicU64::new(0)).collect());
    let workers: Vec<_> = (0..THREADS)
        .map(|index| {
            let (manager, published, stop, start, calls_on_newest) =
                (manager.clone(), published.clone(), stop.clone(), start.clone(), calls_on_newest.clone());
            std::thread::spawn(move || {
                let mut calls = 0u64;
                start.wait();
                while !stop.load(Ordering::Acquire) {
                    let newest_before_call = published.load(Ordering::Acquire);
                    let plugin = manager.find_plugin("greeter").expect("a generation is always published");
                    let text: String = plugin.invoke("answer", args![]).expect("every call succeeds");
                    let sum: i64 = plugin.invoke("add", args![6_i64, 7_i64]).expect("every call succeeds");
                    let generation = plugin.loaded_in_generation();
                    assert!(
                        generation >= newest_before_call,
                        "a call that started after generation {newest_before_call} was published ran generation {generation}"
                    );
                    let expected = if generation % 2 == 1 { ("v1", 13) } else { ("v2", 42) };
                    assert_eq!((text.as_str(), sum), expected, "generation {generation}'s answer");
                    if generation == published.load(Ordering::Acquire) {
                        calls_on_newest[index].fetch_add(1, Ordering::AcqRel);
                    }
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    start.wait();
    let every_thread_called = || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while calls_on_newest.iter().any(|c| c.load(Ordering::Acquire) < CALLS_PER_THREAD) {
            assert!(Instant::now() < deadline, "the callers made no progress");
            std::thread::yield_now();
        }
    };
    for reload in 1..=RELOADS {
        every_thread_called();
        let build = if reload % 2 == 1 { &v2 } else { &v1 };
        build.install_newest(dir.path());
        let report = manager.reload().expect("every reload loads");
        assert_eq!(report.generation, reload + 1);
        assert_eq!(report.plugins[0].version, build.version());
        // Published first: a call counted between the two ran the new generation (a count
        // lost to the reset only makes the wait longer).
        published.store(report.generation, Ordering::Release);
        for count in calls_on_newest.iter() {
            count.store(0, Ordering::Release);
        }
    }
    every_thread_called();
    stop.store(true, Ordering::Release);
    for worker in workers {
        let calls = worker.join().expect("no worker panicked");
        assert!(calls >= (RELOADS + 1) * CALLS_PER_THREAD, "{calls} calls");
    }
    assert_eq!(answer(&manager), "v1");
}

#[test]
fn hooks_run_in_the_documented_order() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let log: Vec<String> = manager.find_plugin("greeter").unwrap().invoke("hook_log", args![]).unwrap();
    assert_eq!(log, ["reloadable", "export", "import", "on_load", "on_init"]);
}

#[test]
fn a_truncated_library_is_refused_and_the_old_generation_keeps_serving() {
    let (v1, v2) = (build_plugin(V1), build_plugin(V2));
    let dir = tempfile::tempdir().unwrap();
    v1.install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();

    // Half of v2's library, newer than v1's file, without its manifest.
    let bytes = std::fs::read(&v2.library).unwrap();
    let truncated = dir.path().join("greeter@9.9.9.so");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let error = manager.reload().expect_err("a truncated library must be refused");
    assert_eq!(error.stage, Stage::Inspect);
    assert_eq!(error.file, truncated);
    assert!(error.to_string().contains("not a valid shared library"), "{error}");
    assert_eq!(manager.current().unwrap().number(), 1);
    assert_eq!(answer(&manager), "v1");

    // Garbage under a plugin's name is refused the same way.
    std::fs::write(&truncated, b"definitely not an ELF file").unwrap();
    let error = manager.reload().expect_err("garbage must be refused");
    assert!(error.to_string().contains("greeter@9.9.9.so"), "{error}");
    assert_eq!(answer(&manager), "v1");

    // Once the bad file is gone, reloading works again.
    std::fs::remove_file(&truncated).unwrap();
    v2.install(dir.path());
    assert_eq!(manager.reload().unwrap().generation, 2);
    assert_eq!(answer(&manager), "v2");
}

#[test]
fn a_manifest_whose_sha256_differs_is_refused() {
    let (v1, v2) = (build_plugin(V1), build_plugin(V2));
    let dir = tempfile::tempdir().unwrap();
    v1.install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let library = v2.install(dir.path());
    let manifest_path = library.with_extension("json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["sha256"] = "0".repeat(64).into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let error = manager.reload().expect_err("a sha256 mismatch must be refused");
    assert!(error.reason.contains("sha256 mismatch"), "{error}");
    assert_eq!(answer(&manager), "v1");
}

#[test]
fn invoke_errors_are_values_and_a_panic_is_contained() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let plugin = manager.find_plugin("greeter").unwrap();
    let wrong_arg = plugin.invoke::<i64>("add", args!["six", 7_i64]).unwrap_err().to_string();
    assert!(wrong_arg.contains("argument 0") && wrong_arg.contains("i64") && wrong_arg.contains("&str"), "{wrong_arg}");
    let wrong_result = plugin.invoke::<u8>("answer", args![]).unwrap_err().to_string();
    assert!(wrong_result.contains("u8") && wrong_result.contains("String"), "{wrong_result}");
    let unknown = plugin.invoke::<()>("nope", args![]).unwrap_err().to_string();
    assert!(unknown.contains("unknown function `nope`"), "{unknown}");
    let panicked = plugin.invoke::<()>("panic", args![]).unwrap_err();
    assert!(matches!(panicked, hotswap_runtime::InvokeError::Panicked { .. }), "{panicked}");
    assert!(panicked.to_string().contains("asked to panic"));
    // Still usable after the panic.
    assert_eq!(plugin.invoke::<i64>("add", args![2_i64, 3_i64]).unwrap(), 5);
}

#[test]
fn a_handle_taken_before_a_reload_keeps_calling_the_old_code() {
    let (v1, v2) = (build_plugin(V1), build_plugin(V2));
    let dir = tempfile::tempdir().unwrap();
    v1.install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let old = manager.find_plugin("greeter").unwrap();
    v2.install(dir.path());
    manager.reload().unwrap();
    assert_eq!(old.invoke::<String>("answer", args![]).unwrap(), "v1");
    assert_eq!(old.generation().number(), 1);
    assert_eq!(answer(&manager), "v2");
}

#[test]
fn the_control_socket_accepts_and_refuses_reloads() {
    let (v1, v2) = (build_plugin(V1), build_plugin(V2));
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    v1.install(&plugins);
    let manager = manager(&plugins);
    manager.load_plugins().unwrap();
    let socket = dir.path().join("run").join("control.sock");
    let server = ControlServer::start(manager.clone(), &socket).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    v2.install(&plugins);
    let timeout = Duration::from_secs(30);
    match hotswap_runtime::send_request(&socket, &ControlRequest::Reload, timeout).unwrap() {
        ControlResponse::Accepted { generation, plugins, .. } => {
            assert_eq!(generation, 2);
            assert_eq!(plugins[0].version, v2.version());
        }
        other => panic!("expected accepted, got {other:?}"),
    }
    std::fs::write(plugins.join("broken.so"), b"\x7fELF but cut").unwrap();
    match hotswap_runtime::send_request(&socket, &ControlRequest::Reload, timeout).unwrap() {
        ControlResponse::Refused { reason, .. } => assert!(reason.contains("broken.so"), "{reason}"),
        other => panic!("expected refused, got {other:?}"),
    }
    assert_eq!(answer(&manager), "v2");
    drop(server);
    assert!(!socket.exists(), "the socket file is removed when the server stops");
    let started = Instant::now();
    let error = hotswap_runtime::send_request(&socket, &ControlRequest::Reload, timeout).unwrap_err();
    assert!(error.to_string().contains("no host is listening"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
