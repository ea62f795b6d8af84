//! Plugin `copy`: async handlers on the plugin's own copy of tokio, handed to the host with
//! `hotswap_tokio::serve` (the route without a shared tokio, guide section 10). Each answer names
//! the build (`v1`, or `v2` with feature `v2`) and the generation whose library copy made it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use tokio::io::AsyncReadExt;

hotswap_runtime::plugin!();

#[cfg(not(feature = "v2"))]
const BUILD: &str = "v1";
#[cfg(feature = "v2")]
const BUILD: &str = "v2";

/// This library copy's generation (each generation loads its own copy, with its own static).
static GENERATION: Mutex<u64> = Mutex::new(0);

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    *GENERATION.lock().unwrap_or_else(|e| e.into_inner()) = ctx.generation;
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

/// Forgets the generation: a call that ran on a freed generation would answer `gen=0`.
pub fn on_free() {
    *GENERATION.lock().unwrap_or_else(|e| e.into_inner()) = 0;
}

fn label() -> String {
    format!("{BUILD} gen={}", *GENERATION.lock().unwrap_or_else(|e| e.into_inner()))
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    match name {
        "greet" => hotswap_tokio::serve(args, greet),
        "panic" => hotswap_tokio::serve(args, panic_after_await),
        "fetch" => hotswap_tokio::serve(args, fetch),
        "hang" => hotswap_tokio::serve(args, hang),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}

/// Sleeps `delay_ms` on the host's timer, then names the code that answered. The label is
/// read after the sleep: a call in flight during a reload answers from its own generation.
async fn greet(delay_ms: u64) -> String {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    label()
}

async fn panic_after_await(message: String) -> String {
    tokio::time::sleep(Duration::from_millis(1)).await;
    panic!("{message}");
}

/// Reads what the host's server at `addr` writes, through the host's reactor.
async fn fetch(addr: SocketAddr) -> String {
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(err) => return format!("connect failed: {err}"),
    };
    let mut text = String::new();
    match stream.read_to_string(&mut text).await {
        Ok(_) => format!("{text} via {}", label()),
        Err(err) => format!("read failed: {err}"),
    }
}

/// Counts one in `dropped` when it is dropped.
struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Never answers: waits an hour on the host's timer, counting one in `dropped` when the host
/// drops the call.
async fn hang(dropped: Arc<AtomicUsize>) -> String {
    let _guard = OnDrop(dropped);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    label()
}
