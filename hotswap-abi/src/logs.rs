//! Plugin logs: how a plugin's `tracing` events and `log` records reach the host.
//!
//! Each dynamic plugin links its own copy of `tracing` and `log`, whose global dispatcher and
//! logger are the plugin's own, distinct from the host's. At load, before its first hook,
//! the host hands the plugin a [`LogSink`]: two host functions and the generation number. The
//! plugin's copy of `hotswap-runtime` installs a dispatcher into its `tracing` and a logger
//! into its `log` that ask [`LogSink::enabled`] whether the host wants a level (so a filtered
//! event is never formatted), format the event on the plugin's side and pass the text to
//! [`LogSink::emit`] as a [`LogRecord`] of borrowed strings, valid for that call only. The
//! host re-emits it into its own `tracing` dispatcher under the target [`HOST_TARGET`].
//! Nothing of the plugin's memory is kept by the host, and the host's functions outlive
//! every plugin.
//!
//! Plugins on the shared route (one `tracing` and `log` for the process) get no sink: their
//! events already reach the host's subscriber.

/// The target of the events the host re-emits for its plugins.
pub const HOST_TARGET: &str = "hotswap::plugin";

/// A record's level, as `tracing` and `log` both name them.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `ERROR`.
    Error = 1,
    /// `WARN`.
    Warn = 2,
    /// `INFO`.
    Info = 3,
    /// `DEBUG`.
    Debug = 4,
    /// `TRACE`.
    Trace = 5,
}

/// Which of the plugin's logging crates a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogSource {
    /// A `tracing` event.
    Tracing,
    /// A `log` record.
    Log,
}

impl LogSource {
    /// `"tracing"` or `"log"`, the value of the re-emitted event's `source` field.
    pub const fn name(self) -> &'static str {
        match self {
            LogSource::Tracing => "tracing",
            LogSource::Log => "log",
        }
    }
}

/// One event of a plugin, formatted on the plugin's side. Every string is borrowed for the
/// duration of the [`LogSink::emit`] call only.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// The generation the plugin's library was loaded in.
    pub generation: u64,
    /// `tracing` or `log`.
    pub source: LogSource,
    /// The level.
    pub level: LogLevel,
    /// The event's own target (by default the plugin's module path).
    pub target: &'a str,
    /// The message (`tracing`'s `message` field, `log`'s formatted arguments).
    pub message: &'a str,
    /// The event's other fields, `name=value` separated by spaces; empty if none.
    pub fields: &'a str,
    /// The plugin's spans the event happened in, outermost first, `name{fields}` joined by
    /// `:`; empty if none.
    pub spans: &'a str,
    /// The source file of the call, when known.
    pub file: Option<&'a str>,
    /// The line of the call, when known.
    pub line: Option<u32>,
}

/// What the host hands a plugin at load. Plain host functions and a number: a plugin may
/// keep it for as long as its library is mapped, since the host's code outlives it.
#[derive(Debug, Clone, Copy)]
pub struct LogSink {
    /// The generation the plugin's library is loaded in.
    pub generation: u64,
    /// Whether the host currently wants events of this level from plugins.
    pub enabled: fn(LogLevel) -> bool,
    /// Re-emits one record on the host's side. Never unwinds (the host catches its own
    /// panics).
    pub emit: fn(&LogRecord<'_>),
}
