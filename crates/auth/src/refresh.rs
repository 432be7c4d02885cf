//! Refresh tokens: 256 random bits shown to the client once as base64url; the
//! database keeps only their SHA-256.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    fn the_hash_is_stable_and_debug_hides_the_token() {
        let token = RefreshToken::from_client("abc".into());
        assert_eq!(token.hash(), RefreshToken::from_client("abc".into()).hash());
        assert_ne!(token.hash(), RefreshToken::from_client("abd".into()).hash());
        assert!(!format!("{token:?}").contains("abc"));
    }
}
