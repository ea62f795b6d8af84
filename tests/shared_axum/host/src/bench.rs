//! `axum_host bench …`: the cost of `PluginRouter`, measured, not tested (run by
//! `tests/shared_axum/bench.sh`, release builds). The same plugin router is served three ways
//! in one process: through `PluginRouter` (`/plugin`), through `PluginRouter::without_spans()`
//! (`/plugin-nospan`) and mounted directly (`/direct`, the router taken out of generation 1
//! once and kept for the process, as if compiled into the host); each is nested the same way.
//!
//! Several keep-alive HTTP/1.1 connections (clients on a runtime of their own) send `GET
//! …/build` without pause. Each round runs every mode in turn steady, then every mode in turn
//! while the host reloads the plugin (v1 ↔ v2) every `BENCH_RELOAD_MS`, the modes' order
//! rotated round by round. Prints per mode requests/s, p50 and p99, the host's CPU time per
//! request, the p99 of the requests started within a reload window (a reload's start to
//! `WINDOW_TAIL` after it returned) and outside them, the median over rounds of each round's
//! p99, and the ratios against `direct`.
//!
//! First, `micro.rs` measures the same three mounts without a network (`PluginRouter`'s own
//! CPU per request). The reload's stages are taken from each reload's report.
//!
//! Knobs (environment): `BENCH_CONNECTIONS` (4), `BENCH_ROUNDS` (20; 0 runs only the part
//! without a network), `BENCH_ROUND_MS` (1000), `BENCH_RELOAD_MS` (500), `BENCH_RELOAD_NICE`
//! (0: the manager's `reload_nice`), `BENCH_MICRO_ROUNDS` (10), `BENCH_MICRO_REQUESTS` (20000).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use hotswap_axum::PluginRouter;
use hotswap_runtime::{Args, PluginManager};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use shared_axum::AppState;

use crate::Host;

/// Mounts the three ways to serve plugin `web`'s router (see the module's text).
pub fn mount(app: Router, manager: &PluginManager, state: &AppState) -> Router {
    app.nest_service("/direct", direct_router(manager, state))
        .nest_service("/plugin", PluginRouter::with_state(manager.clone(), "web", state.clone()))
        .nest_service("/plugin-nospan", PluginRouter::with_state(manager.clone(), "web", state.clone()).without_spans())
}

/// Generation 1's router, to mount directly. Its plugin handle and the value it came in are
/// kept for the process, so the router's code stays mapped.
fn direct_router(manager: &PluginManager, state: &AppState) -> Router {
    let plugin = manager.find_plugin("web").expect("web loaded");
    let made = plugin.invoke_func(hotswap_axum::ROUTER, Args::new().with(state.clone())).expect("router");
    let router = made.downcast_ref::<Router>().expect("an axum::Router").clone();
    Box::leak(Box::new((plugin, Mutex::new(made))));
    router
}

pub const MODES: [(&str, &str); 3] = [
    ("PluginRouter", "/plugin/build"),
    ("PluginRouter without_spans()", "/plugin-nospan/build"),
    ("direct (compiled-in)", "/direct/build"),
];
pub const DIRECT: usize = 2;

/// How long after a reload returned a request still counts as started within its window
/// (the first requests after a reload ask the new generation for its router).
const WINDOW_TAIL: Duration = Duration::from_millis(20);

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// One request: when it was sent and how long it took.
type Sample = (Instant, Duration);

#[derive(Default)]
struct Tally {
    samples: Vec<Sample>,
    /// Each round's samples (`samples` in rounds), for figures robust to a noisy round.
    rounds: Vec<Vec<Sample>>,
    requests: usize,
    spent: Duration,
    /// CPU time the host's runtime threads (its workers, and the blocking thread reloading)
    /// spent in the rounds.
    cpu: Duration,
    /// Minor page faults the host's runtime threads took in the rounds.
    faults: u64,
    /// Throughput of each round, to show their spread.
    rates: Vec<f64>,
    /// Distinct bodies seen (the build and generation that answered).
    bodies: std::collections::BTreeSet<String>,
}

/// One client connection sending `path` without pause until `until`.
async fn client(addr: std::net::SocketAddr, path: &'static str, until: Instant) -> (Vec<Sample>, Vec<String>) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let mut samples = Vec::with_capacity(8192);
    let mut bodies = Vec::new();
    while Instant::now() < until {
        let request = hyper::Request::get(path).header("host", "bench").body(Empty::<Bytes>::new()).unwrap();
        let sent = Instant::now();
        sender.ready().await.expect("connection ready");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        let took = sent.elapsed();
        assert!(status.is_success() && body.starts_with(b"v"), "{path}: {status} {body:?}");
        samples.push((sent, took));
        if bodies.last().is_none_or(|last: &String| last.as_bytes() != &body[..]) {
            bodies.push(String::from_utf8_lossy(&body).into_owned());
        }
    }
    (samples, bodies)
}

/// What every round shares: the host, the clients' runtime, and the reloads made so far.
struct Bench<'a> {
    host: &'a Arc<Host>,
    clients: tokio::runtime::Handle,
    connections: usize,
    /// Each reload's start and end (its window runs on to `WINDOW_TAIL` after the end).
    windows: Vec<(Instant, Instant)>,
    /// Each reload's end of copying the build in (its `manager.reload()` starts then).
    installed: Vec<Instant>,
    /// Each reload's parts: installing the other build into the folder, `manager.reload()`.
    reload_times: Vec<(Duration, Duration)>,
    /// Each reload's stages as its report gives them (ms).
    stages: Vec<Vec<(String, f64)>>,
}

/// `Host::reload`, its two parts timed: copying the other build into the plugin folder, and
/// `manager.reload()` (with this host's `free_delay(ZERO)`, the old generation's `on_free` and
/// `dlclose` included).
async fn timed_reload(host: &Arc<Host>) -> (Duration, Duration, Vec<(String, f64)>) {
    let host = Arc::clone(host);
    tokio::task::spawn_blocking(move || {
        let next = host.manager.generation_number() + 1;
        let started = Instant::now();
        crate::install(&host.builds[((next + 1) % 2) as usize], &host.folder, next);
        let installed = Instant::now();
        let report = host.manager.reload().expect("reload");
        let reloaded = Instant::now();
        host.loaded();
        let stages = report.stage_ms.iter().map(|(stage, ms)| (stage.to_string(), *ms)).collect();
        (installed - started, reloaded - installed, stages)
    })
    .await
    .unwrap()
}

/// One round of `bench.connections` clients on `mode` for `length`; reloads every `every` if
/// set.
async fn round(bench: &mut Bench<'_>, mode: usize, length: Duration, every: Option<Duration>, tally: &mut Tally) {
    let (host, connections) = (bench.host, bench.connections);
    let (cpu_before, faults_before) = (server_cpu(), server_faults());
    let started = Instant::now();
    let until = started + length;
    let handles: Vec<_> =
        (0..connections).map(|_| bench.clients.spawn(client(host.addr, MODES[mode].1, until))).collect();
    if let Some(every) = every {
        let mut next = started + every / 2;
        while next < until {
            tokio::time::sleep_until(next.into()).await;
            let begun = Instant::now();
            let (install, reload, stages) = timed_reload(host).await;
            let ended = Instant::now();
            bench.reload_times.push((install, reload));
            bench.stages.push(stages);
            bench.windows.push((begun, ended));
            bench.installed.push(begun + install);
            next += every;
        }
    }
    let mut requests = 0;
    let mut this_round = Vec::new();
    for handle in handles {
        let (samples, bodies) = handle.await.expect("client");
        requests += samples.len();
        this_round.extend_from_slice(&samples);
        tally.samples.extend(samples);
        tally.bodies.extend(bodies);
    }
    tally.rounds.push(this_round);
    let spent = started.elapsed();
    tally.cpu += server_cpu().saturating_sub(cpu_before);
    tally.faults += server_faults().saturating_sub(faults_before);
    tally.requests += requests;
    tally.spent += spent;
    tally.rates.push(requests as f64 / spent.as_secs_f64());
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e6
}

/// CPU time used so far by the host's runtime threads (tokio's default name `tokio-rt-worker`; the
/// clients' runtime is named otherwise): user + system time from `/proc/self/task/*/stat`, in
/// clock ticks (10 ms; rounds add up to seconds). (`schedstat`'s time on a CPU reads 0 on this
/// machine's kernel.)
fn server_cpu() -> Duration {
    // SAFETY: `sysconf` only reads a configuration value; no memory is passed.
    let tick = 1e9 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // After the command's closing parenthesis: state (field 3), …, utime (14), stime (15).
    Duration::from_nanos((server_stat(&[11, 12]) as f64 * tick) as u64)
}

/// Minor page faults taken so far by the host's runtime threads (field 10 of their `stat`).
fn server_faults() -> u64 {
    server_stat(&[7])
}

/// The sum of fields `indices` (counted after the command's closing parenthesis) of the
/// `stat` of the host's runtime threads (named `tokio-rt-worker`; the clients' are not).
fn server_stat(indices: &[usize]) -> u64 {
    let mut sum = 0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("tokio-rt") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        sum += indices.iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum::<u64>();
    }
    sum
}

/// The median over rounds of each round's p99 of the samples `keep` keeps (µs).
fn p99_median_of_rounds(tally: &Tally, keep: impl Fn(&Sample) -> bool) -> f64 {
    let mut p99s: Vec<f64> = tally
        .rounds
        .iter()
        .map(|round| quantile(&sorted(round.iter().filter(|x| keep(x)).map(|x| x.1)), 0.99))
        .filter(|p| !p.is_nan())
        .collect();
    p99s.sort_by(f64::total_cmp);
    p99s.get(p99s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Each stage's median over reloads, in the order of the first reload's report.
fn stage_medians(reloads: &[Vec<(String, f64)>]) -> String {
    let Some(first) = reloads.first() else { return String::new() };
    first
        .iter()
        .map(|(stage, _)| {
            let mut ms: Vec<f64> =
                reloads.iter().flat_map(|r| r.iter().filter(|(s, _)| s == stage).map(|(_, ms)| *ms)).collect();
            ms.sort_by(f64::total_cmp);
            format!("{stage} {:.2}", ms[ms.len() / 2])
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn sorted(samples: impl Iterator<Item = Duration>) -> Vec<Duration> {
    let mut all: Vec<Duration> = samples.collect();
    all.sort_unstable();
    all
}

pub async fn run(host: &Arc<Host>) -> bool {
    let connections = knob("BENCH_CONNECTIONS", 4) as usize;
    let rounds = knob("BENCH_ROUNDS", 20) as usize;
    let length = Duration::from_millis(knob("BENCH_ROUND_MS", 1000));
    let every = Duration::from_millis(knob("BENCH_RELOAD_MS", 500));
    // The clients run on threads of their own; the host's runtime (2 workers) only serves.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .unwrap();
    let mut bench = Bench {
        host,
        clients: clients.handle().clone(),
        connections,
        windows: Vec::new(),
        installed: Vec::new(),
        reload_times: Vec::new(),
        stages: Vec::new(),
    };
    println!(
        "BENCH {connections} keep-alive connections, {rounds} rounds of {} ms per mode and phase, reloads every {} ms; load average at start: {}",
        length.as_millis(),
        every.as_millis(),
        loadavg()
    );
    let app = mount(Router::new(), &host.manager, &host.state);
    crate::micro::run(&app, knob("BENCH_MICRO_ROUNDS", 10) as usize, knob("BENCH_MICRO_REQUESTS", 20_000) as usize)
        .await;
    drop(app);
    if knob("BENCH_ROUNDS", 20) == 0 {
        std::mem::forget(clients);
        return true;
    }
    // Warm-up: a short round of each mode, and one reload each way, discarded.
    let mut discard = Tally::default();
    for mode in 0..MODES.len() {
        let short = Duration::from_millis(300);
        round(&mut bench, mode, short, None, &mut discard).await;
    }
    host.reload().await;
    host.reload().await;
    bench.windows.clear();
    bench.installed.clear();
    bench.reload_times.clear();
    bench.stages.clear();
    let mut steady: Vec<Tally> = MODES.iter().map(|_| Tally::default()).collect();
    let mut reloading: Vec<Tally> = MODES.iter().map(|_| Tally::default()).collect();
    for r in 0..rounds {
        for phase in 0..2 {
            for k in 0..MODES.len() {
                let mode = (k + r) % MODES.len();
                let (tally, reloads) =
                    if phase == 0 { (&mut steady[mode], None) } else { (&mut reloading[mode], Some(every)) };
                round(&mut bench, mode, length, reloads, tally).await;
            }
        }
    }
    let windows = &bench.windows;
    let in_window = |sent: &Instant| windows.iter().any(|(from, to)| sent >= from && *sent <= *to + WINDOW_TAIL);
    let in_reload = |sent: &Instant| windows.iter().any(|(from, to)| sent >= from && sent <= to);
    let installing =
        |sent: &Instant| windows.iter().zip(&bench.installed).any(|((from, _), to)| sent >= from && sent < to);
    let rate = |t: &Tally| t.requests as f64 / t.spent.as_secs_f64();
    println!(
        "BENCH | mode | steady req/s | ÷ direct | per round ÷ direct: median (min–max) | p50 µs | p99 µs | reloading req/s | ÷ direct | p50 µs | p99 µs | p99 in reload windows µs (requests) | p99 in windows ÷ steady p99 | of which during the reload: p99 µs (requests) | of those, while the build is copied in | in `manager.reload()` | after it: p99 µs (requests) |"
    );
    for (mode, (name, _)) in MODES.iter().enumerate() {
        let (s, l) = (&steady[mode], &reloading[mode]);
        let s_sorted = sorted(s.samples.iter().map(|x| x.1));
        let l_sorted = sorted(l.samples.iter().map(|x| x.1));
        let w_sorted = sorted(l.samples.iter().filter(|x| in_window(&x.0)).map(|x| x.1));
        let during = sorted(l.samples.iter().filter(|x| in_reload(&x.0)).map(|x| x.1));
        let copying = sorted(l.samples.iter().filter(|x| installing(&x.0)).map(|x| x.1));
        let reload_proper = sorted(l.samples.iter().filter(|x| in_reload(&x.0) && !installing(&x.0)).map(|x| x.1));
        let after = sorted(l.samples.iter().filter(|x| in_window(&x.0) && !in_reload(&x.0)).map(|x| x.1));
        let mut per_round: Vec<f64> = s.rates.iter().zip(&steady[DIRECT].rates).map(|(a, b)| a / b).collect();
        per_round.sort_by(f64::total_cmp);
        let per_round = format!(
            "{:.3} ({:.2}–{:.2})",
            per_round[per_round.len() / 2],
            per_round[0],
            per_round[per_round.len() - 1]
        );
        println!(
            "BENCH | {name} | {:.0} | {:.3} | {} | {:.0} | {:.0} | {:.0} | {:.3} | {:.0} | {:.0} | {:.0} ({}) | {:.2} | {:.0} ({}) | {:.0} ({}) | {:.0} ({}) | {:.0} ({}) |",
            rate(s),
            rate(s) / rate(&steady[DIRECT]),
            per_round,
            quantile(&s_sorted, 0.50),
            quantile(&s_sorted, 0.99),
            rate(l),
            rate(l) / rate(&reloading[DIRECT]),
            quantile(&l_sorted, 0.50),
            quantile(&l_sorted, 0.99),
            quantile(&w_sorted, 0.99),
            w_sorted.len(),
            quantile(&w_sorted, 0.99) / quantile(&s_sorted, 0.99),
            quantile(&during, 0.99),
            during.len(),
            quantile(&copying, 0.99),
            copying.len(),
            quantile(&reload_proper, 0.99),
            reload_proper.len(),
            quantile(&after, 0.99),
            after.len(),
        );
    }
    println!(
        "BENCH | mode | host CPU µs per request, steady | ÷ direct | reloading (reloads included) | ÷ direct | p99 µs (median over rounds of each round's p99): steady | reloading, all requests | in reload windows | outside them | in windows ÷ outside | in windows ÷ steady |"
    );
    for (mode, (name, _)) in MODES.iter().enumerate() {
        let steady_p99 = p99_median_of_rounds(&steady[mode], |_| true);
        let windows_p99 = p99_median_of_rounds(&reloading[mode], |x| in_window(&x.0));
        let outside_p99 = p99_median_of_rounds(&reloading[mode], |x| !in_window(&x.0));
        let per_request = |t: &Tally| t.cpu.as_secs_f64() * 1e6 / t.requests as f64;
        println!(
            "BENCH | {name} | {:.1} | {:.3} | {:.1} | {:.3} | {steady_p99:.0} | {:.0} | {windows_p99:.0} | {outside_p99:.0} | {:.2} | {:.2} |",
            per_request(&steady[mode]),
            per_request(&steady[mode]) / per_request(&steady[DIRECT]),
            per_request(&reloading[mode]),
            per_request(&reloading[mode]) / per_request(&reloading[DIRECT]),
            p99_median_of_rounds(&reloading[mode], |_| true),
            windows_p99 / outside_p99,
            windows_p99 / steady_p99
        );
    }
    let installs = sorted(bench.reload_times.iter().map(|t| t.0));
    let reloads = sorted(bench.reload_times.iter().map(|t| t.1));
    println!(
        "BENCH reloads: {}, copying the build in p50 {:.2} ms, manager.reload() p50 {:.2} ms (max {:.2} ms); now generation {}; bodies seen through /plugin while reloading: {}",
        reloads.len(),
        quantile(&installs, 0.5) / 1e3,
        quantile(&reloads, 0.5) / 1e3,
        reloads.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        host.manager.generation_number(),
        reloading[0].bodies.len()
    );
    let faults = |t: &[Tally]| t.iter().map(|t| t.faults).sum::<u64>();
    println!(
        "BENCH minor page faults of the host's runtime threads (they serve, and copy builds in): {} in the steady rounds, {} in the reloading rounds ({:.0} per reload more)",
        faults(&steady),
        faults(&reloading),
        (faults(&reloading) as f64 - faults(&steady) as f64) / bench.reload_times.len().max(1) as f64
    );
    println!("BENCH manager.reload()'s stages (report's stage_ms), median ms: {}", stage_medians(&bench.stages));
    println!("BENCH load average at end: {}", loadavg());
    // Dropping a runtime inside another runtime's context panics: let the process end it.
    std::mem::forget(clients);
    true
}
