//! Test fixture: plugin `threaded`. Its `on_init` starts a thread that runs the library's code
//! forever and keeps a thread-local with a destructor, as a careless plugin would. glibc then
//! cannot unmap the library at `dlclose` (a thread-local destructor is pending), and the
//! runtime must say so instead of counting the library as closed.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

struct Ticks(Cell<u64>);

impl Drop for Ticks {
    fn drop(&mut self) {
        // Never runs while the thread lives; its registration is what keeps the library.
    }
}

thread_local! {
    static TICKS: Ticks = const { Ticks(Cell::new(0)) };
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
    // `on_init` returns once the thread has touched its thread-local: until then no destructor
    // is registered, and a `dlclose` in that window (the test's last reload, then the manager
    // dropped at once; or a reload under load) would unmap the code the thread is about to
    // run (SIGSEGV, seen 1 run in 15). The fixture's point is a thread whose destructor is
    // pending, so it waits for exactly that.
    let (started, running) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("threaded-forever".into()).spawn(move || {
        TICKS.with(|t| t.0.set(1));
        let _ = started.send(());
        loop {
            TICKS.with(|t| t.0.set(t.0.get() + 1));
            std::thread::sleep(Duration::from_millis(50));
        }
    })?;
    running.recv().map_err(|_| "the thread ended before touching its thread-local")?;
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new("threaded".to_string())),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
