//! Formats `tracing` fields into text on the plugin's side.

use std::fmt::Write;
use tracing::field::{Field, Visit};

/// Collects an event's or span's fields: `message` apart, the others as `name=value` joined by
/// spaces (`Debug` of each value, strings as written).
#[derive(Default)]
pub(super) struct FieldText {
    pub message: String,
    pub fields: String,
}

impl FieldText {
    fn field(&mut self, name: &str) -> &mut String {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        self.fields.push_str(name);
        self.fields.push('=');
        &mut self.fields
    }
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.field(field.name()).push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let out = if field.name() == "message" { &mut self.message } else { self.field(field.name()) };
        let _ = write!(out, "{value:?}");
    }
}
