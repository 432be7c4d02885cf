//! The request id: what `X-Request-Id` carries both ways, kept in the
//! request's extensions by the outer layer (`middleware::outer`) for the problem bodies
//! and the logs.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::Bytes;

/// The header that carries the id both ways.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-chosen id we keep.
const MAX_LEN: usize = 128;

/// The id of the request being served, kept as the header value it is
/// answered with: the client's value is shared, not copied, and a new id is
/// written once and shared by the response, the extensions and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The client's id when it is sane, else a new UUID (v7).
    pub(crate) fn of(req: &ServiceRequest) -> Self {
        match req.headers().get(&X_REQUEST_ID) {
            Some(value) if sane(value) => Self(value.clone()),
            _ => Self::new_v7(),
        }
    }

    /// A new UUID (v7) in its hyphenated lowercase form, written into its
    /// buffer without the formatter and shared from then on.
    fn new_v7() -> Self {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
        Self(
            HeaderValue::from_maybe_shared(Bytes::from_owner(text))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        )
    }

    /// An id as given; `None` when it is not sane.
    #[cfg(test)]
    pub(crate) fn new(id: &str) -> Option<Self> {
        let value = HeaderValue::from_str(id).ok()?;
        sane(&value).then_some(Self(value))
    }

    /// The id: visible ASCII only (checked when it was kept).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// The header value that answers the request.
    pub(crate) fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// A client's id is kept when it is 1 to 128 visible ASCII characters, so
/// that it cannot break a log line or a header.
pub(crate) fn sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    let visible = |byte: &u8| (0x21..=0x7e).contains(byte);
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(visible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_sane_client_ids() {
        let ok = HeaderValue::from_static("abc-123_XYZ.~!");
        assert!(sane(&ok));
        assert!(!sane(&HeaderValue::from_static("")));
        assert!(!sane(&HeaderValue::from_static("has space")));
        let long = "a".repeat(129);
        assert!(!sane(&HeaderValue::from_str(&long).expect("valid")));
        let max = "a".repeat(128);
        assert!(sane(&HeaderValue::from_str(&max).expect("valid")));
        let non_ascii = HeaderValue::from_bytes("é".as_bytes()).expect("valid");
        assert!(!sane(&non_ascii));
    }

    #[test]
    fn the_clients_id_is_kept_when_sane_else_a_new_uuid_v7() {
        let with = |id: &'static str| {
            let req = actix_web::test::TestRequest::default()
                .insert_header((X_REQUEST_ID, id))
                .to_srv_request();
            RequestId::of(&req)
        };
        assert_eq!(with("client-id-1").as_str(), "client-id-1");
        assert_eq!(with("client-id-1").header_value(), "client-id-1");
        for insane in ["", "has space"] {
            let new = with(insane);
            let uuid = uuid::Uuid::parse_str(new.as_str()).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(new.as_str(), uuid.hyphenated().to_string());
            assert_eq!(new.header_value(), new.as_str());
        }
        let none = RequestId::of(&actix_web::test::TestRequest::default().to_srv_request());
        assert_ne!(
            none,
            RequestId::of(&actix_web::test::TestRequest::default().to_srv_request())
        );
    }

    proptest::proptest! {
        /// Any header bytes: the id is exactly the client's when they are 1
        /// to 128 visible ASCII characters, else a new UUID.
        #[test]
        fn fuzz_request_ids_are_kept_only_when_sane(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()); };
            let req = actix_web::test::TestRequest::default()
                .insert_header((X_REQUEST_ID, value))
                .to_srv_request();
            let id = RequestId::of(&req);
            if !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(u8::is_ascii_graphic) {
                proptest::prop_assert_eq!(id.as_str().as_bytes(), &bytes[..]);
            } else {
                let uuid = uuid::Uuid::parse_str(id.as_str());
                proptest::prop_assert_eq!(uuid.map(|uuid| uuid.get_version_num()), Ok(7));
            }
        }
    }
}
