//! The `tracing` dispatcher installed into the plugin's copy of `tracing`.

use super::format::FieldText;
use super::{Origin, enabled, forward};
use hotswap_abi::logs::{LogLevel, LogSource};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// A span of the plugin: its name, its fields as text and how many handles refer to it.
struct SpanData {
    name: &'static str,
    fields: String,
    refs: usize,
}

/// The plugin's spans and, per thread, the stack of spans it entered.
#[derive(Default)]
struct Spans {
    by_id: HashMap<u64, SpanData>,
    stacks: HashMap<u64, Vec<u64>>,
}

/// Every span of this library; one forwarder is installed per library.
static SPANS: Mutex<Option<Spans>> = Mutex::new(None);

/// Numbers for spans; 0 is not a valid span id.
static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

/// Numbers for threads.
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's number, 0 until first needed. A `Cell<u64>` has nothing to drop, so no
    /// thread-local destructor is registered (which would keep the library mapped).
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

fn thread_key() -> u64 {
    THREAD.with(|key| {
        if key.get() == 0 {
            key.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        key.get()
    })
}

fn spans() -> MutexGuard<'static, Option<Spans>> {
    SPANS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The spans the current thread is in, outermost first: `name{fields}` joined by `:`.
pub(super) fn current_spans() -> String {
    let guard = spans();
    let Some(spans) = guard.as_ref() else { return String::new() };
    let Some(stack) = spans.stacks.get(&thread_key()) else { return String::new() };
    let mut text = String::new();
    for id in stack {
        if let Some(span) = spans.by_id.get(id) {
            if !text.is_empty() {
                text.push(':');
            }
            text.push_str(span.name);
            if !span.fields.is_empty() {
                text.push('{');
                text.push_str(&span.fields);
                text.push('}');
            }
        }
    }
    text
}

fn level(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

/// Formats fields on the plugin's side; a panicking `Display` leaves a note instead.
fn field_text(record: impl FnOnce(&mut FieldText)) -> FieldText {
    let mut text = FieldText::default();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| record(&mut text)));
    if let Err(payload) = caught {
        let panic = crate::private::take_panic_message(payload);
        text.fields = format!("(formatting a field panicked: {panic})");
    }
    text
}

/// Forwards the plugin's `tracing` events to the host's sink and keeps the plugin's span
/// stacks, so each event names the spans it happened in.
#[derive(Default)]
pub(super) struct Forwarder;

impl Subscriber for Forwarder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The host's level can change at any time: ask it at every event.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        enabled(level(metadata.level()))
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let id = NEXT_SPAN.fetch_add(1, Ordering::Relaxed);
        let fields = field_text(|text| attributes.record(text));
        let name = attributes.metadata().name();
        let mut fields_text = fields.fields;
        if !fields.message.is_empty() {
            fields_text =
                if fields_text.is_empty() { fields.message } else { format!("{} {fields_text}", fields.message) };
        }
        spans().get_or_insert_with(Spans::default).by_id.insert(id, SpanData { name, fields: fields_text, refs: 1 });
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let more = field_text(|text| values.record(text)).fields;
        if let Some(data) = spans().as_mut().and_then(|s| s.by_id.get_mut(&span.into_u64())) {
            if !data.fields.is_empty() && !more.is_empty() {
                data.fields.push(' ');
            }
            data.fields.push_str(&more);
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let origin = Origin {
            source: LogSource::Tracing,
            level: level(metadata.level()),
            target: metadata.target(),
            file: metadata.file(),
            line: metadata.line(),
        };
        forward(origin, || {
            let mut text = FieldText::default();
            event.record(&mut text);
            (text.message, text.fields)
        });
    }

    fn enter(&self, span: &Id) {
        let key = thread_key();
        spans().get_or_insert_with(Spans::default).stacks.entry(key).or_default().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let key = thread_key();
        let mut guard = spans();
        let Some(spans) = guard.as_mut() else { return };
        if let Some(stack) = spans.stacks.get_mut(&key) {
            if let Some(at) = stack.iter().rposition(|id| *id == span.into_u64()) {
                stack.remove(at);
            }
            if stack.is_empty() {
                spans.stacks.remove(&key);
            }
        }
    }

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(data) = spans().as_mut().and_then(|s| s.by_id.get_mut(&span.into_u64())) {
            data.refs += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut guard = spans();
        let Some(spans) = guard.as_mut() else { return false };
        let id = span.into_u64();
        match spans.by_id.get_mut(&id) {
            Some(data) if data.refs > 1 => {
                data.refs -= 1;
                false
            }
            Some(_) => {
                spans.by_id.remove(&id);
                true
            }
            None => false,
        }
    }
}
