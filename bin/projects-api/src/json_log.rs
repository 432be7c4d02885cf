//! The JSON log lines, written straight into the line.
//!
//! The same lines as tracing-subscriber's `json()` format with
//! `flatten_event(true)`, `with_current_span(false)` and
//! `with_span_list(true)`: `timestamp`, `level`, the event's fields, `target`,
//! and `spans` (root first, each with its fields and `name`) when the event
//! is inside one. What differs is the cost: that format keeps a span's
//! fields as a JSON object, parses it and writes it again each time a field
//! is recorded (the request span gets three) and again for every event in
//! the span, which made the access log line of each request cost about
//! 80,000 instructions, more than the whole request without it. Here a
//! span's fields are kept as the JSON members they will be written as
//! (`"key":value,...`), a recorded field is appended, and an event copies
//! them into its line.
//!
//! The keys of a span come in the order they were set (the other format
//! sorted them); a field recorded twice would appear twice (JSON readers
//! take the last): the request span records each of its fields once.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format: one JSON object per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

/// The field format of spans: JSON object members, comma-separated,
/// without the braces.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonMembers;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level().as_str())?;
        let mut members = Members::continuing(&mut writer);
        event.record(&mut members);
        members.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        if let Some(scope) = ctx.event_scope() {
            writer.write_str(",\"spans\":[")?;
            for (i, span) in scope.from_root().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                writer.write_char('{')?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.fields.is_empty()
                {
                    writer.write_str(&fields.fields)?;
                    writer.write_char(',')?;
                }
                writer.write_str("\"name\":")?;
                string(&mut writer, span.name())?;
                writer.write_char('}')?;
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

impl<'w> FormatFields<'w> for JsonMembers {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut members = Members::first(&mut writer);
        fields.record(&mut members);
        members.result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut members = if current.fields.is_empty() {
            Members::first(&mut current.fields)
        } else {
            Members::continuing(&mut current.fields)
        };
        fields.record(&mut members);
        members.result
    }
}

/// Writes visited fields as JSON members.
struct Members<'a> {
    out: &'a mut dyn fmt::Write,
    /// Whether the next member needs a comma before it.
    comma: bool,
    result: fmt::Result,
}

impl<'a> Members<'a> {
    /// For an empty list: no comma before the first member.
    fn first(out: &'a mut dyn fmt::Write) -> Self {
        Self {
            out,
            comma: false,
            result: Ok(()),
        }
    }

    /// After other members: a comma before each.
    fn continuing(out: &'a mut dyn fmt::Write) -> Self {
        Self {
            out,
            comma: true,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            if self.comma {
                self.out.write_char(',')?;
            }
            string(self.out, name)?;
            self.out.write_char(':')?;
            value(self.out)
        })();
        self.comma = true;
    }
}

impl Visit for Members<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity (serde_json writes null too).
        self.member(field, |out| {
            if value.is_finite() {
                write!(out, "{value:?}")
            } else {
                out.write_str("null")
            }
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| string(out, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `text` as a JSON string.
fn string(out: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string.
struct Escaped<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// The lines `emit` logs, parsed.
    fn lines(emit: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .fmt_fields(JsonMembers)
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text =
            String::from_utf8(buffer.0.lock().expect("not poisoned").clone()).expect("UTF-8");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn an_event_outside_spans_is_one_flat_object() {
        let lines = lines(|| {
            tracing::warn!(
                user.id = 7,
                ok = true,
                ratio = 0.5,
                "a \"quoted\"\nmessage\u{1}"
            );
        });
        let [line] = &lines[..] else {
            panic!("one line expected: {lines:?}")
        };
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "a \"quoted\"\nmessage\u{1}");
        assert_eq!(line["user.id"], 7);
        assert_eq!(line["ok"], true);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["target"], module_path!());
        assert!(line.get("spans").is_none(), "{line}");
        let timestamp = line["timestamp"].as_str().expect("a string");
        assert!(
            timestamp.len() == 27 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "{timestamp}"
        );
    }

    #[test]
    fn events_in_spans_carry_the_span_list_with_recorded_fields() {
        let lines = lines(|| {
            let outer = tracing::info_span!(
                "request",
                request_id = %"abc",
                http.route = tracing::field::Empty,
                http.status = tracing::field::Empty,
            );
            outer.record("http.route", "/api/v1/projects/{id}");
            outer.record("http.status", 200_u16);
            let inner = outer.in_scope(|| tracing::info_span!("empty"));
            inner.in_scope(|| tracing::info!(error = ?Some("x\\y"), "inside"));
            outer.in_scope(|| tracing::info!("request finished"));
        });
        let [inside, finished] = &lines[..] else {
            panic!("two lines expected: {lines:?}")
        };
        assert_eq!(inside["error"], "Some(\"x\\\\y\")");
        assert_eq!(inside["spans"][0]["name"], "request");
        assert_eq!(inside["spans"][1], serde_json::json!({ "name": "empty" }));
        assert_eq!(
            finished["spans"],
            serde_json::json!([{
                "request_id": "abc",
                "http.route": "/api/v1/projects/{id}",
                "http.status": 200,
                "name": "request",
            }])
        );
        assert_eq!(finished["message"], "request finished");
    }
}
