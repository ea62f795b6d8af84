//! The plugin side of plugin logs (`hotswap_abi::logs`): compiled into every plugin through
//! its own copy of this crate and installed by the generated registry when the host hands over
//! its [`LogSink`] (before the plugin's first hook). The plugin's own copies of `tracing` and `log` then
//! forward every event the host wants to the host's functions, formatted here, so the host
//! keeps nothing of the plugin's memory.
//!
//! Nothing here uses a thread-local with a destructor (a library with pending thread-local
//! destructors is never unmapped by `dlclose`): the span stacks live in one map keyed by a
//! per-thread number kept in a `Cell<u64>`.

mod format;
mod logger;
mod subscriber;

use hotswap_abi::logs::{LogLevel, LogRecord, LogSink};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

/// The plugin's name and the host's sink, set once per library.
static SINK: OnceLock<(&'static str, LogSink)> = OnceLock::new();

/// Installs the forwarding dispatcher and logger into this library's copies of `tracing` and
/// `log`. Called by the generated registry; the first sink wins (one per library). A
/// dispatcher or logger the plugin set itself before is kept (then that crate's events are
/// not forwarded). Never unwinds.
pub fn install(plugin: &'static str, sink: LogSink) {
    let done = catch_unwind(AssertUnwindSafe(|| {
        if SINK.set((plugin, sink)).is_err() {
            return;
        }
        let _ = tracing::dispatcher::set_global_default(tracing::Dispatch::new(subscriber::Forwarder));
        if log::set_logger(&logger::LOGGER).is_ok() {
            // The logger asks the host for each record's level before formatting it.
            log::set_max_level(log::LevelFilter::Trace);
        }
    }));
    if let Err(payload) = done {
        // Dropped here, in the std that raised it.
        let _ = crate::private::take_panic_message(payload);
    }
}

/// Whether the host wants records of `level`; false before a sink is installed.
fn enabled(level: LogLevel) -> bool {
    SINK.get().is_some_and(|(_, sink)| (sink.enabled)(level))
}

/// The fields of a record besides the plugin's name, generation and spans.
struct Parts<'a> {
    source: hotswap_abi::logs::LogSource,
    level: LogLevel,
    target: &'a str,
    message: &'a str,
    fields: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
}

/// Hands one formatted record to the host, with the spans the current thread is in.
fn emit(parts: Parts<'_>) {
    let Some((plugin, sink)) = SINK.get() else { return };
    let spans = subscriber::current_spans();
    (sink.emit)(&LogRecord {
        plugin,
        generation: sink.generation,
        source: parts.source,
        level: parts.level,
        target: parts.target,
        message: parts.message,
        fields: parts.fields,
        spans: &spans,
        file: parts.file,
        line: parts.line,
    });
}

/// Where a record comes from: its crate, level, target and call site.
struct Origin<'a> {
    source: hotswap_abi::logs::LogSource,
    level: LogLevel,
    target: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
}

/// Runs `format` (the plugin's `Display`/`Debug` code, giving the message and the other
/// fields) and forwards its record; a panic while formatting is caught here, in the plugin's
/// std, and reported to the host in place of the event, at the event's level.
fn forward(origin: Origin<'_>, format: impl FnOnce() -> (String, String)) {
    let Origin { source, level, target, file, line } = origin;
    match catch_unwind(AssertUnwindSafe(format)) {
        Ok((message, fields)) => emit(Parts { source, level, target, message: &message, fields: &fields, file, line }),
        Err(payload) => {
            let panic = crate::private::take_panic_message(payload);
            let message = format!("(an event of this plugin was dropped: formatting it panicked: {panic})");
            emit(Parts { source, level, target, message: &message, fields: "", file, line })
        }
    }
}
