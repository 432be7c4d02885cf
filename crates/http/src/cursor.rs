//! Opaque list cursors: a list's keyset position (a project list's as
//! [`ProjectCursor::to_bytes`], the others' as JSON: a user id, a session's
//! key), followed by an HMAC-SHA256 tag, in base64url. The tag makes any
//! change detectable, so a cursor the server did not issue (tampered,
//! forged, truncated, or issued for another list) is a 400 before anything
//! is parsed or queried.
//! The key is derived from the JWT secret with a purpose label that names
//! the list, so that a cursor tag can never double as a token signature,
//! nor one list's cursor pass for another's. The keys are derived once, at
//! start ([`ListCursors`]), not per request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use projects_domain::ProjectCursor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// The purpose label of the derived keys, followed by the list's name; bump
/// the version to invalidate every cursor in circulation.
const KEY_LABEL: &[u8] = b"projects-api list cursor v1: ";
const TAG_LEN: usize = 32;
/// Far above any real cursor (a 200-character name is the largest part);
/// longer input is refused before decoding.
const MAX_CURSOR_CHARS: usize = 2_048;

/// Signs and verifies cursors.
#[derive(Clone)]
pub struct CursorCodec {
    /// The HMAC keyed once (its padded key blocks hashed), cloned per use.
    mac: HmacSha256,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorCodec").finish_non_exhaustive()
    }
}

/// The cursor codec of every list, keyed once from the JWT secret.
#[derive(Debug, Clone)]
pub struct ListCursors {
    pub projects: CursorCodec,
    pub users: CursorCodec,
    pub sessions: CursorCodec,
}

impl ListCursors {
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            // "v2": the payload is `ProjectCursor::to_bytes`, no longer JSON,
            // so a cursor issued before does not verify (a 400, as any
            // cursor this server did not issue for this list).
            projects: CursorCodec::from_secret(secret, "projects v2"),
            users: CursorCodec::from_secret(secret, "users"),
            sessions: CursorCodec::from_secret(secret, "sessions"),
        }
    }
}

/// The one answer to every bad cursor: which check failed is nobody's
/// business but ours.
fn bad_cursor() -> ApiError {
    ApiError::BadRequest(
        "`cursor` is not a cursor this server issued for this list: start again without it".into(),
    )
}

impl CursorCodec {
    /// The codec of one list (`"projects"`, `"users"`), keyed from `secret`
    /// (the JWT secret).
    pub fn from_secret(secret: &[u8], list: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(KEY_LABEL);
        mac.update(list.as_bytes());
        let key = mac.finalize().into_bytes();
        Self {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length"),
        }
    }

    fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    pub fn encode<T: Serialize>(&self, cursor: &T) -> String {
        // Serialising plain strings, ids and timestamps cannot fail.
        self.encode_bytes(serde_json::to_vec(cursor).unwrap_or_default())
    }

    /// The cursor, if this server issued it unchanged.
    pub fn decode<T: DeserializeOwned>(&self, text: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.decode_bytes(text)?).map_err(|_| bad_cursor())
    }

    /// A cursor of `payload` (a list's own encoding of its position).
    pub fn encode_bytes(&self, mut payload: Vec<u8>) -> String {
        let mut mac = self.mac();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The payload of a cursor, if this server issued it unchanged.
    pub fn decode_bytes(&self, text: &str) -> Result<Vec<u8>, ApiError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(bad_cursor());
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad_cursor())?;
        if bytes.len() <= TAG_LEN {
            return Err(bad_cursor());
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        // Constant-time comparison.
        mac.verify_slice(tag).map_err(|_| bad_cursor())?;
        bytes.truncate(bytes.len() - TAG_LEN);
        Ok(bytes)
    }

    /// A project list's cursor: `ProjectCursor::to_bytes`, so that the
    /// payload and its HMAC padding fit one SHA-256 block (its JSON took
    /// four).
    pub fn encode_project(&self, cursor: &ProjectCursor) -> String {
        self.encode_bytes(cursor.to_bytes())
    }

    /// The project list's cursor, if this server issued it unchanged.
    pub fn decode_project(&self, text: &str) -> Result<ProjectCursor, ApiError> {
        ProjectCursor::from_bytes(&self.decode_bytes(text)?).ok_or_else(bad_cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projects_domain::{
        ProjectCursor, ProjectId, ProjectKey, ProjectScope, ProjectSort, UserId,
    };

    const SECRET: &[u8] = b"a secret of at least thirty-two bytes!";

    fn cursor() -> ProjectCursor {
        ProjectCursor {
            sort: ProjectSort::NameAsc,
            scope: ProjectScope::Owner(UserId::new()),
            status: None,
            after: ProjectKey::Name {
                name: "Apollo".into(),
                id: ProjectId::new(),
            },
        }
    }

    #[test]
    fn cursors_round_trip() {
        let codec = CursorCodec::from_secret(SECRET, "projects");
        let cursor = cursor();
        let text = codec.encode(&cursor);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(codec.decode(&text).ok(), Some(cursor));
        let users = CursorCodec::from_secret(SECRET, "users");
        let id = UserId::new();
        assert_eq!(users.decode::<UserId>(&users.encode(&id)).ok(), Some(id));
    }

    #[test]
    fn project_cursors_are_bytes_signed_for_their_list() {
        let cursors = ListCursors::from_secret(SECRET);
        let codec = &cursors.projects;
        let by_time = ProjectCursor {
            sort: ProjectSort::CreatedAtDesc,
            scope: ProjectScope::Owner(UserId::new()),
            status: None,
            after: ProjectKey::CreatedAt {
                created_at: time::OffsetDateTime::now_utc(),
                id: ProjectId::new(),
            },
        };
        for cursor in [cursor(), by_time] {
            let text = codec.encode_project(&cursor);
            assert_eq!(codec.decode_project(&text).ok(), Some(cursor.clone()));
            let mut bytes = URL_SAFE_NO_PAD.decode(&text).expect("base64");
            for index in [0, bytes.len() / 2, bytes.len() - 1] {
                bytes[index] ^= 1;
                assert!(
                    codec
                        .decode_project(&URL_SAFE_NO_PAD.encode(&bytes))
                        .is_err()
                );
                bytes[index] ^= 1;
            }
            assert!(
                cursors.users.decode_project(&text).is_err(),
                "another list's key"
            );
            // A cursor of the JSON days (label "projects") is refused.
            let old = CursorCodec::from_secret(SECRET, "projects").encode(&cursor);
            assert!(codec.decode_project(&old).is_err());
            assert!(
                codec.decode::<ProjectCursor>(&text).is_err(),
                "bytes are not JSON"
            );
        }
        // A payload this server signed that is not a cursor: refused.
        assert!(
            codec
                .decode_project(&codec.encode_bytes(vec![9, 9, 9]))
                .is_err()
        );
    }

    #[test]
    fn any_change_is_refused() {
        let codec = CursorCodec::from_secret(SECRET, "projects");
        let text = codec.encode(&cursor());
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).expect("base64");
        for index in [0, bytes.len() / 2, bytes.len() - 1] {
            bytes[index] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&bytes);
            assert!(
                codec.decode::<ProjectCursor>(&tampered).is_err(),
                "byte {index}"
            );
            bytes[index] ^= 1;
        }
        let other = CursorCodec::from_secret(b"another secret of thirty-two bytes!!", "projects");
        assert!(
            other.decode::<ProjectCursor>(&text).is_err(),
            "a foreign key"
        );
        let users = CursorCodec::from_secret(SECRET, "users");
        assert!(
            users.decode::<ProjectCursor>(&text).is_err(),
            "another list's cursor"
        );
        for junk in [
            "",
            "!!!",
            "abc",
            &"A".repeat(5_000),
            &text[..text.len() - 2],
        ] {
            assert!(codec.decode::<ProjectCursor>(junk).is_err(), "{junk:?}");
        }
    }

    proptest::proptest! {
        /// A cursor decodes only what this codec encoded: any text a client
        /// makes up is refused (never a panic), and a cursor with any byte
        /// changed is refused.
        #[test]
        fn fuzz_made_up_cursors_are_refused(text in "\\PC{0,400}|[A-Za-z0-9_-]{0,400}") {
            let codec = CursorCodec::from_secret(SECRET, "projects");
            proptest::prop_assert!(codec.decode::<ProjectCursor>(&text).is_err());
            proptest::prop_assert!(codec.decode::<UserId>(&text).is_err());
        }

        #[test]
        fn fuzz_a_changed_cursor_is_refused(name in "\\PC{0,200}", index in proptest::num::usize::ANY, flip in 1u8..=255) {
            let codec = CursorCodec::from_secret(SECRET, "projects");
            let mut original = cursor();
            original.after = ProjectKey::Name { name, id: ProjectId::new() };
            let text = codec.encode(&original);
            proptest::prop_assert_eq!(codec.decode::<ProjectCursor>(&text).ok(), Some(original));
            let mut bytes = URL_SAFE_NO_PAD.decode(&text).expect("base64");
            let index = index % bytes.len();
            bytes[index] ^= flip;
            proptest::prop_assert!(codec.decode::<ProjectCursor>(&URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        }
    }
}
