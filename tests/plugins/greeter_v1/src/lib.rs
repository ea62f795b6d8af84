//! Version 1 of the `greeter` test plugin. Its hooks live in a nested module, to exercise
//! module discovery; version 2 keeps them at the root.

use std::sync::Mutex;

hotswap_runtime::plugin!();

mod hooks;

/// Hooks in the order they ran, for the hook-order test.
static HOOK_LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn log(hook: &'static str) {
    HOOK_LOG.lock().unwrap().push(hook);
}

fn answer() -> String {
    "v1".to_string()
}
