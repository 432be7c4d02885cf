//! The `tokens` section: the auth crate's own [`TokenConfig`], handed over
//! whole (the account-token key is derived from the same secret).

use std::time::Duration;

use projects_auth::TokenConfig;

use super::env::{ConfigError, Env};

/// The shortest `JWT_SECRET` accepted, in bytes.
const MIN_JWT_SECRET_BYTES: usize = 32;

/// `JWT_SECRET` (long enough and not guessable), `JWT_ISSUER`,
/// `JWT_AUDIENCE` and `ACCESS_TOKEN_TTL_SECONDS`.
pub fn read(env: &Env<'_>) -> Result<TokenConfig, ConfigError> {
    let secret = env.required("JWT_SECRET")?;
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(ConfigError {
            variable: "JWT_SECRET",
            problem: format!(
                "must be at least {MIN_JWT_SECRET_BYTES} bytes (it has {})",
                secret.len()
            ),
        });
    }
    if let Some(problem) = crate::jwt_secret::weakness(&secret) {
        return Err(ConfigError {
            variable: "JWT_SECRET",
            problem,
        });
    }
    Ok(TokenConfig {
        secret: secret.into(),
        issuer: env.or("JWT_ISSUER", "projects-api"),
        audience: env.or("JWT_AUDIENCE", "projects-api"),
        access_ttl: Duration::from_secs(env.positive("ACCESS_TOKEN_TTL_SECONDS", 900)?),
    })
}
