//! Soak test: threads call a plugin continuously while the plugin is reloaded many times.
//!
//! ```sh
//! cargo run --release -p hotswap-tests --bin soak -- --reloads 2000 --threads 4
//! ```
//!
//! Reports failed calls (must be 0), call latency (p50/p99/max) in steady state and during
//! reloads, and the process's RSS and number of mapped plugin libraries before and after.
//! Exits non-zero when a call failed or the mapped libraries were not bounded by the
//! retention policy.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hotswap_runtime::{PluginManager, args};
use hotswap_tests::build_plugin;

struct Options {
    reloads: usize,
    threads: usize,
    retain: usize,
}

fn parse() -> Options {
    let mut options = Options { reloads: 500, threads: 4, retain: 2 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--reloads" => options.reloads = value("--reloads"),
            "--threads" => options.threads = value("--threads"),
            "--retain" => options.retain = value("--retain"),
            "--help" | "-h" => {
                println!("usage: soak [--reloads N (500)] [--threads N (4)] [--retain N (2)]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}; see --help"),
        }
    }
    options
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn mapped_libraries(dir: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let dir = dir.to_string_lossy().into_owned();
    let mut files: Vec<&str> =
        maps.lines().filter_map(|l| l.split_whitespace().nth(5)).filter(|p| p.starts_with(&dir)).collect();
    files.sort();
    files.dedup();
    files.len()
}

/// A latency histogram of fixed size (so that recording millions of calls does not grow
/// the RSS being measured): 16 buckets per power of two, within 1/16 of the true value.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    max: u64,
}

impl Histogram {
    const SUB: u32 = 4;

    fn new() -> Self {
        Histogram { counts: vec![0; 64 << Self::SUB], max: 0 }
    }

    fn bucket(nanos: u64) -> usize {
        if nanos < (1 << Self::SUB) {
            return nanos as usize;
        }
        let power = 63 - nanos.leading_zeros();
        let sub = (nanos >> (power - Self::SUB)) & ((1 << Self::SUB) - 1);
        (((power - Self::SUB + 1) << Self::SUB) as u64 + sub) as usize
    }

    fn lower_bound(bucket: usize) -> u64 {
        if bucket < (1 << Self::SUB) {
            return bucket as u64;
        }
        let power = (bucket >> Self::SUB) as u32 + Self::SUB - 1;
        let sub = (bucket & ((1 << Self::SUB) - 1)) as u64;
        (1 << power) | (sub << (power - Self::SUB))
    }

    fn record(&mut self, nanos: u64) {
        self.counts[Self::bucket(nanos)] += 1;
        self.max = self.max.max(nanos);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.max = self.max.max(other.max);
    }

    fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn percentile(&self, p: f64) -> Duration {
        if p >= 1.0 {
            return Duration::from_nanos(self.max);
        }
        let target = ((self.len() as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= target.max(1) {
                return Duration::from_nanos(Self::lower_bound(bucket));
            }
        }
        Duration::from_nanos(self.max)
    }
}

fn main() {
    let options = parse();
    let dir = tempfile::tempdir().expect("temp folder");
    let builds = [build_plugin("tests/plugins/greeter_v1"), build_plugin("tests/plugins/greeter_v2")];
    builds[0].install(dir.path());
    // A free delay longer than any call: the free thread, not a calling thread, then runs
    // `on_free` and closes the replaced library.
    let manager = PluginManager::builder(dir.path())
        .free_delay(Duration::from_millis(100))
        .retain_released_libraries(options.retain)
        .build()
        .expect("manager");
    manager.load_plugins().expect("first generation");

    let reloading = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(options.threads + 1));
    let workers: Vec<_> = (0..options.threads)
        .map(|_| {
            let (manager, reloading, stop, failed, start) =
                (manager.clone(), reloading.clone(), stop.clone(), failed.clone(), start.clone());
            std::thread::spawn(move || {
                let (mut steady, mut during) = (Histogram::new(), Histogram::new());
                start.wait();
                while !stop.load(Ordering::Acquire) {
                    let in_reload = reloading.load(Ordering::Acquire);
                    let t = Instant::now();
                    let ok = manager
                        .find_plugin("greeter")
                        .map(|p| p.invoke::<i64>("add", args![6_i64, 7_i64]))
                        .is_some_and(|r| matches!(r, Ok(13) | Ok(42)));
                    let nanos = t.elapsed().as_nanos() as u64;
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if in_reload || reloading.load(Ordering::Acquire) {
                        during.record(nanos)
                    } else {
                        steady.record(nanos)
                    }
                }
                (steady, during)
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_millis(200));
    let (rss_before, mapped_before) = (rss_kib(), mapped_libraries(manager.work_dir()));
    let started = Instant::now();
    let mut reload_times = Histogram::new();
    for i in 0..options.reloads {
        // Alternate the two builds: every reload loads a different file than the one serving.
        builds[(i + 1) % 2].install(dir.path());
        reloading.store(true, Ordering::Release);
        let t = Instant::now();
        let report = manager.reload().expect("every reload succeeds");
        reload_times.record(t.elapsed().as_nanos() as u64);
        reloading.store(false, Ordering::Release);
        assert_eq!(report.plugins[0].note, "loaded");
        // Keep the folder to the serving build (the runtime loads the newest file).
        let _ = std::fs::remove_file(builds[i % 2].library.file_name().map(|n| dir.path().join(n)).unwrap());
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let (rss_after, mapped_after) = (rss_kib(), mapped_libraries(manager.work_dir()));
    stop.store(true, Ordering::Release);
    let (mut steady, mut during) = (Histogram::new(), Histogram::new());
    for worker in workers {
        let (s, d) = worker.join().expect("worker");
        steady.merge(&s);
        during.merge(&d);
    }
    let failed = failed.load(Ordering::Relaxed);
    let calls = steady.len() + during.len();
    println!(
        "soak: {} reloads in {:.1} s with {} calling threads, retain {}",
        options.reloads,
        elapsed.as_secs_f64(),
        options.threads,
        options.retain
    );
    println!("| measure | steady state | during reloads |");
    println!("| --- | --- | --- |");
    println!("| calls | {} | {} |", steady.len(), during.len());
    for (name, p) in [("p50", 0.50), ("p99", 0.99), ("max", 1.0)] {
        println!("| call latency {name} | {:?} | {:?} |", steady.percentile(p), during.percentile(p));
    }
    println!(
        "| reload time p50 / p99 / max | {:?} / {:?} / {:?} | |",
        reload_times.percentile(0.5),
        reload_times.percentile(0.99),
        reload_times.percentile(1.0)
    );
    println!("| RSS before / after | {} KiB / {} KiB | |", rss_before, rss_after);
    println!("| mapped plugin libraries before / after | {mapped_before} / {mapped_after} | |");
    println!("| libraries closed | {} | |", manager.closed_library_count());
    println!("failed calls: {failed} of {calls}");
    // The serving library, the ones the free delay still holds, and the retained ones.
    let bound = options.retain + 2;
    let ok = failed == 0 && mapped_after <= bound && calls > 0;
    if !ok {
        eprintln!("soak FAILED: {failed} failed calls, {mapped_after} mapped libraries (bound {bound})");
        std::process::exit(1);
    }
}
