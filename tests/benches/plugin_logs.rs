//! Cost per event of plugin logs (`hotswap_abi::logs`): a release build of plugin
//! `log_forward` emits bursts of events through its own `tracing` and `log`, forwarded to this
//! host's subscriber (`tracing-subscriber`'s `fmt` at INFO, writing to `io::sink()`), against
//! the same event emitted by host code straight into that subscriber; and the cost of an event
//! the host filters out (DEBUG), which the plugin never formats. Plain `main`, fixed counts.
//!
//! Writes `target/bench-results/plugin_logs.json` and prints a table.

mod common;

use std::time::Instant;

use common::median;
use hotswap_runtime::{PluginManager, args};
use hotswap_tests::build_plugin_release;
use serde_json::json;

const PLUGIN: &str = "tests/plugins/log_forward";
const EVENTS: u64 = 20_000;
const SAMPLES: usize = 15;

/// Median nanoseconds per event of `burst`, which emits `EVENTS` events.
fn per_event(mut burst: impl FnMut()) -> f64 {
    burst();
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            burst();
            t.elapsed().as_nanos() as f64 / EVENTS as f64
        })
        .collect();
    median(&mut samples)
}

fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(std::io::sink)
        .init();
    let built = build_plugin_release(PLUGIN);
    let dir = tempfile::tempdir().unwrap();
    built.install(dir.path());
    let manager = PluginManager::builder(dir.path()).build().unwrap();
    manager.load_plugins().unwrap();
    let plugin = |kind: u64| {
        let manager = &manager;
        move || manager.invoke::<()>("log_forward", "burst", args![EVENTS, kind]).unwrap()
    };
    let rows = [
        ("plugin tracing INFO (forwarded)", per_event(plugin(0))),
        ("plugin tracing DEBUG (filtered)", per_event(plugin(1))),
        ("plugin log INFO (forwarded)", per_event(plugin(2))),
        ("plugin log DEBUG (filtered)", per_event(plugin(3))),
        (
            "host tracing INFO (same fields, direct)",
            per_event(|| {
                for i in 0..EVENTS {
                    tracing::info!(target: "hotswap::plugin", plugin = "log_forward", generation = 1u64, fields = "i=1", i, "burst");
                }
            }),
        ),
        (
            "host tracing DEBUG (filtered, direct)",
            per_event(|| {
                for i in 0..EVENTS {
                    tracing::debug!(i, "burst");
                }
            }),
        ),
    ];
    println!("{:<42} {:>12}", "event", "ns/event");
    for (name, ns) in &rows {
        println!("{name:<42} {ns:>12.1}");
    }
    let results: serde_json::Map<String, serde_json::Value> =
        rows.iter().map(|(name, ns)| (name.to_string(), json!(ns))).collect();
    common::write_results(
        "plugin_logs",
        &json!({ "events_per_sample": EVENTS, "samples": SAMPLES, "ns_per_event": results }),
    );
}
