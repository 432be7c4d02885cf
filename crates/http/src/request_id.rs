//! The request id: what `X-Request-Id` carries both ways, kept in the
//! request's extensions by the outer layer (`middleware::outer`) for the problem bodies
//! and the logs.

use actix_web::http::header::{HeaderName, HeaderValue};

/// The header that carries the id both ways.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-chosen id we keep.
const MAX_LEN: usize = 128;

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A client's id is kept when it is 1 to 128 visible ASCII characters, so
/// that it cannot break a log line or a header.
pub(crate) fn sane(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    let visible = |byte: &u8| (0x21..=0x7e).contains(byte);
    (!bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(visible))
        .then(|| String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_sane_client_ids() {
        let ok = HeaderValue::from_static("abc-123_XYZ.~!");
        assert_eq!(sane(&ok).as_deref(), Some("abc-123_XYZ.~!"));
        assert_eq!(sane(&HeaderValue::from_static("")), None);
        assert_eq!(sane(&HeaderValue::from_static("has space")), None);
        let long = "a".repeat(129);
        assert_eq!(sane(&HeaderValue::from_str(&long).expect("valid")), None);
        let max = "a".repeat(128);
        assert_eq!(
            sane(&HeaderValue::from_str(&max).expect("valid")),
            Some(max)
        );
        let non_ascii = HeaderValue::from_bytes("é".as_bytes()).expect("valid");
        assert_eq!(sane(&non_ascii), None);
    }

    proptest::proptest! {
        /// Any header bytes: a kept id is exactly the client's, 1 to 128
        /// visible ASCII characters; anything else is dropped.
        #[test]
        fn fuzz_request_ids_are_kept_only_when_sane(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()); };
            match sane(&value) {
                Some(kept) => {
                    proptest::prop_assert_eq!(kept.as_bytes(), &bytes[..]);
                    proptest::prop_assert!((1..=MAX_LEN).contains(&kept.len()));
                    proptest::prop_assert!(kept.bytes().all(|b| b.is_ascii_graphic()));
                }
                None => proptest::prop_assert!(
                    bytes.is_empty() || bytes.len() > MAX_LEN || !bytes.iter().all(u8::is_ascii_graphic)
                ),
            }
        }
    }
}
