//! The service demo under HTTP load, three ways in one run: handlers in plugins in steady
//! state, the same while reloading every 500 ms (alternating two builds of `svc_greeting`,
//! which reloads its importer `svc_shop` too), and the same handlers compiled into the host
//! (their source files included here, no plugin). Plain `main`.
//!
//! Load: `CONNECTIONS` keep-alive connections, each a task sending requests back to back
//! (half `GET /hello?delay_ms=0`, which awaits `tokio::time::sleep` in the handler, half
//! `GET /quote`, which asks the host's TCP backend), on a client runtime of one thread; the
//! server runs on a runtime of two workers. Each mode runs `ROUNDS` times for `RUN` each,
//! interleaved, to spread machine noise evenly.
//!
//! Reported per mode: requests/s, p50/p99/max latency of all requests; for the reloading
//! mode also of the requests that *started* inside a reload window (from the start of a
//! reload to `WINDOW_AFTER` after it ended). Writes `target/bench-results/service.json`
//! and prints a Markdown table.

mod common;

#[path = "../../demo/service/plugin/svc_greeting/src/handlers.rs"]
mod greeting_handlers;
#[path = "../../demo/service/plugin/svc_shop/src/handlers.rs"]
mod shop_handlers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{percentile, write_results};
use hotswap_runtime::PluginManager;
use hotswap_tests::http_client::Client;
use hotswap_tests::{BuiltPlugin, build_plugin_release, build_plugin_with_cargo_args};
use serde_json::json;
use service_host::{AppState, BackendServer, Handlers, PluginHandlers, ResponseFuture, Route};
use service_shared::{Backend, Request, Response, ServiceExt};

const CONNECTIONS: usize = 8;
const RUN: Duration = Duration::from_secs(5);
const ROUNDS: usize = 3;
const RELOAD_EVERY: Duration = Duration::from_millis(500);
const WINDOW_AFTER: Duration = Duration::from_millis(100);

/// The handlers compiled into the host: the plugins' own handler source, called directly.
struct CompiledIn {
    greeting: greeting_handlers::Ctx,
    shop: shop_handlers::Ctx,
}

impl Handlers for CompiledIn {
    fn handle(&self, route: Route, request: Request) -> ResponseFuture {
        match route {
            Route::Hello => Box::pin(greeting_handlers::hello(self.greeting.clone(), request)),
            Route::Quote => Box::pin(shop_handlers::quote(self.shop.clone(), request)),
            Route::Fail => Box::pin(shop_handlers::fail(request)),
            _ => Box::pin(async { Response::error(404, "") }),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Steady,
    Reloading,
    CompiledIn,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Steady => "plugins, steady state",
            Mode::Reloading => "plugins, reloading every 500 ms",
            Mode::CompiledIn => "compiled into the host",
        }
    }
}

/// What one mode measured over all its rounds.
#[derive(Default)]
struct Measured {
    requests: u64,
    seconds: f64,
    latencies_ms: Vec<f64>,
    window_latencies_ms: Vec<f64>,
    window_requests: u64,
    window_seconds: f64,
    reloads: u64,
    failures: u64,
}

fn folder(root: &Path, name: &str, plugins: &[&BuiltPlugin]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for plugin in plugins {
        plugin.install(&dir);
    }
    dir
}

/// One round of one mode: starts a server, loads it for `RUN`, returns what it saw.
fn round(mode: Mode, dirs: &(PathBuf, PathBuf), into: &mut Measured) {
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (addr, manager) = server.block_on(async {
        let backend_server = BackendServer::start().await.unwrap();
        let backend = Arc::new(Backend::new(backend_server.addr));
        std::mem::forget(backend_server); // its task lives on the runtime
        let (handlers, manager): (Arc<dyn Handlers>, _) = if mode == Mode::CompiledIn {
            let compiled = CompiledIn {
                greeting: greeting_handlers::Ctx { word: "Hello", version: "compiled-in".into(), generation: 0 },
                shop: shop_handlers::Ctx { word: "Hello".into(), version: "compiled-in".into(), backend },
            };
            (Arc::new(compiled), None)
        } else {
            // The default work folder (memory-backed), as a host would run.
            let manager = PluginManager::builder(&dirs.0)
                .free_delay(Duration::from_millis(100))
                .extension_newer(move || ServiceExt { backend: Arc::clone(&backend) })
                .build()
                .unwrap();
            manager.load_plugins().unwrap();
            (Arc::new(PluginHandlers::new(manager.clone())), Some(manager))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(service_host::serve(listener, handlers, Arc::new(AppState::default())));
        (addr, manager)
    });

    let stop = Arc::new(AtomicBool::new(false));
    let windows: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let reloader = (mode == Mode::Reloading).then(|| {
        let (manager, stop, windows, dirs) =
            (manager.clone().unwrap(), Arc::clone(&stop), Arc::clone(&windows), dirs.clone());
        std::thread::spawn(move || {
            let mut next_v2 = true;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(RELOAD_EVERY);
                manager.set_plugin_dir(if next_v2 { &dirs.1 } else { &dirs.0 });
                next_v2 = !next_v2;
                let start = Instant::now();
                manager.reload().expect("reload accepted");
                windows.lock().unwrap().push((start, Instant::now() + WINDOW_AFTER));
            }
        })
    });

    let client = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let began = Instant::now();
    let samples: Vec<(Instant, f64, bool)> = client.block_on(async {
        let mut tasks = Vec::new();
        for index in 0..CONNECTIONS {
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut samples = Vec::new();
                let mut n = 0_u64;
                while began.elapsed() < RUN {
                    let path =
                        if n.is_multiple_of(2) { "/hello?name=bench&delay_ms=0" } else { "/quote?item=fig&qty=2" };
                    n += 1;
                    let start = Instant::now();
                    let ok = matches!(client.get(path).await, Ok((200, _)));
                    samples.push((start, start.elapsed().as_secs_f64() * 1000.0, ok));
                }
                let _ = index;
                samples
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    let elapsed = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    if let Some(reloader) = reloader {
        reloader.join().unwrap();
    }
    let windows = windows.lock().unwrap().clone();
    into.requests += samples.len() as u64;
    into.seconds += elapsed;
    into.reloads += windows.len() as u64;
    for (start, latency, ok) in samples {
        into.failures += u64::from(!ok);
        into.latencies_ms.push(latency);
        if windows.iter().any(|(from, to)| start >= *from && start <= *to) {
            into.window_latencies_ms.push(latency);
            into.window_requests += 1;
        }
    }
    into.window_seconds += windows.iter().map(|(from, to)| to.duration_since(*from).as_secs_f64()).sum::<f64>();
    drop(client);
    server.shutdown_timeout(Duration::from_secs(1));
}

fn stats(latencies: &mut [f64]) -> serde_json::Value {
    if latencies.is_empty() {
        return json!(null);
    }
    json!({
        "p50_ms": percentile(latencies, 50.0),
        "p99_ms": percentile(latencies, 99.0),
        "max_ms": percentile(latencies, 100.0),
    })
}

fn main() {
    let v1 = build_plugin_release("demo/service/plugin/svc_greeting");
    let shop = build_plugin_release("demo/service/plugin/svc_shop");
    let v2 = build_plugin_with_cargo_args("demo/service/plugin/svc_greeting", "bench-v2", false, &["--features", "v2"]);
    let temp = tempfile::tempdir().unwrap();
    let dirs = (folder(temp.path(), "v1", &[&v1, &shop]), folder(temp.path(), "v2", &[&v2, &shop]));

    let modes = [Mode::Steady, Mode::Reloading, Mode::CompiledIn];
    let mut measured: Vec<Measured> = modes.iter().map(|_| Measured::default()).collect();
    let load_before = common::loadavg();
    for _ in 0..ROUNDS {
        for (mode, into) in modes.iter().zip(measured.iter_mut()) {
            round(*mode, &dirs, into);
        }
    }

    let mut results = serde_json::Map::new();
    println!("| mode | requests/s | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (mode, m) in modes.iter().zip(measured.iter_mut()) {
        assert_eq!(m.failures, 0, "{}: {} failed requests", mode.name(), m.failures);
        let rps = m.requests as f64 / m.seconds;
        let all = stats(&mut m.latencies_ms);
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.2} |",
            mode.name(),
            rps,
            all["p50_ms"].as_f64().unwrap(),
            all["p99_ms"].as_f64().unwrap(),
            all["max_ms"].as_f64().unwrap()
        );
        let window = stats(&mut m.window_latencies_ms);
        if !window.is_null() {
            println!(
                "| … requests started within a reload window ({} reloads, {} requests) | {:.0} | {:.3} | {:.3} | {:.2} |",
                m.reloads,
                m.window_requests,
                m.window_requests as f64 / m.window_seconds,
                window["p50_ms"].as_f64().unwrap(),
                window["p99_ms"].as_f64().unwrap(),
                window["max_ms"].as_f64().unwrap()
            );
        }
        results.insert(
            format!("{mode:?}"),
            json!({ "requests": m.requests, "seconds": m.seconds, "requests_per_s": rps, "all": all,
                    "reloads": m.reloads, "window": window, "window_requests": m.window_requests }),
        );
    }
    let rps = |i: usize| measured[i].requests as f64 / measured[i].seconds;
    let p99 = |v: &serde_json::Value| v["all"]["p99_ms"].as_f64().unwrap();
    let window_p99 = results["Reloading"]["window"]["p99_ms"].as_f64().unwrap_or(f64::NAN);
    println!();
    println!("throughput, plugins ÷ compiled-in: {:.3}", rps(0) / rps(2));
    println!("p99 in reload windows ÷ steady p99: {:.2}", window_p99 / p99(&results["Steady"]));
    println!("load average before: {load_before}, after: {}", common::loadavg());
    write_results("service", &serde_json::Value::Object(results));
}
