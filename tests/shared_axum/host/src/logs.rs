//! A `tracing` layer that records the events of the plugin and of `hotswap_axum`, with the
//! fields that name plugin and generation.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

struct Recorder(Logs);

#[derive(Default)]
struct Fields(String, String, Option<String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.2 = Some(value.to_string());
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else if matches!(field.name(), "plugin" | "generation" | "id" | "name") {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
}

impl Logs {
    pub fn layer<S: tracing::Subscriber + for<'a> LookupSpan<'a>>(&self) -> impl tracing_subscriber::Layer<S> {
        Recorder(self.clone())
    }

    /// The recorded lines containing `needle`, sorted.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        let mut lines: Vec<String> = self.0.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect();
        lines.sort();
        lines
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let span = ctx.span(id).expect("new span");
        span.extensions_mut().insert(format!("{}{{{}}}", span.name(), fields.1.trim_start()));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        // tracing-log gives a `log` record the target `log` and its own as `log.target`.
        let target = fields.2.clone().unwrap_or_else(|| meta.target().to_string());
        if !(target.starts_with("hotswap_axum") || target.starts_with("shared_axum_web")) {
            return;
        }
        let spans: Vec<String> = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().filter_map(|s| s.extensions().get::<String>().cloned()).collect())
            .unwrap_or_default();
        let within = if spans.is_empty() { String::new() } else { format!(" in {}", spans.join(":")) };
        let line = format!("LOG {} {target}: {}{}{within}", meta.level(), fields.0, fields.1);
        self.0.0.lock().unwrap().push(line);
    }
}
