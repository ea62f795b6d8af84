//! `PluginRouter`'s own cost per request, without a network: requests sent straight into the
//! host's `Router` (`tower_service::Service::call`, the response body collected) for each of
//! the bench's three mounts, on one runtime worker alone and on both at once, timed in thread
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`; the handlers answer at once, so a request never moves
//! between threads). Printed by `axum_host bench` before the HTTP rounds.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use tower_service::Service;

use crate::bench::MODES;

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes the `timespec` it is given, which lives across the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// `n` requests to `path`, one after another; CPU nanoseconds per request.
async fn requests(app: Router, path: &'static str, n: usize) -> f64 {
    let started = thread_cpu();
    for _ in 0..n {
        let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let response = app.clone().call(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(b"v"), "{path}: {body:?}");
    }
    thread_cpu().saturating_sub(started).as_nanos() as f64 / n as f64
}

/// Per mode: ns per request alone, then with `tasks` tasks at once (the mean of theirs); each
/// the least of `rounds`, modes interleaved.
pub async fn run(app: &Router, rounds: usize, n: usize) {
    let tasks = 2;
    // One request per mode first, untimed: the first to a `PluginRouter` waits for its router
    // to be made (and may then resume on another thread).
    for (_, path) in MODES {
        requests(app.clone(), path, 1).await;
    }
    let mut alone: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    let mut together: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        for k in 0..MODES.len() {
            let mode = (k + round) % MODES.len();
            let path = MODES[mode].1;
            alone[mode].push(tokio::spawn(requests(app.clone(), path, n)).await.unwrap());
            let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(requests(app.clone(), path, n))).collect();
            let mut sum = 0.0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            together[mode].push(sum / tasks as f64);
        }
    }
    // The least over rounds: the work is the same each round, and noise only adds to it.
    let least = |v: &mut Vec<f64>| v.iter().copied().fold(f64::INFINITY, f64::min);
    let alone: Vec<f64> = alone.iter_mut().map(least).collect();
    let together: Vec<f64> = together.iter_mut().map(least).collect();
    let direct = crate::bench::DIRECT;
    println!(
        "BENCH without a network ({rounds} rounds of {n} requests per mode, the least round): | mode | ns per request, one worker | ÷ direct | over direct ns | {tasks} workers at once | ÷ direct | over direct ns |"
    );
    for (mode, (name, _)) in MODES.iter().enumerate() {
        println!(
            "BENCH | {name} | {:.0} | {:.3} | {:.0} | {:.0} | {:.3} | {:.0} |",
            alone[mode],
            alone[mode] / alone[direct],
            alone[mode] - alone[direct],
            together[mode],
            together[mode] / together[direct],
            together[mode] - together[direct],
        );
    }
}
