//! Requests around a host upgrade against a plain restart, in the same run (BENCHMARKS.md,
//! "Host upgrade"): the service demo's host as a process serving the demo plugins to keep-alive
//! clients; each trial measures every request sent from 1 s before the change to 3 s after it.
//!
//! `cargo run -p hotswap-tests --bin upgrade-bench [-- --trials N]` (builds the host twice and
//! the plugins in the service workspace, dev profile, whatever this binary's profile).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotswap_runtime::{ControlRequest, ControlResponse, send_request};
use hotswap_tests::keep_alive::{Failure, KeepAliveClient};
use hotswap_tests::service_process::{ServiceProcess, build_service_host, build_service_plugin};

const CLIENTS: usize = 6;
const BEFORE: Duration = Duration::from_secs(1);
const AFTER: Duration = Duration::from_secs(3);

/// One request as a client saw it.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    latency: Duration,
    failure: Option<Failure>,
}

/// Keep-alive clients until `stop`; every request's start, latency and failure.
fn run_clients(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Sample>>> {
    (0..CLIENTS)
        .map(|index| {
            let stop = Arc::clone(&stop);
            runtime.spawn(async move {
                let mut client = KeepAliveClient::new(addr);
                let mut samples = Vec::new();
                let mut sent = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let path = if sent.is_multiple_of(2) {
                        format!("/hello?name=b{index}")
                    } else {
                        "/shop/quote?item=fig&qty=2".into()
                    };
                    let at = Instant::now();
                    let failure = match client.get(&path).await {
                        Ok(answer) if answer.status == 200 => None,
                        Ok(answer) => Some(Failure::Request(format!("status {}", answer.status))),
                        Err(failure) => Some(failure),
                    };
                    samples.push(Sample { at, latency: at.elapsed(), failure });
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                samples
            })
        })
        .collect()
}

#[derive(Debug, Default)]
struct Row {
    requests: usize,
    failed: usize,
    refused: usize,
    latencies: Vec<Duration>,
    /// The longest time a client went without an answer (between two answered requests'
    /// ends) inside the window.
    longest_gap: Duration,
}

impl Row {
    fn add(&mut self, samples: &[Sample], change: Instant) {
        let mut last_answer: Option<Instant> = None;
        for sample in samples.iter().filter(|s| s.at + BEFORE >= change && s.at <= change + AFTER) {
            if sample.failure.is_none() {
                let end = sample.at + sample.latency;
                if let Some(last) = last_answer {
                    self.longest_gap = self.longest_gap.max(end.saturating_duration_since(last));
                }
                last_answer = Some(end);
            }
            self.requests += 1;
            match &sample.failure {
                None => self.latencies.push(sample.latency),
                Some(Failure::Connect(_)) => self.refused += 1,
                Some(Failure::Request(_)) => self.failed += 1,
            }
        }
    }

    fn line(&mut self, name: &str, trials: usize) -> String {
        self.latencies.sort_unstable();
        let pick = |q: f64| {
            let n = self.latencies.len();
            if n == 0 { f64::NAN } else { self.latencies[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e3 }
        };
        format!(
            "| {name} | {trials} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} |",
            self.requests,
            self.failed,
            self.refused,
            pick(0.5),
            pick(0.99),
            self.latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
            self.longest_gap.as_secs_f64() * 1e3
        )
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut trials = 3usize;
    while let Some(arg) = args.next() {
        if arg == "--trials" {
            trials = args.next().and_then(|n| n.parse().ok()).expect("--trials N");
        }
    }
    let temp = tempfile::tempdir().unwrap();
    let plugins = temp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    build_service_plugin("svc_shop", "v1", &[]).install(&plugins);
    build_service_plugin("svc_greeting", "v1", &[]).install(&plugins);
    let builds = [build_service_host("a"), build_service_host("b")];
    let socket = temp.path().join("control.sock");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // Upgrades: one host chain, each trial hands over to the other build.
    let mut upgrade = Row::default();
    let mut host = ServiceProcess::start(&builds[0], &plugins, &socket, 30.0);
    for trial in 0..trials {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = run_clients(&runtime, host.addr, Arc::clone(&stop));
        std::thread::sleep(BEFORE + Duration::from_millis(200));
        let program = builds[(trial + 1) % 2].to_string_lossy().into_owned();
        let change = Instant::now();
        let request = ControlRequest::UpgradeHost { program: Some(program), ready_timeout_ms: Some(60_000) };
        match send_request(&socket, &request, Duration::from_secs(90)).unwrap() {
            ControlResponse::HostUpgraded { pid, took_ms, .. } => {
                host.successors.push(pid);
                eprintln!("upgrade {}: new host {pid} ready in {took_ms:.0} ms", trial + 1);
            }
            other => panic!("upgrade refused: {other:?}"),
        }
        std::thread::sleep(AFTER);
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            upgrade.add(&runtime.block_on(client).unwrap(), change);
        }
    }
    drop(host);

    // Plain restarts: stop the process (SIGTERM, as `systemctl restart` does) and start the
    // new build on the same port.
    let mut restart = Row::default();
    let mut host = ServiceProcess::start(&builds[0], &plugins, &socket, 30.0);
    let listen = host.addr.to_string();
    for trial in 0..trials {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = run_clients(&runtime, host.addr, Arc::clone(&stop));
        std::thread::sleep(BEFORE + Duration::from_millis(200));
        let change = Instant::now();
        let pid = rustix::process::Pid::from_raw(host.pid() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        while !host.has_exited(host.pid()) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        host = ServiceProcess::start_on(&builds[(trial + 1) % 2], &plugins, &socket, &listen, 30.0);
        eprintln!(
            "restart {}: new host {} serving after {:.0} ms",
            trial + 1,
            host.pid(),
            started.elapsed().as_secs_f64() * 1e3
        );
        std::thread::sleep(AFTER.saturating_sub(change.elapsed()));
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            restart.add(&runtime.block_on(client).unwrap(), change);
        }
    }
    drop(host);

    println!("{CLIENTS} keep-alive clients; requests sent from 1 s before to 3 s after each change (dev build)");
    println!();
    println!(
        "| change | trials | requests | failed | refused connections | p50 ms | p99 ms | max ms | longest wait for an answer, ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!("{}", upgrade.line("host upgrade (`upgrade-host`)", trials));
    println!("{}", restart.line("plain restart (SIGTERM, start)", trials));
}
