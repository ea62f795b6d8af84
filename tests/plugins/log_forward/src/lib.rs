//! A plugin that logs with plain `tracing` and `log` macros and sets nothing up: its events
//! must reach the host's subscriber (tests/tests/plugin_logs.rs).

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

hotswap_runtime::plugin!();

/// How many times a `Counted` field was formatted: a filtered event must format nothing.
static FORMATTED: AtomicU64 = AtomicU64::new(0);

struct Counted;

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FORMATTED.fetch_add(1, Ordering::Relaxed);
        f.write_str("counted")
    }
}

/// A field whose `Display` panics.
struct Panics;

impl fmt::Display for Panics {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("the Display of a field panicked")
    }
}

pub fn reloadable() -> bool {
    tracing::info!("reloadable asked");
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    Ok(())
}

pub fn on_free() {}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    tracing::info!(loaded = ctx.generation, "on_load ran");
    Ok(())
}

pub fn invoke_func(name: &str, args: Args) -> Result<Value, HookError> {
    let tag = args.get::<String>(0).cloned().unwrap_or_default();
    match name {
        // One event of each kind; returns how many `Counted` fields were formatted.
        "emit" => {
            let span = tracing::info_span!("request", id = 7);
            let entered = span.enter();
            let inner = tracing::info_span!("step", name = "inner");
            inner.in_scope(|| tracing::warn!(tag = %tag, user = 42, "warned in a span"));
            tracing::error!(tag = %tag, "an error");
            tracing::debug!(tag = %tag, counted = %Counted, "a filtered debug event");
            log::warn!(target: "log_forward::legacy", "a log record {tag}");
            log::debug!("a filtered log record {tag} {}", Counted);
            drop(entered);
            tracing::info!(tag = %tag, "outside any span");
            Ok(Value::new(FORMATTED.load(Ordering::Relaxed)))
        }
        // An event on a thread the plugin starts. (Not in `emit`: std's `thread::spawn` leaves
        // a thread-local with a destructor on the calling thread, which keeps the library
        // mapped; the reload test checks that forwarding alone does not.)
        "from_thread" => {
            std::thread::spawn(move || tracing::info!(tag = %tag, "from a thread the plugin started"))
                .join()
                .map_err(|_| "the plugin's thread panicked")?;
            Ok(Value::new(()))
        }
        "panicking_field" => {
            tracing::warn!(tag = %tag, bad = %Panics, "never formatted");
            tracing::warn!(tag = %tag, "after the panic");
            Ok(Value::new(()))
        }
        // For the cost-per-event bench: `count` events of one kind (0 tracing INFO, 1 tracing
        // DEBUG, 2 log INFO, 3 log DEBUG).
        "burst" => {
            let (count, kind) = (*args.get::<u64>(0)?, *args.get::<u64>(1)?);
            for i in 0..count {
                match kind {
                    0 => tracing::info!(i, "burst"),
                    1 => tracing::debug!(i, "burst"),
                    2 => log::info!("burst {i}"),
                    _ => log::debug!("burst {i}"),
                }
            }
            Ok(Value::new(()))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
