//! Rollback time against reload time, in the same run: on release builds of plugin `probe`
//! (`tests/plugins/probation` serving, its `v2` build the newest file in the folder), each
//! sample times `manager.reload_on_probation(..)` (a real reload: copy, inspect, `dlopen`,
//! hooks, publish) and then `manager.rollback()` (back to the kept generation). Plain `main`
//! with a fixed sample count, as `reload.rs`: each reload maps a new library, so criterion's
//! adaptive iteration count would map thousands.
//!
//! Two managers: the default free delay (5 s: the rollback swaps and hands the retired
//! generation to the reaper) and `free_delay(ZERO)` (the rollback also waits for the retired
//! generation's `on_free` and the closing of its library).
//!
//! Writes `target/bench-results/rollback.json` and prints a table.

mod common;

use std::time::{Duration, Instant};

use common::{median, ms, percentile};
use hotswap_runtime::{PluginManager, Probation};
use hotswap_tests::build_plugin_with_features;
use serde_json::json;

/// Plugin `probe`: build `p1`, and `p2` with feature `v2`.
const PROBE: &str = "tests/plugins/probation";

const WARM_UP: usize = 5;
const SAMPLES: usize = 60;

fn scenario(free_delay: Option<Duration>) -> serde_json::Value {
    let (p1, p2) = (build_plugin_with_features(PROBE, &[], false), build_plugin_with_features(PROBE, &["v2"], false));
    let dir = tempfile::tempdir().unwrap();
    p1.install(dir.path());
    let mut builder = PluginManager::builder(dir.path());
    if let Some(delay) = free_delay {
        builder = builder.free_delay(delay);
    }
    let manager = builder.build().unwrap();
    manager.load_plugins().unwrap();
    p2.install_newest(dir.path());
    let (mut reload, mut rollback) = (Vec::new(), Vec::new());
    for i in 0..WARM_UP + SAMPLES {
        let t = Instant::now();
        manager.reload_on_probation(Probation::new(Duration::from_secs(3600))).unwrap();
        let reloaded = t.elapsed();
        let t = Instant::now();
        manager.rollback().unwrap();
        let rolled = t.elapsed();
        if i >= WARM_UP {
            reload.push(ms(reloaded));
            rollback.push(ms(rolled));
        }
    }
    let (reload_median, rollback_median) = (median(&mut reload), median(&mut rollback));
    json!({
        "samples": SAMPLES,
        "reload_median_ms": reload_median,
        "reload_p90_ms": percentile(&mut reload, 90.0),
        "rollback_median_ms": rollback_median,
        "rollback_p90_ms": percentile(&mut rollback, 90.0),
        "rollback_over_reload": rollback_median / reload_median,
    })
}

fn main() {
    let load_start = common::loadavg();
    let default_delay = scenario(None);
    let zero_delay = scenario(Some(Duration::ZERO));
    println!(
        "{:<22} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "free delay", "reload ms", "reload p90", "rollback ms", "rollback p90", "ratio"
    );
    for (name, r) in [("default (5 s)", &default_delay), ("zero", &zero_delay)] {
        println!(
            "{name:<22} {:>12.3} {:>12.3} {:>12.4} {:>12.4} {:>10.4}",
            r["reload_median_ms"].as_f64().unwrap(),
            r["reload_p90_ms"].as_f64().unwrap(),
            r["rollback_median_ms"].as_f64().unwrap(),
            r["rollback_p90_ms"].as_f64().unwrap(),
            r["rollback_over_reload"].as_f64().unwrap(),
        );
    }
    let results = json!({
        "default_free_delay": default_delay,
        "zero_free_delay": zero_delay,
        "loadavg_start": load_start,
        "loadavg_end": common::loadavg(),
    });
    common::write_results("rollback", &results);
}
