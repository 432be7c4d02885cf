//! Timestamps in JSON as RFC 3339 (`2026-01-02T03:04:05.123456Z`), for
//! `#[serde(with = "crate::rfc3339")]`: the very text `time::serde::rfc3339`
//! writes (the tests hold the two side by side), formatted into a stack
//! buffer instead of a fresh `String` through `time`'s general formatter.
//! Every project in a list has two timestamps, so this was a visible share
//! of a list's cost. Values `time` writes differently from the fast path's
//! shape (an offset other than UTC, a year outside 0..=9999) go to `time`.

use serde::{Deserializer, Serializer};
use time::OffsetDateTime;

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the longest text of the fast path.
pub(crate) const MAX_LEN: usize = 30;

pub fn serialize<S: Serializer>(value: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0u8; MAX_LEN];
    match format_utc(value, &mut buffer) {
        Some(len) => {
            // Only ASCII digits and punctuation were written.
            let text = std::str::from_utf8(&buffer[..len]).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(text)
        }
        None => time::serde::rfc3339::serialize(value, serializer),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    time::serde::rfc3339::deserialize(deserializer)
}

/// Writes `value` into `out` (at least `MAX_LEN` bytes) and returns the
/// length, when it is a UTC instant of a four-digit year; else `None`.
pub(crate) fn format_utc(value: &OffsetDateTime, out: &mut [u8]) -> Option<usize> {
    if !value.offset().is_utc() {
        return None;
    }
    let year = u32::try_from(value.year())
        .ok()
        .filter(|year| *year <= 9999)?;
    let (month, day) = (u8::from(value.month()), value.day());
    let (hour, minute, second, nanos) = value.to_hms_nano();
    pair(&mut out[0..2], year / 100);
    pair(&mut out[2..4], year % 100);
    out[4] = b'-';
    pair(&mut out[5..7], u32::from(month));
    out[7] = b'-';
    pair(&mut out[8..10], u32::from(day));
    out[10] = b'T';
    pair(&mut out[11..13], u32::from(hour));
    out[13] = b':';
    pair(&mut out[14..16], u32::from(minute));
    out[16] = b':';
    pair(&mut out[17..19], u32::from(second));
    let mut len = 19;
    if nanos != 0 {
        // As `time` does: nine digits, trailing zeros dropped.
        out[19] = b'.';
        let (millis, below) = (nanos / 1_000_000, nanos % 1_000_000);
        let (micros, nanos) = (below / 1000, below % 1000);
        for (at, group) in [(20, millis), (23, micros), (26, nanos)] {
            out[at] = b'0' + (group / 100) as u8;
            pair(&mut out[at + 1..at + 3], group % 100);
        }
        len = 29;
        while out[len - 1] == b'0' {
            len -= 1;
        }
    }
    out[len] = b'Z';
    Some(len + 1)
}

/// "00" to "99": two digits per lookup (a division per digit was most of
/// the cost of a timestamp).
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `value` (below 100) as two digits.
fn pair(out: &mut [u8], value: u32) {
    let at = (value as usize % 100) * 2;
    out.copy_from_slice(&PAIRS[at..at + 2]);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use time::{Duration, UtcOffset};

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Fast(#[serde(with = "super")] OffsetDateTime);

    #[derive(Serialize)]
    struct Reference(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

    fn both(value: OffsetDateTime) -> (String, String) {
        (
            serde_json::to_string(&Fast(value)).expect("fast"),
            serde_json::to_string(&Reference(value)).expect("reference"),
        )
    }

    #[test]
    fn writes_what_time_writes() {
        let base = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        for nanos in [
            0,
            1,
            10,
            120_000,
            123_456_000,
            123_456_789,
            999_999_999,
            500_000_000,
        ] {
            let value = base + Duration::nanoseconds(nanos);
            let (fast, reference) = both(value);
            assert_eq!(fast, reference);
        }
        assert_eq!(
            both(base + Duration::microseconds(123_456)).0,
            "\"2026-01-02T03:04:05.123456Z\""
        );
        // Not the fast path's shape: handed to `time`, same text.
        let offset = base.to_offset(UtcOffset::from_hms(2, 30, 0).expect("offset"));
        let (fast, reference) = both(offset);
        assert_eq!(fast, reference);
        assert_eq!(fast, "\"2026-01-02T05:34:05+02:30\"");
        let far = time::macros::datetime!(-0001-01-01 00:00:00 UTC);
        assert_eq!(
            serde_json::to_string(&Fast(far)).is_err(),
            serde_json::to_string(&Reference(far)).is_err()
        );
    }

    #[test]
    fn reads_back_what_it_writes() {
        let value = time::macros::datetime!(2026-11-30 04:31:11.000042 UTC);
        let text = serde_json::to_string(&Fast(value)).expect("write");
        assert_eq!(
            serde_json::from_str::<Fast>(&text).expect("read"),
            Fast(value)
        );
    }

    proptest! {
        #[test]
        fn fuzz_writes_what_time_writes(seconds in 0i64..253_402_300_799, nanos in 0i64..1_000_000_000, micros in proptest::bool::ANY) {
            // Half the cases with microsecond precision, as PostgreSQL keeps.
            let nanos = if micros { nanos / 1000 * 1000 } else { nanos };
            let value = OffsetDateTime::from_unix_timestamp(seconds).expect("in range")
                + Duration::nanoseconds(nanos);
            let (fast, reference) = both(value);
            prop_assert_eq!(fast, reference);
        }
    }
}
