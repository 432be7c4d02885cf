//! JSON written straight into the response buffer for the types every
//! project response carries, byte for byte what their `Serialize` makes
//! through `serde_json` (the tests hold the two side by side).
//!
//! Why: through `serde_json` every string, keys, UUIDs and timestamps
//! included, goes through its escaping loop one byte at a time, and each
//! timestamp through a `String`; for a page of 20 projects that was a
//! fifth of the request's instructions. Here only the caller's text (a
//! name, a description, a cursor) is checked for characters to escape, in
//! one pass, and handed to `serde_json` only when it has any.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::Page;

/// A value that writes its own JSON, equal to its `Serialize` output.
pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);

    /// The JSON as a new buffer of about `capacity` bytes.
    fn to_json(&self, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(capacity);
        self.write_json(&mut out);
        out
    }
}

/// A JSON string of `text`, escaped as `serde_json` escapes it.
pub fn string(out: &mut Vec<u8>, text: &str) {
    if needs_escaping(text.as_bytes()) {
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Whether `bytes` has a control character, a quote or a backslash: what
/// JSON escapes. Eight bytes at a time (a byte-by-byte loop was most of the
/// cost of writing a page).
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `word` is below `n` (for n <= 0x80); exact, not
    // approximate: a byte with its high bit set never counts.
    let below = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word & HIGH;
    let equal = |word: u64, value: u64| below(word ^ (ONES * value), 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        if below(word, 0x20) | equal(word, u64::from(b'"')) | equal(word, u64::from(b'\\')) != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
}

/// A JSON string or `null`.
pub fn optional_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// A UUID as `serde` writes it in JSON: hyphenated, lower case, quoted;
/// one table lookup per byte (uuid's own formatter, through its generic
/// writer, took half again as long).
pub fn uuid(out: &mut Vec<u8>, id: &Uuid) {
    let mut text = [b'"'; 38];
    let mut at = 1;
    for (index, byte) in id.as_bytes().iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            text[at] = b'-';
            at += 1;
        }
        let hex = HEX_PAIRS[usize::from(*byte)];
        text[at..at + 2].copy_from_slice(&hex);
        at += 2;
    }
    out.extend_from_slice(&text);
}

/// Every byte as two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
        byte += 1;
    }
    table
};

/// A timestamp as `crate::rfc3339` writes it.
pub fn timestamp(out: &mut Vec<u8>, value: &OffsetDateTime) {
    // The text between its quotes, written in one piece.
    let mut quoted = [b'"'; crate::rfc3339::MAX_LEN + 2];
    match crate::rfc3339::format_utc(value, &mut quoted[1..]) {
        Some(len) => {
            quoted[len + 1] = b'"';
            out.extend_from_slice(&quoted[..len + 2]);
        }
        None => {
            // Not the fast path's shape (never a value PostgreSQL returns):
            // through `time`, as `Serialize` does. A timestamp `time` cannot
            // write fails the same way there, so `null` is never reached in
            // a response that `Serialize` would have written.
            let mut serializer = serde_json::Serializer::new(&mut *out);
            if crate::rfc3339::serialize(value, &mut serializer).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// An integer in JSON.
pub fn integer(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

impl<T: WriteJson> WriteJson for Page<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"data\":[");
        for (index, item) in self.data.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.extend_from_slice(b"],\"next_cursor\":");
        optional_string(out, self.next_cursor.as_deref());
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn fuzz_strings_are_escaped_as_serde_json_does(text in "\\PC*|[\\x00-\\x7f]{0,40}|.*[\"\\\\\\x00-\\x1f\\x7f].*") {
            let mut out = Vec::new();
            string(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_vec(&text).expect("json"));
        }

        #[test]
        fn fuzz_integers_are_written_as_serde_json_does(value in proptest::num::i64::ANY) {
            let mut out = Vec::new();
            integer(&mut out, value);
            prop_assert_eq!(out, serde_json::to_vec(&value).expect("json"));
        }
    }

    #[test]
    fn every_byte_at_every_place_is_found_or_not() {
        for byte in 0..=0x7fu8 {
            let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
            for len in 1..=17 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    assert_eq!(
                        needs_escaping(&bytes),
                        expected,
                        "{byte:#x} at {at} of {len}"
                    );
                }
            }
        }
        // Multi-byte characters never count.
        assert!(!needs_escaping("ü€😀 ÿ\u{80}\u{ff}\u{7ff}".as_bytes()));
    }

    #[test]
    fn edge_integers_and_uuids() {
        for value in [0, -1, 1, 9, 10, i64::MIN, i64::MAX, i64::from(i32::MAX)] {
            let mut out = Vec::new();
            integer(&mut out, value);
            assert_eq!(out, serde_json::to_vec(&value).expect("json"));
        }
        let id = Uuid::now_v7();
        let mut out = Vec::new();
        uuid(&mut out, &id);
        assert_eq!(out, serde_json::to_vec(&id).expect("json"));
    }
}
