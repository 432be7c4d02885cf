//! Refresh tokens: 256 bits shown to the client once as base64url; the
//! database keeps only their SHA-256.
//!
//! A session's first token is random. Each later one is derived from the
//! token it replaces with a keyed hash (HMAC-SHA256 under a key derived from
//! the JWT secret): a duplicate presentation of a token within the reuse
//! grace (two tabs, a retried request) can then be given the very token its
//! first presentation got, without any token being stored in plaintext.
//! Without the key, a successor cannot be computed from its predecessor.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest, Sha256};

/// A refresh token as the client holds it. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

/// The SHA-256 of a refresh token: what the database stores and looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefreshTokenHash(pub [u8; 32]);

impl RefreshToken {
    /// A new token from a cryptographically secure generator (the thread's
    /// ChaCha generator, seeded from the operating system).
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a token a client presented. Any string may be presented; an
    /// unknown one simply matches no hash.
    pub fn from_client(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> RefreshTokenHash {
        RefreshTokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// The purpose label of the successor key: never the key of anything else.
const SUCCESSOR_KEY_LABEL: &[u8] = b"projects-api refresh-token successor v1";

/// Derives a refresh token's successor. Built once at start.
#[derive(Clone)]
pub struct SuccessorKey([u8; 32]);

impl SuccessorKey {
    /// The key derived from the JWT secret.
    pub fn from_secret(secret: &SecretString) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(SUCCESSOR_KEY_LABEL);
        Self(mac.finalize().into_bytes().into())
    }

    /// The token that replaces `presented` when it is rotated: the same
    /// for every presentation of the same token.
    pub fn successor(&self, presented: &RefreshToken) -> RefreshToken {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(presented.0.as_bytes());
        RefreshToken(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for SuccessorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SuccessorKey(<redacted>)")
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_of_base64url_and_unique() {
        let first = RefreshToken::generate();
        let second = RefreshToken::generate();
        assert_eq!(first.expose().len(), 43);
        assert!(
            first
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(first, second);
    }

    #[test]
    fn successors_are_keyed_stable_and_look_like_tokens() {
        let key = SuccessorKey::from_secret(&"a secret of at least thirty-two bytes!".into());
        let other = SuccessorKey::from_secret(&"another secret of thirty-two bytes!!".into());
        let token = RefreshToken::generate();
        let next = key.successor(&token);
        assert_eq!(next, key.successor(&token.clone()));
        assert_ne!(next, token);
        assert_ne!(next, other.successor(&token));
        assert_ne!(key.successor(&next), next);
        assert_eq!(next.expose().len(), 43);
        assert!(!format!("{key:?}").contains("secret"));
    }

    #[test]
    fn the_hash_is_stable_and_debug_hides_the_token() {
        let token = RefreshToken::from_client("abc".into());
        assert_eq!(token.hash(), RefreshToken::from_client("abc".into()).hash());
        assert_ne!(token.hash(), RefreshToken::from_client("abd".into()).hash());
        assert!(!format!("{token:?}").contains("abc"));
    }
}
