//! The `log` logger installed into the plugin's copy of `log`.

use super::{Origin, enabled, forward};
use hotswap_abi::logs::{LogLevel, LogSource};

/// The one logger of this library's `log`.
pub(super) static LOGGER: Forward = Forward;

/// Forwards `log` records to the host's sink.
pub(super) struct Forward;

fn level(level: log::Level) -> LogLevel {
    match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug => LogLevel::Debug,
        log::Level::Trace => LogLevel::Trace,
    }
}

impl log::Log for Forward {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        enabled(level(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = level(record.level());
        // Asked before formatting: a record the host filters out costs one call.
        if !enabled(level) {
            return;
        }
        let origin =
            Origin { source: LogSource::Log, level, target: record.target(), file: record.file(), line: record.line() };
        forward(origin, || (record.args().to_string(), String::new()));
    }

    fn flush(&self) {}
}
