//! The service demo under load (issue 23 §4): its axum host (`demo/service`, on the shared
//! route) runs as a real process serving the real demo plugins, and is reloaded 50 times,
//! alternating two builds of `svc_greeting` ("Hello" and "Howdy"), while keep-alive HTTP
//! clients, server-sent-event clients and WebSocket clients use it at the same time. The host
//! frees a replaced generation as soon as nothing holds it (`--free-delay-ms 0`), so a stream
//! or socket whose code was not kept would break.
//!
//! Generation `g` runs "Hello" (build v1) when `g` is odd and "Howdy" (v2) when even; every
//! answer of `svc_greeting` names its word and the generation whose library copy made it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotswap_runtime::{ControlRequest, ControlResponse, send_request};
use hotswap_tests::keep_alive::KeepAliveClient;
use hotswap_tests::service_process::{ServiceProcess, build_service_host, build_service_plugin};
use hotswap_tests::stream_clients::{WebSocket, sse};

const HTTP_CLIENTS: usize = 3;
const SSE_CLIENTS: usize = 2;
const WS_CLIENTS: usize = 2;
const RELOADS: u64 = 50;
/// Between reloads: streams and sockets (about 1 s each) span several reloads.
const RELOAD_GAP: Duration = Duration::from_millis(150);
/// Events per stream, and the pause between two.
const SSE_EVENTS: usize = 20;
const SSE_MS: u64 = 40;
/// Messages per WebSocket, and the pause between two.
const WS_MESSAGES: usize = 25;
const WS_GAP: Duration = Duration::from_millis(40);
/// Requests each HTTP client sends after the last reload, all to be answered by it.
const AFTER_LAST: usize = 20;

/// The word of generation `g`'s build.
fn word(generation: u64) -> &'static str {
    if generation % 2 == 1 { "Hello" } else { "Howdy" }
}

/// The `<word> gen=<g>` a `svc_greeting` answer names, checked against what the build of that
/// generation says, and against `at_least` (the newest generation when the request was sent).
fn generation_in(text: &str, at_least: u64) -> Result<u64, String> {
    let (before, after) = text.split_once(" gen=").ok_or_else(|| format!("no generation in {text:?}"))?;
    let generation: u64 = after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad generation in {text:?}"))?;
    if !before.ends_with(word(generation)) {
        return Err(format!("generation {generation} answered with another build's word: {text:?}"));
    }
    if generation < at_least {
        return Err(format!("answered by generation {generation}, sent after generation {at_least} served: {text:?}"));
    }
    Ok(generation)
}

/// What the clients saw, shared.
#[derive(Default)]
struct Tally {
    failures: Mutex<Vec<String>>,
    failed: AtomicU64,
    requests: AtomicU64,
    streams: AtomicU64,
    events: AtomicU64,
    /// Streams (sockets) still running on their generation after a newer one served.
    streams_spanning: AtomicU64,
    sockets: AtomicU64,
    echoes: AtomicU64,
    sockets_spanning: AtomicU64,
}

impl Tally {
    /// Records a failure (the first 100 in full, then only counted).
    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 100 {
            failures.push(what);
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

struct Load {
    addr: SocketAddr,
    /// The newest generation the reloader saw accepted.
    published: AtomicU64,
    stop: AtomicBool,
    tally: Tally,
}

async fn http_client(load: Arc<Load>, index: usize) {
    let mut client = KeepAliveClient::new(load.addr);
    let mut after = 0;
    let mut sent = 0usize;
    while after < AFTER_LAST {
        let last = load.stop.load(Ordering::SeqCst);
        if last {
            after += 1;
        }
        let newest = load.published.load(Ordering::SeqCst);
        let path = match sent % 4 {
            0 => format!("/hello?name=c{index}&delay_ms={}", sent % 5),
            1 => "/json".to_string(),
            // Background work: a raw `tokio::spawn` from plugin code, which logs when it ends.
            2 if sent % 40 == 2 => "/spawn?ms=100".to_string(),
            _ => "/shop/quote?item=pear&qty=2".to_string(),
        };
        sent += 1;
        load.tally.requests.fetch_add(1, Ordering::Relaxed);
        let answer = match client.get(&path).await {
            Ok(answer) if answer.status == 200 => answer,
            Ok(answer) => {
                load.tally.fail(format!("client {index} {path}: {} {}", answer.status, answer.body));
                // Not a busy loop when the host is gone.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(failure) => {
                load.tally.fail(format!("client {index} {path}: {failure:?}"));
                // Not a busy loop when the host is gone.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if path.starts_with("/shop") {
            if !answer.body.starts_with("2 x pear = 110 cents") {
                load.tally.fail(format!("client {index} {path}: {}", answer.body));
            }
        } else {
            let text = if path == "/json" {
                // {"generation":N,"greeting":"W, world!","word":"W"}
                let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
                format!("{} gen={}", json["word"].as_str().unwrap_or("?"), json["generation"])
            } else {
                answer.body
            };
            match generation_in(&text, newest) {
                Ok(generation) if last && generation != RELOADS + 1 => {
                    load.tally.fail(format!("client {index}: after the last reload, generation {generation} answered"))
                }
                Ok(_) => {}
                Err(e) => load.tally.fail(format!("client {index} {path}: {e}")),
            }
        }
    }
}

async fn sse_client(load: Arc<Load>, index: usize) {
    while !load.stop.load(Ordering::SeqCst) {
        let newest = load.published.load(Ordering::SeqCst);
        load.tally.streams.fetch_add(1, Ordering::Relaxed);
        let events = match sse(load.addr, &format!("/sse?n={SSE_EVENTS}&ms={SSE_MS}")).await {
            Ok(events) => events,
            Err(e) => {
                load.tally.fail(format!("stream client {index}: {e}"));
                // Not a busy loop when the host is gone.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        load.tally.events.fetch_add(events.len() as u64, Ordering::Relaxed);
        let check = || -> Result<u64, String> {
            if events.len() != SSE_EVENTS {
                return Err(format!("{} of {SSE_EVENTS} events: {events:?}", events.len()));
            }
            let generation = generation_in(&events[0], newest)?;
            for (seq, event) in events.iter().enumerate() {
                let expected = format!("seq={seq} {} gen={generation}", word(generation));
                if *event != expected {
                    return Err(format!("event {seq} is {event:?}, not {expected:?}: {events:?}"));
                }
            }
            Ok(generation)
        };
        match check() {
            Ok(generation) if load.published.load(Ordering::SeqCst) > generation => {
                load.tally.streams_spanning.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => load.tally.fail(format!("stream client {index}: {e}")),
        }
    }
}

async fn ws_client(load: Arc<Load>, index: usize) {
    let mut round = 0;
    while !load.stop.load(Ordering::SeqCst) {
        round += 1;
        let newest = load.published.load(Ordering::SeqCst);
        load.tally.sockets.fetch_add(1, Ordering::Relaxed);
        let run = async {
            let mut socket = WebSocket::open(load.addr, "/ws").await?;
            let mut generation = None;
            for n in 0..WS_MESSAGES {
                let text = format!("c{index}-{round}-{n}");
                let answer = socket.echo(&text).await.map_err(|e| format!("message {n}: {e}"))?;
                let (me, echoed) = answer.split_once(": ").ok_or_else(|| format!("answer {answer:?}"))?;
                let on = generation_in(me, newest)?;
                if echoed != text || generation.is_some_and(|g| g != on) {
                    return Err(format!("message {n}: {answer:?} (first answered by generation {generation:?})"));
                }
                generation = Some(on);
                load.tally.echoes.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(WS_GAP).await;
            }
            socket.close().await?;
            Ok::<_, String>(generation.unwrap_or(0))
        };
        match run.await {
            Ok(generation) if load.published.load(Ordering::SeqCst) > generation => {
                load.tally.sockets_spanning.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                load.tally.fail(format!("WebSocket client {index}: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[test]
fn fifty_reloads_under_http_sse_and_websocket_load_lose_nothing() {
    let host = build_service_host("a");
    let shop = build_service_plugin("svc_shop", "v1", &[]);
    let v1 = build_service_plugin("svc_greeting", "v1", &[]);
    let v2 = build_service_plugin("svc_greeting", "v2", &["--features", "v2"]);
    let temp = tempfile::tempdir().unwrap();
    let plugins = temp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    shop.install(&plugins);
    v1.install(&plugins);
    let socket = temp.path().join("control.sock");
    let started = Instant::now();
    let mut service =
        ServiceProcess::start_with_env(&host, &plugins, &socket, "127.0.0.1:0", 5.0, &[], &["--free-delay-ms", "0"]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let load = Arc::new(Load {
        addr: service.addr,
        published: AtomicU64::new(1),
        stop: AtomicBool::new(false),
        tally: Tally::default(),
    });
    let mut clients = Vec::new();
    for index in 0..HTTP_CLIENTS {
        clients.push(runtime.spawn(http_client(Arc::clone(&load), index)));
    }
    for index in 0..SSE_CLIENTS {
        clients.push(runtime.spawn(sse_client(Arc::clone(&load), index)));
    }
    for index in 0..WS_CLIENTS {
        clients.push(runtime.spawn(ws_client(Arc::clone(&load), index)));
    }
    std::thread::sleep(Duration::from_millis(500));

    let mut reload_ms = Vec::new();
    for reload in 1..=RELOADS {
        let generation = reload + 1;
        // The newest file of the plugin is loaded (v1 again: the same file, made newest).
        if generation % 2 == 0 { &v2 } else { &v1 }.install_newest(&plugins);
        let answer = match send_request(&socket, &ControlRequest::Reload, Duration::from_secs(60)) {
            Ok(answer) => answer,
            Err(e) => {
                let exited = service.has_exited(service.pid());
                load.tally.fail(format!("reload {reload}: {e} (the host has exited: {exited})"));
                break;
            }
        };
        let ControlResponse::Accepted { generation: accepted, total_ms, .. } = answer else {
            panic!("reload {reload} was not accepted: {answer:?}");
        };
        assert_eq!(accepted, generation, "reload {reload}");
        reload_ms.push(total_ms);
        load.published.store(generation, Ordering::SeqCst);
        // A new request gets the newest code.
        match runtime.block_on(KeepAliveClient::new(service.addr).get("/hello?name=new")) {
            Ok(answer)
                if answer.body == format!("{}, new! [{} gen={generation}]\n", word(generation), word(generation)) => {}
            other => load.tally.fail(format!("a new request after reload {reload}: {other:?}")),
        }
        std::thread::sleep(RELOAD_GAP);
    }
    // Every stream and socket open now finishes; the HTTP clients send their last requests.
    std::thread::sleep(Duration::from_millis(300));
    load.stop.store(true, Ordering::SeqCst);
    for client in clients {
        runtime.block_on(client).unwrap();
    }
    let elapsed = started.elapsed();
    let tally = &load.tally;
    let failures = tally.failures.lock().unwrap();
    let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
    reload_ms.sort_by(f64::total_cmp);
    let median = reload_ms.get(reload_ms.len() / 2).copied().unwrap_or(f64::NAN);
    let longest = reload_ms.last().copied().unwrap_or(f64::NAN);
    eprintln!(
        "{} reloads (median {:.1} ms, longest {:.1} ms) in {:.1} s: {} requests, {} event streams ({} events, {} \
         outlived their generation), {} WebSockets ({} echoes, {} outlived their generation), {} failed",
        reload_ms.len(),
        median,
        longest,
        elapsed.as_secs_f64(),
        count(&tally.requests),
        count(&tally.streams),
        count(&tally.events),
        count(&tally.streams_spanning),
        count(&tally.sockets),
        count(&tally.echoes),
        count(&tally.sockets_spanning),
        count(&tally.failed)
    );
    assert!(failures.is_empty(), "{} failures, the first:\n{}", count(&tally.failed), failures.join("\n"));
    assert_eq!(reload_ms.len() as u64, RELOADS);
    // The load was real: streams and sockets ran across reloads, on the code that started them.
    assert!(count(&tally.streams_spanning) >= 10, "streams that outlived their generation");
    assert!(count(&tally.sockets_spanning) >= 10, "sockets that outlived their generation");
    assert!(count(&tally.requests) >= 500, "requests");
    // The host served to the end: its own route answers.
    let stats = runtime.block_on(KeepAliveClient::new(service.addr).get("/stats")).unwrap();
    assert!(stats.body.contains("server_errors 0"), "{}", stats.body);
    // The background work spawned by plugin code ran to its end and logged, through the host's
    // subscriber, inside the span of the plugin and generation that spawned it.
    let line = service.wait_for_line("svc_greeting: background work done", Duration::from_secs(5));
    assert!(line.contains("plugin{name=svc_greeting generation="), "{line}");
}
