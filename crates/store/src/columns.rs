//! Readers of the column values a project row carries, cheaper than the
//! general ones of `postgres-types` and giving the same values.
//!
//! Why: a page of 20 projects reads 160 values. postgres-types' `&str`
//! compares the column type's name with three extension types (`ltree`,
//! `lquery`, `ltxtquery`) for every value, and its `OffsetDateTime` adds
//! the value to 2000-01-01 through `time`'s calendar arithmetic; together
//! they were a third of reading a row.

use std::error::Error;

use projects_domain::{ProjectStatus, Timestamp};
use tokio_postgres::types::{FromSql, Type};

type DecodeError = Box<dyn Error + Sync + Send>;

/// A text column as `&str`. A column of a domain over `text` (V6) is
/// described by its base type, so it is `text` here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub &'a str);

impl<'a> FromSql<'a> for Text<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(Self(std::str::from_utf8(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        // The types postgres-types reads as `&str`, but the extensions'.
        matches!(
            *ty,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
        )
    }
}

/// The `status` column as a `ProjectStatus`, told apart by its bytes (no
/// UTF-8 check of a text that must be one of three words anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status(pub ProjectStatus);

impl FromSql<'_> for Status {
    fn from_sql(_: &Type, raw: &[u8]) -> Result<Self, DecodeError> {
        ProjectStatus::ALL
            .into_iter()
            .find(|status| status.as_str().as_bytes() == raw)
            .map(Self)
            .ok_or_else(|| "not a project status".into())
    }

    fn accepts(ty: &Type) -> bool {
        Text::accepts(ty)
    }
}

/// A `timestamptz` column as a UTC timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instant(pub Timestamp);

/// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix seconds.
const POSTGRES_EPOCH: i64 = 946_684_800;

impl FromSql<'_> for Instant {
    fn from_sql(_: &Type, raw: &[u8]) -> Result<Self, DecodeError> {
        let bytes: [u8; 8] = raw
            .try_into()
            .map_err(|_| "invalid message length: timestamp not drained")?;
        // Microseconds since PostgreSQL's epoch; `infinity` and the like
        // are out of `time`'s range and refused, as postgres-types does.
        let micros = i64::from_be_bytes(bytes);
        let seconds = micros.div_euclid(1_000_000) + POSTGRES_EPOCH;
        let fraction = u32::try_from(micros.rem_euclid(1_000_000))?;
        let at = Timestamp::from_unix_timestamp(seconds)
            .and_then(|at| at.replace_microsecond(fraction))
            .map_err(|_| "value too large to decode")?;
        Ok(Self(at))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general<'a, T: FromSql<'a>>(ty: &Type, raw: &'a [u8]) -> Option<T> {
        T::from_sql(ty, raw).ok()
    }

    #[test]
    fn they_accept_what_postgres_types_accepts_for_our_columns() {
        for ty in [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME] {
            assert!(Text::accepts(&ty) && <&str>::accepts(&ty), "{ty}");
        }
        for ty in [Type::INT4, Type::BYTEA, Type::TIMESTAMP, Type::UUID] {
            assert!(!Text::accepts(&ty), "{ty}");
        }
        assert!(Instant::accepts(&Type::TIMESTAMPTZ));
        assert!(!Instant::accepts(&Type::TIMESTAMP));
        assert!(!Instant::accepts(&Type::INT8));
    }

    #[test]
    fn edge_timestamps() {
        for micros in [
            0,
            -1,
            1,
            999_999,
            -1_000_000,
            i64::MAX,
            i64::MIN,
            // 9999-12-31T23:59:59.999999Z and one microsecond later.
            252_423_993_599_999_999,
            252_423_993_600_000_000,
            // -9999-01-01T00:00:00Z and one microsecond earlier.
            -380_410_214_400_000_000,
            -380_410_214_400_000_001,
        ] {
            let raw = micros.to_be_bytes();
            assert_eq!(
                general::<Instant>(&Type::TIMESTAMPTZ, &raw).map(|at| at.0),
                general::<Timestamp>(&Type::TIMESTAMPTZ, &raw),
                "{micros}"
            );
        }
        for raw in [&[][..], &[0; 7], &[0; 9]] {
            assert!(Instant::from_sql(&Type::TIMESTAMPTZ, raw).is_err());
        }
    }

    #[test]
    fn statuses_are_read_by_their_words_only() {
        for status in ProjectStatus::ALL {
            let raw = status.as_str().as_bytes();
            assert_eq!(general::<Status>(&Type::TEXT, raw), Some(Status(status)));
        }
        for raw in [&b""[..], b"Active", b"active ", b"deleted", b"\xff"] {
            assert!(Status::from_sql(&Type::TEXT, raw).is_err(), "{raw:?}");
        }
    }

    proptest::proptest! {
        /// Any eight bytes: the same instant as postgres-types reads, or
        /// refused by both.
        #[test]
        fn fuzz_timestamps_read_as_postgres_types_reads_them(
            micros in proptest::prop_oneof![
                proptest::num::i64::ANY,
                // Years 1900 to 2200, where real values are.
                -3_155_673_600_000_000i64..6_311_347_200_000_000,
            ]
        ) {
            let raw = micros.to_be_bytes();
            proptest::prop_assert_eq!(
                general::<Instant>(&Type::TIMESTAMPTZ, &raw).map(|at| at.0),
                general::<Timestamp>(&Type::TIMESTAMPTZ, &raw)
            );
        }

        /// Any bytes: the same text as postgres-types reads, or refused by
        /// both.
        #[test]
        fn fuzz_text_reads_as_postgres_types_reads_it(
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            text in "\\PC{0,40}",
        ) {
            for raw in [&raw[..], text.as_bytes()] {
                proptest::prop_assert_eq!(
                    general::<Text>(&Type::TEXT, raw).map(|text| text.0),
                    general::<&str>(&Type::TEXT, raw)
                );
            }
        }
    }
}
