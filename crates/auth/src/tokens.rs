//! Access tokens: HS256 JWTs with `sub`, `sid`, `email`, `role`, `iat`,
//! `exp`, `iss`, `aud` and `jti`. Verification pins the algorithm, requires every
//! one of those claims, and checks signature, `exp` (with a few seconds of
//! leeway, not the crate's default minute), `iss` and `aud`.
//!
//! A token is verified in full the first time this service sees it. The
//! verified byte strings are remembered (a bounded map, [`VERIFIED_CAPACITY`]
//! entries): an identical string presented again has the same signature over
//! the same header and claims under the same key, so only the check that
//! depends on the time, `exp` with the leeway, is made again. That skips the
//! HMAC and the JSON decoding, which are most of an authenticated read's
//! work (issue 16: ~64,000 of the 157,000 instructions of a GET by id).
//! Anything that fails verification is never remembered.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use projects_domain::{Email, Role, SessionId, User, UserId};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AuthError, TokenError};

/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECONDS: u64 = 5;

/// What it takes to issue and verify tokens.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// The HS256 key (at least 32 bytes; the binary's config checks this).
    pub secret: SecretString,
    pub issuer: String,
    pub audience: String,
    /// Lifetime of an access token (`expires_in` of the tokens object).
    pub access_ttl: Duration,
}

/// The claims of an access token, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// The session the token belongs to: once it ends, the token is refused.
    pub sid: Uuid,
    pub email: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

/// The caller an access token speaks for, as of when it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub email: Email,
    /// The role when the token was issued; admin routes re-read it.
    pub role: Role,
    pub session_id: SessionId,
    pub token_id: Uuid,
}

/// A freshly signed access token and its lifetime in seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// How many verified tokens a [`TokenService`] remembers (about 0.5 KiB
/// each). When full, the expired ones are dropped, and if none had expired,
/// all of them: the next request of each client verifies in full again.
pub const VERIFIED_CAPACITY: usize = 1024;

/// Issues and verifies access tokens.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    config: TokenConfig,
    /// Tokens verified in full, by their exact text. Hashed with foldhash
    /// (randomly seeded per process), not SipHash: every authenticated
    /// request hashes its token of about 400 bytes here, and SipHash took
    /// about 2,000 instructions for it. Only tokens whose signature checked
    /// out are inserted, so clients cannot fill the map with colliding keys.
    verified: Mutex<HashMap<Box<str>, Verified, foldhash::fast::RandomState>>,
}

/// What a token verified in full said.
#[derive(Debug, Clone)]
struct Verified {
    claims: AccessClaims,
    exp: i64,
}

/// Seconds since the epoch, as jsonwebtoken reads the clock.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// jsonwebtoken's `exp` rule: expired once `exp` is more than the leeway in
/// the past.
fn expired(exp: i64, now: i64) -> bool {
    exp < now.saturating_sub(LEEWAY_SECONDS as i64)
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .field("access_ttl", &self.config.access_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    pub fn new(config: TokenConfig) -> Self {
        let secret = config.secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        // `sid` (like `email`, `role`, `jti`) is required by `Claims` itself.
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            config,
            verified: Mutex::new(HashMap::default()),
        }
    }

    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// Signs an access token for `user` in `session`.
    pub fn issue(&self, user: &User, session: SessionId) -> Result<AccessToken, AuthError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ttl = self.config.access_ttl.as_secs();
        let claims = Claims {
            sub: *user.id.as_uuid(),
            sid: *session.as_uuid(),
            email: user.email.as_str().to_owned(),
            role: user.role,
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            jti: Uuid::now_v7(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| AuthError::Signing)?;
        Ok(AccessToken {
            token,
            expires_in: ttl,
        })
    }

    /// Verifies a token (without the `Bearer ` prefix) and returns whom it
    /// speaks for. No database round trip.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_at(token, unix_now())
    }

    /// [`TokenService::verify`] with the clock read by the caller (for the
    /// `exp` check of a remembered token).
    fn verify_at(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        {
            let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = verified.get(token) {
                if expired(known.exp, now) {
                    verified.remove(token);
                    return Err(TokenError::Expired);
                }
                return Ok(known.claims.clone());
            }
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        let exp = claims.exp;
        let claims = AccessClaims {
            user_id: UserId::from_uuid(claims.sub),
            email: Email::from_trusted(claims.email),
            role: claims.role,
            session_id: SessionId::from_uuid(claims.sid),
            token_id: claims.jti,
        };
        self.remember(token, &claims, exp, now);
        Ok(claims)
    }

    fn remember(&self, token: &str, claims: &AccessClaims, exp: i64, now: i64) {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, known| !expired(known.exp, now));
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(
            token.into(),
            Verified {
                claims: claims.clone(),
                exp,
            },
        );
    }

    /// How many verified tokens are remembered now.
    pub fn remembered(&self) -> usize {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Extracts the token from an `Authorization` header value.
pub fn bearer_token(header: Option<&str>) -> Result<&str, TokenError> {
    let header = header.ok_or(TokenError::Missing)?;
    let (scheme, token) = header.split_once(' ').ok_or(TokenError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const SECRET: &str = "test-secret-test-secret-test-secret!";

    fn config() -> TokenConfig {
        TokenConfig {
            secret: SECRET.into(),
            issuer: "projects-api".into(),
            audience: "projects-api".into(),
            access_ttl: Duration::from_secs(900),
        }
    }

    fn user() -> User {
        User {
            id: UserId::new(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: "Ada".into(),
            role: Role::Admin,
            email_verified: true,
            created_at: time::OffsetDateTime::now_utc(),
            updated_at: time::OffsetDateTime::now_utc(),
        }
    }

    fn claims_now(user: &User) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sub: *user.id.as_uuid(),
            sid: Uuid::now_v7(),
            email: user.email.to_string(),
            role: user.role,
            iat: now,
            exp: now + 900,
            iss: "projects-api".into(),
            aud: "projects-api".into(),
            jti: Uuid::now_v7(),
        }
    }

    fn sign(claims: &Claims, alg: Algorithm, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("signs")
    }

    #[test]
    fn issued_tokens_verify_and_carry_every_claim() {
        let service = TokenService::new(config());
        let user = user();
        let session = SessionId::new();
        let issued = service.issue(&user, session).expect("issues");
        assert_eq!(issued.expires_in, 900);
        let claims = service.verify(&issued.token).expect("verifies");
        assert_eq!(claims.user_id, user.id);
        assert_eq!(claims.session_id, session);
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.email, user.email);
        let payload = issued.token.split('.').nth(1).expect("three parts");
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64"))
                .expect("json");
        for claim in [
            "sub", "sid", "email", "role", "iat", "exp", "iss", "aud", "jti",
        ] {
            assert!(json.get(claim).is_some(), "{claim} missing");
        }
        assert!(!format!("{issued:?}").contains(&issued.token));
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_expiry_and_forgeries_are_not_remembered() {
        let service = TokenService::new(config());
        let user = user();
        let good = claims_now(&user);
        let signed = sign(&good, Algorithm::HS256, SECRET);
        let first = service.verify(&signed).expect("verifies in full");
        assert_eq!(service.remembered(), 1);
        assert_eq!(service.verify(&signed), Ok(first.clone()), "remembered");
        // Within the leeway after `exp` it is still good; past it, expired,
        // and forgotten.
        let now = good.exp + LEEWAY_SECONDS as i64;
        assert_eq!(service.verify_at(&signed, now), Ok(first));
        assert_eq!(
            service.verify_at(&signed, now + 1),
            Err(TokenError::Expired)
        );
        assert_eq!(service.remembered(), 0);
        // A token that differs from a remembered one in any byte is verified
        // in full (and refused); nothing refused is remembered.
        service.verify(&signed).expect("verifies again");
        let mut changed_signature = signed.clone().into_bytes();
        let last = changed_signature.len() - 2;
        changed_signature[last] = if changed_signature[last] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let changed_signature = String::from_utf8(changed_signature).expect("ascii");
        assert_eq!(service.verify(&changed_signature), Err(TokenError::Invalid));
        let other_key = sign(
            &good,
            Algorithm::HS256,
            "another-secret-another-secret-another",
        );
        assert_eq!(service.verify(&other_key), Err(TokenError::Invalid));
        assert_eq!(service.remembered(), 1);
    }

    #[test]
    fn the_remembered_tokens_stay_bounded() {
        let service = TokenService::new(config());
        let user = user();
        for _ in 0..VERIFIED_CAPACITY + 10 {
            let token = sign(&claims_now(&user), Algorithm::HS256, SECRET);
            service.verify(&token).expect("verifies");
            assert!(service.remembered() <= VERIFIED_CAPACITY);
        }
    }

    #[test]
    fn every_forgery_is_refused() {
        let service = TokenService::new(config());
        let user = user();
        let good = claims_now(&user);
        let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).expect("json"));
        let signed = sign(&good, Algorithm::HS256, SECRET);
        let mut parts: Vec<&str> = signed.split('.').collect();
        let mut changed = good.clone();
        changed.role = Role::Admin;
        changed.sub = Uuid::now_v7();
        let changed_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&changed).expect("json"));
        parts[1] = &changed_payload;
        let tampered = parts.join(".");
        let expired = Claims {
            exp: good.iat - 3600,
            iat: good.iat - 4600,
            ..good.clone()
        };
        let wrong_iss = Claims {
            iss: "someone-else".into(),
            ..good.clone()
        };
        let wrong_aud = Claims {
            aud: "someone-else".into(),
            ..good.clone()
        };
        let cases = [
            (
                "alg none",
                format!("{header_none}.{payload}."),
                TokenError::Invalid,
            ),
            (
                "HS512",
                sign(&good, Algorithm::HS512, SECRET),
                TokenError::Invalid,
            ),
            (
                "wrong key",
                sign(
                    &good,
                    Algorithm::HS256,
                    "another-secret-another-secret-another",
                ),
                TokenError::Invalid,
            ),
            ("changed payload", tampered, TokenError::Invalid),
            (
                "expired",
                sign(&expired, Algorithm::HS256, SECRET),
                TokenError::Expired,
            ),
            (
                "wrong iss",
                sign(&wrong_iss, Algorithm::HS256, SECRET),
                TokenError::Invalid,
            ),
            (
                "wrong aud",
                sign(&wrong_aud, Algorithm::HS256, SECRET),
                TokenError::Invalid,
            ),
            ("garbage", "not.a.jwt".to_owned(), TokenError::Invalid),
            ("empty", String::new(), TokenError::Invalid),
        ];
        for (name, token, expected) in cases {
            assert_eq!(service.verify(&token), Err(expected), "{name}");
        }
        assert!(
            service.verify(&signed).is_ok(),
            "the untampered token is fine"
        );
    }

    #[test]
    fn leeway_is_seconds_not_a_minute() {
        let service = TokenService::new(config());
        let good = claims_now(&user());
        let just_expired = Claims {
            exp: good.iat - 30,
            ..good
        };
        assert_eq!(
            service.verify(&sign(&just_expired, Algorithm::HS256, SECRET)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn missing_claims_are_refused() {
        let service = TokenService::new(config());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let no_aud = serde_json::json!({
            "sub": Uuid::now_v7(), "email": "a@b.example", "role": "user",
            "iat": now, "exp": now + 60, "iss": "projects-api", "jti": Uuid::now_v7()
        });
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &no_aud,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("signs");
        assert_eq!(service.verify(&token), Err(TokenError::Invalid));
        // A token of before sessions (no `sid`) is refused too.
        let no_sid = serde_json::json!({
            "sub": Uuid::now_v7(), "email": "a@b.example", "role": "user", "aud": "projects-api",
            "iat": now, "exp": now + 60, "iss": "projects-api", "jti": Uuid::now_v7()
        });
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &no_sid,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("signs");
        assert_eq!(service.verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(TokenError::Missing));
        assert_eq!(bearer_token(Some("abc")), Err(TokenError::NotBearer));
        assert_eq!(bearer_token(Some("Basic abc")), Err(TokenError::NotBearer));
        assert_eq!(bearer_token(Some("Bearer ")), Err(TokenError::Missing));
    }
}
