//! Account tokens (password reset, email verification, email change): the
//! token in a link is HMAC-SHA256(server secret, token id), base64url. The
//! database keeps the token's SHA-256 and the mail job keeps only the random
//! token id, so neither a database dump nor the job table yields a usable
//! link; the worker derives the token again when it writes the message.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Separates these tokens from any other use of the same secret.
const CONTEXT: &[u8] = b"projects-api account token v1\0";

/// Derives account tokens from their ids. `Debug` hides the key.
#[derive(Clone)]
pub struct AccountTokenKey(SecretString);

impl fmt::Debug for AccountTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountTokenKey(<redacted>)")
    }
}

impl AccountTokenKey {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// The token for the token id `id`.
    pub fn token(&self, id: Uuid) -> AccountToken {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(CONTEXT);
        mac.update(id.as_bytes());
        AccountToken(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

/// A token as a link carries it. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountToken(String);

impl AccountToken {
    /// Wraps a token a client presented; any string may be presented, an
    /// unknown one matches no hash.
    pub fn from_client(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database stores and looks up.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for AccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_the_id_and_the_secret_and_are_256_bits() {
        let key = AccountTokenKey::new("a-secret-a-secret-a-secret-a-secret".into());
        let other = AccountTokenKey::new("another-secret-another-secret-another".into());
        let id = Uuid::now_v7();
        assert_eq!(key.token(id), key.token(id));
        assert_ne!(key.token(id), key.token(Uuid::now_v7()));
        assert_ne!(key.token(id), other.token(id));
        assert_eq!(key.token(id).expose().len(), 43);
        assert_eq!(
            key.token(id).hash(),
            AccountToken::from_client(key.token(id).expose().to_owned()).hash()
        );
        assert!(!format!("{:?}", key.token(id)).contains(key.token(id).expose()));
    }
}
