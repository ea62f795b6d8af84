//! A loop of by-name calls, `manager.invoke::<i64>("greeter", "add", args![a, b])`, for
//! profilers: `valgrind --tool=callgrind target/release/examples/invoke_profile 100000`
//! counts the instructions of one call (total ÷ the number given); without valgrind it prints
//! nanoseconds per call (this thread's CPU time, for a quick look; BENCHMARKS.md's figures
//! come from `tests/benches/per_call.rs`).
//!
//! `cargo run --release -p hotswap-tests --example invoke_profile -- [calls]`

use std::hint::black_box;

use hotswap_runtime::{PluginManager, args};
use hotswap_tests::{build_plugin_release, thread_cpu};

fn main() {
    let calls: u64 = std::env::args().nth(1).map_or(10_000_000, |n| n.parse().expect("a number of calls"));
    let plugins = tempfile::tempdir().unwrap();
    build_plugin_release("tests/plugins/greeter_v1").install(plugins.path());
    let manager = PluginManager::builder(plugins.path()).build().unwrap();
    manager.load_plugins().unwrap();
    let start = thread_cpu();
    let mut sum = 0_i64;
    for i in 0..calls as i64 {
        sum = sum.wrapping_add(black_box(&manager).invoke::<i64>("greeter", "add", args![i, 1_i64]).unwrap());
    }
    let elapsed = thread_cpu() - start;
    println!("{calls} calls, {:.1} ns per call (sum {sum})", elapsed.as_nanos() as f64 / calls as f64);
}
