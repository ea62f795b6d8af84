//! The service demo under load: a real HTTP host (demo/service/host as a library) serving
//! handlers from the real demo plugins, reloaded while keep-alive clients hammer it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hotswap_runtime::PluginManager;
use hotswap_tests::http_client::Client;
use hotswap_tests::{BuiltPlugin, build_plugin, build_plugin_with_cargo_args};
use service_host::{AppState, BackendServer, Handlers, PluginHandlers, ResponseFuture, Route};
use service_shared::{Backend, Request, Response, ServiceExt};
use tokio::net::TcpListener;

/// Clients (keep-alive connections, one task each).
const CLIENTS: usize = 6;
/// Reloads, alternating v1 and v2 of `svc_greeting` (and so of its importer `svc_shop`).
const RELOADS: usize = 50;
/// Requests each client sends at most: the load is bounded even if reloads stall.
const MAX_REQUESTS_PER_CLIENT: u64 = 40_000;
/// Requests each client sends after the last reload, all of which must be answered by v2.
const AFTER_LAST: u64 = 100;
/// The whole run must finish within this.
const TIME_LIMIT: Duration = Duration::from_secs(240);

struct Builds {
    v1: BuiltPlugin,
    v2: BuiltPlugin,
    shop: BuiltPlugin,
}

/// The demo's plugins: `svc_greeting` built twice (v1 says "Hello", v2, built with
/// `--features v2`, says "Howdy") and `svc_shop`. Built one after the other: the two builds
/// of `svc_greeting` share cargo's artifact.
fn builds() -> &'static Builds {
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let shop = build_plugin("demo/service/plugin/svc_shop");
        let v1 = build_plugin_with_cargo_args("demo/service/plugin/svc_greeting", "v1", true, &[]);
        let v2 = build_plugin_with_cargo_args("demo/service/plugin/svc_greeting", "v2", true, &["--features", "v2"]);
        Builds { v1, v2, shop }
    })
}

/// A plugin folder holding `greeting` and `svc_shop`.
fn folder(root: &Path, name: &str, greeting: &BuiltPlugin) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    greeting.install(&dir);
    builds().shop.install(&dir);
    dir
}

/// A running service: the host's HTTP server and backend on the current runtime.
struct Service {
    addr: SocketAddr,
    manager: PluginManager,
    app: Arc<AppState>,
    handlers: Arc<Counts>,
}

/// What the plugin handlers' futures did, counted by [`Counting`].
#[derive(Debug, Default)]
struct Counts {
    /// Polled once: the handler runs inside the plugin (a sleeping one waits there).
    started: AtomicU64,
    /// Ran to their answer.
    finished: AtomicU64,
    /// Dropped, finished or not.
    dropped: AtomicU64,
}

/// The demo's [`PluginHandlers`], each future counted.
struct Counting {
    inner: PluginHandlers,
    counts: Arc<Counts>,
}

impl Handlers for Counting {
    fn handle(&self, route: Route, request: Request) -> ResponseFuture {
        let inner = self.inner.handle(route, request);
        Box::pin(Counted { inner, counts: Arc::clone(&self.counts), polled: false })
    }
}

struct Counted {
    inner: ResponseFuture,
    counts: Arc<Counts>,
    polled: bool,
}

impl Future for Counted {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = &mut *self;
        let poll = this.inner.as_mut().poll(cx);
        if !std::mem::replace(&mut this.polled, true) {
            this.counts.started.fetch_add(1, Ordering::SeqCst);
        }
        if poll.is_ready() {
            this.counts.finished.fetch_add(1, Ordering::SeqCst);
        }
        poll
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits (on the runtime's timer) until `done` holds, at most 30 s.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start_service(plugins: &Path, work: &Path, free_delay: Duration) -> Service {
    let backend_server = BackendServer::start().await.unwrap();
    let backend = Arc::new(Backend::new(backend_server.addr));
    // On disk, not in memory: each handler library a tokio worker thread has polled stays
    // mapped until that thread exits (tokio's thread-local context in the plugin registers a
    // destructor; see the guide's "Async plugins"), and debug builds are large.
    let manager = PluginManager::builder(plugins)
        .work_root(work)
        .free_delay(free_delay)
        .extension_newer(move || ServiceExt { backend: Arc::clone(&backend) })
        .build()
        .unwrap();
    manager.load_plugins().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Arc::new(AppState::default());
    let counts = Arc::new(Counts::default());
    let handlers = Arc::new(Counting { inner: PluginHandlers::new(manager.clone()), counts: Arc::clone(&counts) });
    tokio::spawn(service_host::serve(listener, handlers, Arc::clone(&app)));
    Service { addr, manager, app, handlers: counts }
}

/// `connection N` as the host numbered the connection, read from a handler's answer.
fn connection_of(body: &str) -> u64 {
    let rest = &body[body.find("connection ").expect("the answer names its connection") + "connection ".len()..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    requests: u64,
    failures: Vec<String>,
    v1: u64,
    v2: u64,
    /// Answers to requests sent after the last reload was published that were not v2.
    old_after_last: Vec<String>,
    /// The host's number of this client's connection, from every answer.
    connections: Vec<u64>,
    requests_before_first_reload: u64,
    requests_after_last_reload: u64,
}

#[test]
fn fifty_reloads_under_keep_alive_load_fail_no_request() {
    let builds = builds();
    let temp = tempfile::tempdir().unwrap();
    let dir_v1 = folder(temp.path(), "v1", &builds.v1);
    let dir_v2 = folder(temp.path(), "v2", &builds.v2);
    let work = hotswap_tests::workspace_root().join("target").join(format!("service-work-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = Instant::now();
    let run = async {
        // Generation 1 is v2, so that after 50 alternating reloads v2 serves again.
        let service = start_service(&dir_v2, &work, Duration::from_millis(20)).await;
        let reloads_started = Arc::new(AtomicBool::new(false));
        let reloads_done = Arc::new(AtomicBool::new(false));
        let warmed = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        for index in 0..CLIENTS {
            let (started, done, warmed) =
                (Arc::clone(&reloads_started), Arc::clone(&reloads_done), Arc::clone(&warmed));
            let addr = service.addr;
            clients.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut seen = Seen::default();
                let mut after_last = 0;
                while seen.requests < MAX_REQUESTS_PER_CLIENT && after_last < AFTER_LAST {
                    let sent_after_last = done.load(Ordering::SeqCst);
                    let sent_before_first = !started.load(Ordering::SeqCst);
                    // Both handlers: the sleeping one and the one talking to the backend.
                    let path = if seen.requests % 2 == 0 {
                        format!("/hello?name=c{index}&delay_ms={}", seen.requests % 3)
                    } else {
                        "/quote?item=pear&qty=2".to_string()
                    };
                    seen.requests += 1;
                    match client.get(&path).await {
                        Ok((200, body)) => {
                            seen.connections.push(connection_of(&body));
                            let v2 = body.starts_with("Howdy");
                            match (body.starts_with("Hello"), v2) {
                                (true, _) => seen.v1 += 1,
                                (_, true) => seen.v2 += 1,
                                _ => seen.failures.push(format!("{path}: neither v1 nor v2: {body}")),
                            }
                            if sent_after_last && !v2 {
                                seen.old_after_last.push(body);
                            }
                        }
                        Ok((status, body)) => seen.failures.push(format!("{path}: status {status}: {body}")),
                        Err(error) => seen.failures.push(format!("{path}: {error}")),
                    }
                    if sent_before_first {
                        seen.requests_before_first_reload += 1;
                        if seen.requests_before_first_reload == 5 {
                            warmed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if sent_after_last {
                        after_last += 1;
                        seen.requests_after_last_reload += 1;
                    }
                }
                let broken = client.broken();
                (seen, broken)
            }));
        }
        // Reload only once every client's connection is open and has been answered.
        while warmed.load(Ordering::SeqCst) < CLIENTS as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let manager = service.manager.clone();
        let (started_flag, done_flag) = (Arc::clone(&reloads_started), Arc::clone(&reloads_done));
        let reloader = tokio::task::spawn_blocking(move || {
            started_flag.store(true, Ordering::SeqCst);
            let mut generations = Vec::new();
            for reload in 1..=RELOADS {
                // Odd reloads publish v1, even ones v2: the 50th publishes v2.
                manager.set_plugin_dir(if reload % 2 == 1 { &dir_v1 } else { &dir_v2 });
                let report = manager.reload().unwrap_or_else(|e| panic!("reload {reload} refused: {e}"));
                generations.push(report.generation);
                std::thread::sleep(Duration::from_millis(10));
            }
            done_flag.store(true, Ordering::SeqCst);
            generations
        });
        let generations = reloader.await.unwrap();
        let mut results = Vec::new();
        for client in clients {
            results.push(client.await.unwrap());
        }
        (generations, results, service.app.connections.load(Ordering::SeqCst), service.manager.reload_count())
    };
    let outcome = runtime.block_on(async { tokio::time::timeout(TIME_LIMIT, run).await });
    let (generations, results, connections, reload_count) =
        outcome.unwrap_or_else(|_| panic!("the load run did not finish within {TIME_LIMIT:?}"));
    let elapsed = started.elapsed();
    assert_eq!(generations.len(), RELOADS);
    assert_eq!(*generations.last().unwrap(), 1 + RELOADS as u64);
    assert_eq!(reload_count, RELOADS as u64);

    let total: u64 = results.iter().map(|(seen, _)| seen.requests).sum();
    let (v1, v2): (u64, u64) = results.iter().fold((0, 0), |(a, b), (seen, _)| (a + seen.v1, b + seen.v2));
    eprintln!(
        "{total} requests over {CLIENTS} keep-alive connections in {elapsed:.1?} with {RELOADS} reloads: {v1} answered by v1, {v2} by v2"
    );
    for (index, (seen, broken)) in results.iter().enumerate() {
        assert!(
            seen.failures.is_empty(),
            "client {index}: {} failed requests, first: {:?}",
            seen.failures.len(),
            seen.failures.first()
        );
        assert_eq!(broken, &None, "client {index}: its connection was reset");
        assert!(
            seen.old_after_last.is_empty(),
            "client {index}: answered by v1 after the last swap: {:?}",
            seen.old_after_last.first()
        );
        assert_eq!(seen.v1 + seen.v2, seen.requests, "client {index}: every answer is from v1 or v2");
        // The same connection, opened before the first reload, served every request.
        let first = seen.connections[0];
        assert!(seen.connections.iter().all(|&c| c == first), "client {index} was served on more than one connection");
        assert!(
            seen.requests_before_first_reload >= 5 && seen.requests_after_last_reload == AFTER_LAST,
            "client {index}: {seen:?}"
        );
    }
    assert_eq!(connections, CLIENTS as u64, "no client had to open a second connection");
    assert!(v1 > 0 && v2 > 0, "both builds answered ({v1} v1, {v2} v2)");
    // Reported, not asserted: how many handler libraries the process still maps (each one a
    // tokio worker thread has polled stays mapped while that thread lives; see the guide).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut mapped: Vec<&str> =
        maps.lines().filter_map(|l| l.split_whitespace().nth(5)).filter(|p| p.contains("svc_")).collect();
    mapped.sort_unstable();
    mapped.dedup();
    eprintln!("after {RELOADS} reloads the process maps {} copies of the two handler libraries", mapped.len());
    let _ = std::fs::remove_dir_all(&work);
}

/// Runs `body` on a fresh two-worker runtime with a service serving `greeting` and svc_shop,
/// free delay zero: a replaced generation is freed as soon as nothing holds it.
fn with_service<F, Fut>(body: F)
where
    F: FnOnce(Service, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let builds = builds();
    let temp = tempfile::tempdir().unwrap();
    let dir_v1 = folder(temp.path(), "v1", &builds.v1);
    let dir_v2 = folder(temp.path(), "v2", &builds.v2);
    let work = temp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let service = start_service(&dir_v1, &work, Duration::ZERO).await;
        tokio::time::timeout(Duration::from_secs(60), body(service, dir_v2))
            .await
            .expect("the test's requests finished in time");
    });
}

#[test]
fn a_request_in_flight_during_a_reload_finishes_on_the_old_code() {
    with_service(|service, dir_v2| async move {
        let mut slow = Client::connect(service.addr).await;
        let mut other = Client::connect(service.addr).await;
        // v1's handler sleeps 4 s inside the plugin, on the host's timer.
        let in_flight = tokio::spawn(async move { slow.get("/hello?name=slow&delay_ms=4000").await });
        let counts = Arc::clone(&service.handlers);
        wait_until("the slow request sleeps in v1's handler", || counts.started.load(Ordering::SeqCst) == 1).await;
        let manager = service.manager.clone();
        let report = tokio::task::spawn_blocking(move || {
            manager.set_plugin_dir(&dir_v2);
            manager.reload()
        })
        .await
        .unwrap()
        .expect("reload to v2 accepted");
        assert_eq!(report.generation, 2);
        // The next request runs the new code while the slow one still sleeps in v1's library,
        // whose generation its future keeps alive (the free delay is zero).
        let (status, body) = other.get("/hello?name=next").await.unwrap();
        assert_eq!(status, 200);
        assert!(body.starts_with("Howdy, next!") && body.contains("generation 2"), "{body}");
        assert!(!in_flight.is_finished(), "the slow request was still in flight during the reload");
        let (status, body) = in_flight.await.unwrap().unwrap();
        assert_eq!(status, 200);
        assert!(body.starts_with("Hello, slow!") && body.contains("generation 1"), "finished on the old code: {body}");
    });
}

#[test]
fn a_panicking_handler_is_a_500_for_that_request_only() {
    with_service(|service, _| async move {
        let mut client = Client::connect(service.addr).await;
        for round in 0..3 {
            // Panics inside the plugin after awaiting the timer.
            let (status, body) = client.get("/fail").await.unwrap();
            assert_eq!(status, 500, "round {round}");
            assert!(body.contains("svc_shop") && body.contains("fails on purpose"), "{body}");
            // Same connection, same workers: the service goes on, and so does the backend.
            let (status, body) = client.get("/quote?item=fig&qty=3").await.unwrap();
            assert_eq!((status, body.starts_with("Hello! 3 x fig = 360 cents")), (200, true), "{body}");
        }
        assert_eq!(client.broken(), None);
        assert_eq!(service.app.connections.load(Ordering::SeqCst), 1);
        assert_eq!(service.app.server_errors.load(Ordering::SeqCst), 3);
        let (status, body) = client.get("/quote?item=kiwi").await.unwrap();
        assert_eq!((status, body.as_str()), (404, "no price for kiwi\n"));
    });
}

#[test]
fn a_client_that_goes_away_mid_request_drops_the_plugin_future_safely() {
    with_service(|service, dir_v2| async move {
        let addr = service.addr;
        let counts = Arc::clone(&service.handlers);
        // Ten requests sleeping in v1's handler (10 s, its longest), whose clients then disconnect:
        // hyper drops each request's future, which drops the plugin's future inside the plugin.
        let mut gone = Vec::new();
        for index in 0..10 {
            gone.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let slow = format!("/hello?name=gone{index}&delay_ms=10000");
                client.get(&slow).await
            }));
        }
        wait_until("the ten requests sleep in v1's handler", || counts.started.load(Ordering::SeqCst) == 10).await;
        let old = Arc::downgrade(&service.manager.current().unwrap());
        for task in gone {
            // The client goes away mid-request: its task, connection and all, is dropped.
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
        }
        // Their generation is replaced (free delay zero) and released once the dropped
        // futures let go of it.
        let manager = service.manager.clone();
        tokio::task::spawn_blocking(move || {
            manager.set_plugin_dir(&dir_v2);
            manager.reload()
        })
        .await
        .unwrap()
        .expect("reload to v2 accepted");
        wait_until("every abandoned handler future is dropped", || counts.dropped.load(Ordering::SeqCst) == 10).await;
        assert_eq!(counts.finished.load(Ordering::SeqCst), 0, "no abandoned handler ran to its answer");
        wait_until("generation 1 is released", || old.upgrade().is_none()).await;
        wait_until("the connections are closed", || service.app.open_connections.load(Ordering::SeqCst) == 0).await;
        let mut client = Client::connect(addr).await;
        let (status, body) = client.get("/hello?name=after").await.unwrap();
        assert!(status == 200 && body.starts_with("Howdy, after!") && body.contains("generation 2"), "{body}");
        assert_eq!(service.app.server_errors.load(Ordering::SeqCst), 0);
    });
}
