//! A `tracing` layer that records the events of the plugin and of `hotswap_axum`, with the
//! fields that name plugin and generation.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

struct Recorder(Logs);

#[derive(Default)]
struct Fields(String, String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else if matches!(field.name(), "plugin" | "generation" | "id") {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
}

impl Logs {
    pub fn layer<S: tracing::Subscriber>(&self) -> impl tracing_subscriber::Layer<S> {
        Recorder(self.clone())
    }

    /// The recorded lines containing `needle`, sorted.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        let mut lines: Vec<String> = self.0.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect();
        lines.sort();
        lines
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !(meta.target().starts_with("hotswap_axum") || meta.target().starts_with("shared_axum_web")) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format!("LOG {} {}: {}{}", meta.level(), meta.target(), fields.0, fields.1);
        self.0.0.lock().unwrap().push(line);
    }
}
