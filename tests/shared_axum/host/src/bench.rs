//! `axum_host bench …`: the cost of `PluginRouter`, measured, not tested. The same plugin
//! router is served twice in one process: through `PluginRouter` (the fallback) and mounted
//! directly (`/direct`, the router taken out of generation 1 once and kept for the process, as
//! if compiled into the host). One keep-alive HTTP/1.1 connection sends `GET /build` and
//! `GET /direct/build` in alternating blocks; prints requests/s and p50/p99 for each and their
//! ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use hotswap_runtime::{Args, PluginManager};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use shared_axum::AppState;

use crate::Host;

/// Generation 1's router, to mount directly. Its plugin handle and the value it came in are
/// kept for the process, so the router's code stays mapped.
pub fn direct_router(manager: &PluginManager, state: &AppState) -> Router {
    let plugin = manager.find_plugin("web").expect("web loaded");
    let made = plugin.invoke_func(hotswap_axum::ROUTER, Args::new().with(state.clone())).expect("router");
    let router = made.downcast_ref::<Router>().expect("an axum::Router").clone();
    Box::leak(Box::new((plugin, std::sync::Mutex::new(made))));
    router
}

const BLOCKS: usize = 10;
const PER_BLOCK: usize = 500;

pub async fn run(host: &Arc<Host>) -> bool {
    let stream = tokio::net::TcpStream::connect(host.addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let mut times = [Vec::new(), Vec::new()];
    let mut spent = [Duration::ZERO; 2];
    // One warm-up block each, then alternating blocks.
    for block in 0..=BLOCKS * 2 + 1 {
        let which = block % 2;
        let path = ["/build", "/direct/build"][which];
        let started = Instant::now();
        for _ in 0..PER_BLOCK {
            let request = hyper::Request::get(path).header("host", "bench").body(Empty::<Bytes>::new()).unwrap();
            let sent = Instant::now();
            sender.ready().await.expect("connection ready");
            let response = sender.send_request(request).await.expect("response");
            let body = response.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(&body[..], b"v1 gen=1");
            if block >= 2 {
                times[which].push(sent.elapsed());
            }
        }
        if block >= 2 {
            spent[which] += started.elapsed();
        }
    }
    let mut rates = [0.0; 2];
    for (which, name) in ["PluginRouter", "direct"].into_iter().enumerate() {
        let samples = &mut times[which];
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        rates[which] = samples.len() as f64 / spent[which].as_secs_f64();
        println!(
            "BENCH {name}: {} requests, {:.0} requests/s, p50 {:.1} µs, p99 {:.1} µs",
            samples.len(),
            rates[which],
            at(0.50).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6
        );
    }
    println!("BENCH throughput PluginRouter / direct = {:.3}", rates[0] / rates[1]);
    println!("BENCH routers taken: {}", host.logs.matching("took the plugin's router").len());
    true
}
