//! The scenarios of `tests/tests/shared_axum.rs`, each printing one line per step for the
//! test to compare. Generation `g` runs build v1 when `g` is odd, v2 when even.

use std::sync::Arc;
use std::time::Duration;

use crate::Host;
use crate::client::{self, Next};

pub async fn run(scenario: &str, host: &Arc<Host>) -> bool {
    match scenario {
        "spawn" => spawn(host).await,
        "sse" => sse(host).await,
        "ws" => ws(host).await,
        "panics" => panics(host).await,
        "unmap" => unmap(host).await,
        "static" => static_body(host).await,
        "axum" => axum_code(host).await,
        "drain" => drain(host).await,
        "kept" => crate::detached::kept_after_unmap(host).await,
        "wrong-state" => crate::detached::wrong_state(host).await,
        "bench" => crate::bench::run(host).await,
        "router-fn" => crate::guarded::router_fn(host).await,
        "router-drop" => crate::guarded::router_drop(host).await,
        "prepared" => crate::guarded::prepared(host).await,
        "reason" => crate::guarded::reason(host).await,
        "upload" => crate::guarded::upload(host).await,
        "layers" => crate::guarded::layers(host).await,
        "tasks" => crate::guarded::tasks(host).await,
        other => {
            println!("unknown scenario {other}");
            false
        }
    }
}

async fn serving(host: &Host) -> String {
    let (status, body) = client::get(host.addr, "/build").await;
    format!("{status} {body}")
}

pub async fn event(host: &Host) -> Option<String> {
    let mut events = host.events.lock().await;
    tokio::time::timeout(Duration::from_secs(20), events.recv()).await.ok().flatten()
}

/// (a) A raw `tokio::spawn` task started by a handler sleeps past three reloads and finishes
/// on the code that spawned it.
async fn spawn(host: &Arc<Host>) -> bool {
    let (status, body) = client::get(host.addr, "/spawn?ms=1500&id=1").await;
    println!("SPAWN {status} {body}");
    for round in 1..=3 {
        let generation = host.reload().await;
        println!(
            "RELOAD {round} generation={generation} serving={} gen1_mapped={}",
            serving(host).await,
            host.mapped(1)
        );
    }
    let Some(done) = event(host).await else {
        println!("TASK did not finish");
        return false;
    };
    println!("TASK {done}");
    println!("AFTER gen1_mapped={}", host.mapped(1));
    for line in host.logs.matching("task finished") {
        println!("{line}");
    }
    true
}

/// (b) An SSE stream of 100 events spanning 10 reloads arrives complete and in order from the
/// generation that started it; new requests get the newest code.
async fn sse(host: &Arc<Host>) -> bool {
    let (status, mut stream) = client::events(host.addr, "/sse?n=100").await;
    println!("SSE {status}");
    let mut received = Vec::new();
    let mut serving_after = Vec::new();
    // 5 events, then 10 times (reload, 9 events), then the last 5: every reload happens with
    // the stream open and events still to come.
    for round in 0..=11 {
        let count = match round {
            0 | 11 => 5,
            _ => {
                host.reload().await;
                serving_after.push(serving(host).await);
                9
            }
        };
        host.state.gate.add_permits(count);
        for _ in 0..count {
            match stream.next().await {
                Next::Event(data) => received.push(data),
                other => {
                    println!("SSE broke after {} events: {other:?}", received.len());
                    return false;
                }
            }
        }
    }
    let expected: Vec<String> = (0..100).map(|seq| format!("v1 gen=1 seq={seq}")).collect();
    if received == expected {
        println!("SSE 100 events in order from v1 gen=1");
    } else {
        println!("SSE events differ: {received:?}");
    }
    println!("SSE then {:?}", stream.next().await);
    println!("SERVING {}", serving_after.join(", "));
    let (status, mut fresh) = client::events(host.addr, "/sse?n=2&ungated").await;
    println!("NEW SSE {status} {:?} {:?} {:?}", fresh.next().await, fresh.next().await, fresh.next().await);
    true
}

/// (c) WebSockets opened before each of 10 reloads keep echoing on their generation until
/// closed; new ones get the newest code.
async fn ws(host: &Arc<Host>) -> bool {
    let mut sockets = Vec::new();
    for round in 0..=10 {
        let mut socket = client::websocket(host.addr, "/ws").await;
        let first = client::ask(&mut socket, "hello").await;
        sockets.push((first, socket));
        if round < 10 {
            host.reload().await;
        }
    }
    for (index, (first, socket)) in sockets.iter_mut().enumerate() {
        let again = client::ask(socket, "again").await;
        println!("WS {} opened: {first}; after 10 reloads: {again}", index + 1);
    }
    for (_, mut socket) in sockets {
        socket.close(None).await.expect("close");
    }
    let mut socket = client::websocket(host.addr, "/ws").await;
    println!("WS new: {}", client::ask(&mut socket, "hello").await);
    let mapped: Vec<bool> = (1..=11).map(|g| host.mapped(g)).collect();
    println!("MAPPED all generations that upgraded a socket: {}", mapped.iter().all(|m| *m));
    true
}

/// (d) A panicking handler, spawned task and stream are contained and logged with plugin and
/// generation; the host goes on serving.
async fn panics(host: &Arc<Host>) -> bool {
    let (status, _) = client::get(host.addr, "/panic").await;
    println!("PANIC handler status={status}");
    let (status, body) = client::get(host.addr, "/panic-task").await;
    println!("PANIC task {status} {body}");
    let (status, mut stream) = client::events(host.addr, "/panic-stream").await;
    let mut got = Vec::new();
    let end = loop {
        match stream.next().await {
            Next::Event(data) => got.push(data),
            other => break other,
        }
    };
    println!("PANIC stream status={status} events={got:?} then {end:?}");
    // A stream that panics at once: `PluginRouter` takes a body's first frame with the
    // response, so nothing is sent yet and the answer is a 500.
    let (status, body) = client::get(host.addr, "/panic-first").await;
    println!("PANIC first frame status={status} {body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("AFTER {}", serving(host).await);
    let generation = host.reload().await;
    println!("RELOAD generation={generation} serving={}", serving(host).await);
    for line in host.logs.matching("panic") {
        println!("{line}");
    }
    true
}

/// (e) A generation with a live stream or task is not unmapped; once the stream ends it is
/// (a stream pins nothing for the process), while a library that spawned a task stays mapped
/// for the process.
async fn unmap(host: &Arc<Host>) -> bool {
    let (status, mut stream) = client::events(host.addr, "/sse?n=3").await;
    host.state.gate.add_permits(1);
    println!("STREAM {status} {:?}", stream.next().await);
    host.reload().await;
    println!("SERVING {}", serving(host).await);
    host.reload().await;
    println!("SERVING {}", serving(host).await);
    let gen2_gone = !host.wait_mapped(2, false).await;
    println!("LIVE STREAM gen1_mapped={} gen2_unmapped={gen2_gone}", host.mapped(1));
    host.state.gate.add_permits(2);
    println!("STREAM {:?} {:?} {:?}", stream.next().await, stream.next().await, stream.next().await);
    drop(stream);
    println!("STREAM ENDED gen1_unmapped={}", !host.wait_mapped(1, false).await);

    let (status, body) = client::get(host.addr, "/spawn?ms=800&id=3").await;
    println!("SPAWN {status} {body}");
    host.reload().await;
    println!("SERVING {}", serving(host).await);
    println!("LIVE TASK gen3_mapped={}", host.mapped(3));
    println!("TASK {:?}", event(host).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("TASK ENDED gen3_mapped={} (pinned for the process)", host.mapped(3));
    true
}

/// A body in the library's read-only data (`Bytes::from_static`), still queued in hyper for a
/// slow client when its generation is replaced and unmapped, arrives whole: it left the
/// plugin as a copy.
async fn static_body(host: &Arc<Host>) -> bool {
    let (length, whole) = client::get_slowly(host.addr, "/static", async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        host.reload().await;
        println!("RELOADED serving={} gen1_unmapped={}", serving(host).await, !host.wait_mapped(1, false).await);
    })
    .await;
    println!("STATIC {length} bytes whole={whole}");
    true
}

/// Ordinary axum code in the plugin: `Path`, `Query`, `Json` in and out, a middleware layer,
/// the plugin router's own 404, next to the host's own route; after a reload, the new code.
async fn axum_code(host: &Arc<Host>) -> bool {
    let show = |(status, by, body): (u16, String, String)| format!("{status} [{by}] {body}");
    println!("ITEM {}", show(client::call(host.addr, "GET", "/items/7?q=x", "").await));
    println!("ECHO {}", show(client::call(host.addr, "POST", "/echo", r#"{"a":[1,2]}"#).await));
    let (status, by, _) = client::call(host.addr, "POST", "/echo", "{not json").await;
    println!("BAD JSON {status} [{by}]");
    println!("MISSING {}", show(client::call(host.addr, "GET", "/missing", "").await));
    println!("HOST {}", show(client::call(host.addr, "GET", "/host", "").await));
    host.reload().await;
    println!("ITEM {}", show(client::call(host.addr, "GET", "/items/8", "").await));
    for line in host.logs.matching("item") {
        println!("{line}");
    }
    true
}

/// A long-lived connection moves on: a WebSocket of generation 1 is closed by its code with
/// 1012 `reconnect` after its generation is replaced (the plugin's `on_free` fires), and the
/// client's new socket is served by the new generation.
async fn drain(host: &Arc<Host>) -> bool {
    let mut socket = client::websocket(host.addr, "/ws-drain").await;
    println!("WS {}", client::ask(&mut socket, "hello").await);
    // Timed from before the reload: `on_free` (which starts the drain) runs inside it, so on a
    // loaded machine a reload slower than the drain would otherwise look like no drain at all.
    let started = std::time::Instant::now();
    host.reload().await;
    let close = client::closed(&mut socket).await;
    println!("CLOSED {close} after_drain={}", started.elapsed() >= Duration::from_millis(100));
    let mut socket = client::websocket(host.addr, "/ws-drain").await;
    println!("RECONNECTED {}", client::ask(&mut socket, "hello").await);
    true
}
