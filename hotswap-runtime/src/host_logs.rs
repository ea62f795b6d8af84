//! The host side of plugin logs (`hotswap_abi::logs`): the two functions every dynamic
//! plugin's forwarding dispatcher and logger call. Each record is re-emitted into the host's
//! `tracing` dispatcher under the target `hotswap::plugin`, with the fields `plugin`,
//! `generation`, `source` (`tracing` or `log`), `plugin_target` (the event's own target), and,
//! when not empty, `fields`, `spans`, `file` and `line`; the message is the plugin's. Records
//! from `log` go there too (not to the host's `log` logger), beside the runtime's own events: a
//! host that sees the runtime's logs sees its plugins'.

use hotswap_abi::logs::{HOST_TARGET, LogLevel, LogRecord, LogSink};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use tracing::Level;

/// The sink handed to each plugin of generation `generation` before its first hook.
pub(crate) fn sink(generation: u64) -> LogSink {
    LogSink { generation, enabled, emit }
}

/// Whether the host's dispatcher wants plugin events of `level` (under [`HOST_TARGET`]).
fn enabled(level: LogLevel) -> bool {
    catch_unwind(|| match level {
        LogLevel::Error => tracing::enabled!(target: HOST_TARGET, Level::ERROR),
        LogLevel::Warn => tracing::enabled!(target: HOST_TARGET, Level::WARN),
        LogLevel::Info => tracing::enabled!(target: HOST_TARGET, Level::INFO),
        LogLevel::Debug => tracing::enabled!(target: HOST_TARGET, Level::DEBUG),
        LogLevel::Trace => tracing::enabled!(target: HOST_TARGET, Level::TRACE),
    })
    .unwrap_or(false)
}

thread_local! {
    /// Set while this thread re-emits a record: a record emitted meanwhile (a subscriber that
    /// calls back into a plugin that logs) is dropped instead of recursing.
    static EMITTING: Cell<bool> = const { Cell::new(false) };
}

/// Re-emits one plugin record. A panic of the host's subscriber is caught here: it must not
/// unwind into the plugin's frames (another copy of std).
fn emit(record: &LogRecord<'_>) {
    if EMITTING.with(|busy| busy.replace(true)) {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| reemit(record)));
    EMITTING.with(|busy| busy.set(false));
}

fn reemit(r: &LogRecord<'_>) {
    let some = |s: &str| if s.is_empty() { None } else { Some(s.to_owned()) };
    let (fields, spans) = (some(r.fields), some(r.spans));
    macro_rules! reemit {
        ($level:expr) => {
            tracing::event!(
                target: HOST_TARGET,
                $level,
                plugin = r.plugin,
                generation = r.generation,
                source = r.source.name(),
                plugin_target = r.target,
                fields = fields.as_deref(),
                spans = spans.as_deref(),
                file = r.file,
                line = r.line,
                "{}",
                r.message
            )
        };
    }
    match r.level {
        LogLevel::Error => reemit!(Level::ERROR),
        LogLevel::Warn => reemit!(Level::WARN),
        LogLevel::Info => reemit!(Level::INFO),
        LogLevel::Debug => reemit!(Level::DEBUG),
        LogLevel::Trace => reemit!(Level::TRACE),
    }
}
