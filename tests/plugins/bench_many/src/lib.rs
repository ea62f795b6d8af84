//! Benchmark fixture. A normal hotswap plugin (`invoke_func("add", [i64, i64])`) that also
//! exports `bench_add` as a plain C symbol, so the benchmarks can measure the pattern other
//! hot-reload crates use: lock the library, look the symbol up by name, call it.

use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// `a + b`, exported unmangled for `dlsym`.
#[unsafe(no_mangle)]
pub extern "C" fn bench_add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "add" => Ok(Value::new(bench_add(args.take::<i64>(0)?, args.take::<i64>(1)?))),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
