//! Scenarios of what surrounds the plugin's handlers: its router function (slow, panicking),
//! its router's drop, a custom reason phrase, a request body streamed into the plugin across a
//! reload, host tower layers around `PluginRouter`, and the live tasks in the reload report.
//! Each serves its own host router on a listener of its own where it needs one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use hotswap_axum::PluginRouter;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::Host;
use crate::client;

/// Serves `app` on a new loopback listener.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn router(host: &Host) -> PluginRouter<shared_axum::AppState> {
    PluginRouter::with_state(host.manager.clone(), "web", host.state.clone())
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = client::get(addr, path).await;
    format!("{status} {body}")
}

/// `GET path`: the response (head and whole body).
async fn fetch(addr: SocketAddr, path: &str) -> (hyper::http::response::Parts, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::get(path).header("host", addr.to_string()).body(Empty::<Bytes>::new()).unwrap();
    let (head, body) = sender.send_request(request).await.expect("response").into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// A slow router function (of a second `PluginRouter`, with a 500 ms router timeout) runs on a
/// thread of its own: while it sleeps 3 s, two requests waiting for it keep no runtime worker
/// (the host has two), a request to the first router is answered before it returns, and the
/// waiting requests answer 503 naming plugin and generation; once it returns its router
/// serves. A panicking router function answers 500 naming plugin and generation, and the next
/// request asks again.
pub async fn router_fn(host: &Arc<Host>) -> bool {
    let app = Router::new()
        .nest_service("/first", router(host))
        .nest_service("/second", router(host).router_timeout(Duration::from_millis(500)))
        .nest_service("/third", router(host));
    let addr = serve(app).await;
    println!("FIRST {}", get(addr, "/first/build").await);
    println!("ARM {}", get(addr, "/first/arm?router_ms=3000").await);
    let waiting: Vec<_> = (0..2).map(|_| tokio::spawn(get(addr, "/second/build"))).collect();
    // Let both requests reach the host before the next one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = get(addr, "/first/build").await;
    let returned = host.events.lock().await.try_recv().ok();
    println!("FIRST while the router function sleeps: {first}; it returned before: {returned:?}");
    for request in waiting {
        println!("WAITED {}", request.await.unwrap());
    }
    println!("PAST THE TIMEOUT {}", get(addr, "/second/build").await);
    let Some(returned) = crate::scenarios::event(host).await else {
        println!("the router function never returned");
        return false;
    };
    println!("EVENT {returned}");
    // It returns just after its event: its router serves from then on.
    let mut second = get(addr, "/second/build").await;
    for _ in 0..200 {
        if !second.starts_with("503") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        second = get(addr, "/second/build").await;
    }
    println!("SECOND {second}");
    println!("ARM {}", get(addr, "/first/arm?router_panic").await);
    println!("THIRD {}", get(addr, "/third/build").await);
    println!("THIRD again {}", get(addr, "/third/build").await);
    host.reload().await;
    println!("SECOND after a reload {}", get(addr, "/second/build").await);
    // Once each (the 503s are logged once per answer, and their number depends on timing).
    let mut lines = host.logs.matching("router");
    lines.dedup();
    for line in lines.iter().filter(|l| !l.contains("took the plugin's router")) {
        println!("{line}");
    }
    true
}

/// A reload makes the new generation's router before the generation serves (`PluginRouter`'s
/// reload callback), so its first requests do not wait for it; the first load's router is
/// made by the first request (the `PluginRouter` did not exist yet at the first load).
pub async fn prepared(host: &Arc<Host>) -> bool {
    let made = |generation: u64| {
        let lines = host.logs.matching("took the plugin's router");
        lines.iter().filter(|l| l.contains(&format!("generation={generation}"))).count()
    };
    println!("GENERATION 1 routers made before a request: {}", made(1));
    println!("SERVING {}", get(host.addr, "/build").await);
    println!("GENERATION 1 routers made after a request: {}", made(1));
    let generation = host.reload().await;
    println!("GENERATION {generation} routers made when the reload returned: {}", made(generation));
    println!("SERVING {}", get(host.addr, "/build").await);
    println!("GENERATION {generation} routers made after a request: {}", made(generation));
    true
}

/// A plugin type whose drop panics, held by generation 1's router, panics when the router is
/// dropped with its generation (on the manager's reaper): the panic is logged with plugin and
/// generation, the generation is unmapped, and later reloads and requests work.
pub async fn router_drop(host: &Arc<Host>) -> bool {
    println!("BOMB {}", get(host.addr, "/bomb").await);
    println!("ARM {}", get(host.addr, "/arm?drop_panic").await);
    let generation = host.reload().await;
    println!("RELOAD generation={generation} gen1_unmapped={}", !host.wait_mapped(1, false).await);
    let generation = host.reload().await;
    println!("RELOAD generation={generation} serving={} gen2_unmapped={}", get(host.addr, "/build").await, {
        !host.wait_mapped(2, false).await
    });
    println!("BOMB {}", get(host.addr, "/bomb").await);
    for line in host.logs.matching("router dropped") {
        println!("{line}");
    }
    true
}

/// A custom reason phrase set by the plugin's handler (`hyper::ext::ReasonPhrase`, from its
/// read-only data) reaches the client's status line.
pub async fn reason(host: &Arc<Host>) -> bool {
    let (head, body) = fetch(host.addr, "/reason").await;
    let reason =
        head.extensions.get::<hyper::ext::ReasonPhrase>().map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
    println!("REASON {} {reason:?} {body}", head.status.as_u16());
    true
}

/// A 4 MiB request body sent in 64 KiB chunks (HTTP/1.1 chunked) is read by the plugin's
/// handler frame by frame; generation 1 is replaced (and freed) when half of it is sent, and
/// the upload completes, whole, on generation 1's code; new requests meanwhile get generation
/// 2; once the upload's answer is in, generation 1 is unmapped.
pub async fn upload(host: &Arc<Host>) -> bool {
    const CHUNK: usize = 64 << 10;
    const CHUNKS: usize = 64;
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Bytes>(2);
    let body = StreamBody::new(futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), receiver))
    }));
    let stream = TcpStream::connect(host.addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::post("/upload").header("host", host.addr.to_string()).body(body).unwrap();
    let answer = tokio::spawn(async move {
        let response = sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        format!("{status} {}", String::from_utf8_lossy(&body))
    });
    for index in 0..CHUNKS {
        if index == CHUNKS / 2 {
            let generation = host.reload().await;
            println!(
                "RELOAD mid-body generation={generation} serving={} gen1_mapped={}",
                get(host.addr, "/build").await,
                host.mapped(1)
            );
        }
        let offset = index * CHUNK;
        let chunk: Vec<u8> = (offset..offset + CHUNK).map(|i| (i % 251) as u8).collect();
        chunks.send(Bytes::from(chunk)).await.expect("the upload is read");
    }
    drop(chunks);
    println!("UPLOAD {}", answer.await.unwrap());
    println!("AFTER gen1_unmapped={}", !host.wait_mapped(1, false).await);
    true
}

/// Adds a header to every answer.
async fn host_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert("x-host-layer", HeaderValue::from_static("host"));
    response
}

/// Answers 504 after 2 s.
async fn host_timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, "host timeout").into_response(),
    }
}

/// Answers 503 while two requests are in.
async fn host_limit(State(limit): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    let Ok(_permit) = limit.try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "host busy").into_response();
    };
    next.run(request).await
}

/// Host tower layers (axum middleware) around `PluginRouter`: a header the host adds next to
/// the plugin's own, a timeout that drops the plugin's response future (its generation is then
/// let go: unmapped after a reload), a concurrency limit of two.
pub async fn layers(host: &Arc<Host>) -> bool {
    let limit = Arc::new(Semaphore::new(2));
    let app = Router::new()
        .fallback_service(router(host))
        .layer(from_fn(host_header))
        .layer(from_fn(host_timeout))
        .layer(from_fn_with_state(limit, host_limit));
    let addr = serve(app).await;
    let show = |(head, body): (hyper::http::response::Parts, String)| {
        let header = |name: &str| head.headers.get(name).map(|v| v.to_str().unwrap_or("?").to_string());
        format!("{} host={:?} plugin={:?} {body}", head.status.as_u16(), header("x-host-layer"), header("x-served-by"))
    };
    println!("BUILD {}", show(fetch(addr, "/build").await));
    println!("TIMEOUT {}", show(fetch(addr, "/sleep?ms=60000").await));
    let generation = host.reload().await;
    println!("RELOAD generation={generation} gen1_unmapped={}", !host.wait_mapped(1, false).await);
    let requests: Vec<_> = (0..3).map(|_| tokio::spawn(fetch(addr, "/sleep?ms=800"))).collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(show(request.await.unwrap()));
    }
    answers.sort();
    println!("LIMIT {answers:?}");
    true
}

/// The reload report counts the tasks still running on plugin code (the host's task census,
/// from its task hooks): a task generation 1 spawned, sleeping past a reload, is counted as
/// generation 1's; once it ended, the next report counts none; the control socket's reload
/// answer carries the report's count.
pub async fn tasks(host: &Arc<Host>) -> bool {
    let show = |host: &Host| {
        let report = host.last_report.lock().unwrap();
        let report = report.as_ref().expect("a reload report");
        let tasks = report.tasks.as_ref().map(|t| t.iter().map(ToString::to_string).collect::<Vec<_>>());
        let live = host.manager.live_tasks().map(|t| t.iter().map(ToString::to_string).collect::<Vec<_>>());
        format!("generation={} tasks={tasks:?} live_tasks={live:?}", report.generation)
    };
    println!("SPAWN {}", get(host.addr, "/spawn?ms=1500&id=5").await);
    host.reload().await;
    println!("REPORT {}", show(host));
    println!("TASK {:?}", crate::scenarios::event(host).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    host.reload().await;
    println!("REPORT {}", show(host));
    // The control socket's reload answer is built from the report.
    println!("SPAWN {}", get(host.addr, "/spawn?ms=1500&id=6").await);
    let socket = std::env::temp_dir().join(format!("axum-host-{}.sock", std::process::id()));
    let server = hotswap_runtime::ControlServer::start(host.manager.clone(), &socket).unwrap();
    let asked = socket.clone();
    let answer = tokio::task::spawn_blocking(move || {
        hotswap_runtime::send_request(&asked, &hotswap_runtime::ControlRequest::Reload, Duration::from_secs(60))
    })
    .await
    .unwrap();
    match answer {
        Ok(hotswap_runtime::ControlResponse::Accepted { generation, tasks, .. }) => {
            let tasks = tasks.map(|t| t.iter().map(ToString::to_string).collect::<Vec<_>>());
            println!("SOCKET RELOAD generation={generation} tasks={tasks:?}");
        }
        other => println!("SOCKET RELOAD {other:?}"),
    }
    drop(server);
    let _ = std::fs::remove_file(&socket);
    true
}
