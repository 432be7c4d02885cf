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

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
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
        timestamp(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
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
        in_one_piece(
            |out| {
                let mut members = Members::first(out);
                fields.record(&mut members);
                members.result
            },
            &mut writer,
        )
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        in_one_piece(
            |out| {
                let mut members = if first {
                    Members::first(out)
                } else {
                    Members::continuing(out)
                };
                fields.record(&mut members);
                members.result
            },
            &mut current.fields,
        )
    }
}

thread_local! {
    /// Where a span's members are written before they go into its fields.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Writes what `write` writes into `out` with one `write_str`: a span's
/// fields are a new `String` for each span, which grew by doubling, one
/// reallocation after another, as members were written into it one piece at
/// a time; written whole, it is allocated once at its size.
fn in_one_piece(
    write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result,
    out: &mut dyn fmt::Write,
) -> fmt::Result {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            scratch.clear();
            write(&mut *scratch)?;
            out.write_str(&scratch)
        }
        // A field's `Debug` or `Display` made a span of its own: written
        // straight into its place.
        Err(_) => write(out),
    })
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
        // In one piece: `write!` takes a few hundred instructions for each
        // (every request's status and duration).
        self.member(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
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

/// Now, in RFC 3339 UTC with microseconds (`2026-11-30T04:57:31.182214Z`),
/// as tracing-subscriber's `SystemTime` writes it, without a `write!` per
/// component.
fn timestamp(out: &mut dyn fmt::Write) -> fmt::Result {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    out.write_str(rfc3339(since_epoch, &mut [0; 27]))
}

fn rfc3339(since_epoch: std::time::Duration, text: &mut [u8; 27]) -> &str {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    *text = *b"0000-00-00T00:00:00.000000Z";
    digits(&mut text[0..4], year);
    digits(&mut text[5..7], month);
    digits(&mut text[8..10], day);
    digits(&mut text[11..13], of_day / 3600);
    digits(&mut text[14..16], of_day / 60 % 60);
    digits(&mut text[17..19], of_day % 60);
    digits(&mut text[20..26], u64::from(since_epoch.subsec_micros()));
    std::str::from_utf8(text).unwrap_or("")
}

/// `value`'s last decimal digits, zero-padded, into `into`.
fn digits(into: &mut [u8], mut value: u64) {
    for digit in into.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The proleptic Gregorian (year, month, day) of a day since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
        // Nearly all text has nothing to escape: found out eight bytes at a
        // time, then written in one piece.
        if !needs_escape(text.as_bytes()) {
            return self.0.write_str(text);
        }
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

/// Whether any byte is a control character, `"` or `\`: per word of eight
/// bytes, "has a byte below n" and "has a byte equal to b" by the usual
/// bit tricks (exact for n <= 128), the remainder byte by byte.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH != 0;
    let equal = |word: u64, byte: u8| below(word ^ (ONES * u64::from(byte)), 1);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let word = u64::from_ne_bytes(eight);
        if below(word, 0x20) || equal(word, b'"') || equal(word, b'\\') {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
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

    proptest::proptest! {
        /// Any text: the escaped form reads back as the text, and the fast
        /// check agrees with a byte-by-byte one.
        #[test]
        fn fuzz_escaped_text_reads_back(text in "(\\PC|[\\x00-\\x1f\"\\\\])*") {
            let naive = text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escape(text.as_bytes()), naive);
            let mut json = String::new();
            string(&mut json, &text).expect("a String takes any text");
            let back: String = serde_json::from_str(&json).expect("valid JSON");
            proptest::prop_assert_eq!(back, text);
        }
    }

    proptest::proptest! {
        /// Any integer field reads back as itself.
        #[test]
        fn fuzz_integers_read_back(unsigned in proptest::num::u64::ANY, signed in proptest::num::i64::ANY) {
            let lines = lines(|| tracing::warn!(unsigned, signed, "numbers"));
            proptest::prop_assert_eq!(lines[0]["unsigned"].as_u64(), Some(unsigned));
            proptest::prop_assert_eq!(lines[0]["signed"].as_i64(), Some(signed));
        }
    }

    #[test]
    fn integers_at_their_bounds() {
        let lines =
            lines(|| tracing::warn!(min = i64::MIN, zero = 0_i64, max = u64::MAX, "bounds"));
        assert_eq!(lines[0]["min"].as_i64(), Some(i64::MIN));
        assert_eq!(lines[0]["zero"].as_i64(), Some(0));
        assert_eq!(lines[0]["max"].as_u64(), Some(u64::MAX));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = |secs: u64, micros: u32| {
            let since = std::time::Duration::new(secs, micros * 1000);
            rfc3339(since, &mut [0; 27]).to_owned()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_709_208_000, 999_999), "2024-02-29T12:00:00.999999Z");
        assert_eq!(at(1_795_000_000, 120_000), "2026-11-18T11:06:40.120000Z");
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59.000000Z");
        // Four centuries of days, each the calendar successor of the one
        // before (the Gregorian leap rules written out here).
        let month_length = |year: u64, month: u64| match month {
            2 if year.is_multiple_of(4)
                && (!year.is_multiple_of(100) || year.is_multiple_of(400)) =>
            {
                29
            }
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut previous = civil_from_days(0);
        for day in 1..146_097_u64 {
            let (year, month, dom) = previous;
            let expected = if dom < month_length(year, month) {
                (year, month, dom + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
            previous = civil_from_days(day);
            assert_eq!(previous, expected, "day {day}");
        }
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
    fn a_field_that_makes_a_span_while_written_is_written_whole() {
        struct Nested;
        impl fmt::Display for Nested {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let inner = tracing::info_span!("inner", depth = 2, text = "x");
                inner.record("depth", 3);
                f.write_str("nested")
            }
        }
        let lines = lines(|| {
            let outer = tracing::info_span!(
                "outer",
                first = %Nested,
                later = tracing::field::Empty,
            );
            outer.record("later", tracing::field::display(Nested));
            outer.in_scope(|| tracing::info!("inside"));
        });
        let [inside] = &lines[..] else {
            panic!("one line expected: {lines:?}")
        };
        assert_eq!(
            inside["spans"],
            serde_json::json!([{ "first": "nested", "later": "nested", "name": "outer" }])
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
