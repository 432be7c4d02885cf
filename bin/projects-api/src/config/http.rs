//! The `http` section: the http crate's own [`HttpConfig`], handed over
//! whole: request limits, CORS, HSTS, the rate limits (with Redis and the
//! trusted proxies) and the session policy.

use std::time::Duration;

use projects_http::HttpConfig;
use projects_http::client_ip::TrustedProxies;
use projects_http::rate_limit::RateLimitConfig;
use projects_store::SessionPolicy;
use secrecy::SecretString;

use super::env::{ConfigError, Env};

pub fn read(env: &Env<'_>) -> Result<HttpConfig, ConfigError> {
    Ok(HttpConfig {
        body_limit: env.parsed("BODY_LIMIT_BYTES", 16 * 1024)?,
        cors_origins: cors_origins(env)?,
        hsts_seconds: env.parsed("HSTS_SECONDS", 0)?,
        rate_limits: rate_limits(env)?,
        sessions: sessions(env)?,
    })
}

/// `RATE_LIMIT_*`, `AUTH_RATE_LIMIT_PER_MINUTE`, `REDIS_*`, and whom to
/// believe about the client's address.
fn rate_limits(env: &Env<'_>) -> Result<RateLimitConfig, ConfigError> {
    let mut trusted_proxies = match env.get("TRUSTED_PROXIES") {
        None => Vec::new(),
        Some(raw) => TrustedProxies::parse_list(&raw).map_err(|problem| ConfigError {
            variable: "TRUSTED_PROXIES",
            problem: format!("must be comma-separated CIDRs like 10.0.0.0/8: {problem}"),
        })?,
    };
    if env.flag("TRUST_FORWARDED_FOR", false)? {
        trusted_proxies.extend(TrustedProxies::loopback_and_private());
    }
    Ok(RateLimitConfig {
        per_second: env.parsed("RATE_LIMIT_PER_SECOND", 100)?,
        burst: env.parsed("RATE_LIMIT_BURST", 200)?,
        auth_per_minute: env.parsed("AUTH_RATE_LIMIT_PER_MINUTE", 20)?,
        redis_url: env.get("REDIS_URL").map(SecretString::from),
        redis_timeout: Duration::from_millis(env.positive("REDIS_TIMEOUT_MS", 50)?),
        trusted_proxies: TrustedProxies::new(trusted_proxies),
    })
}

/// The longest session limit accepted, in days (ten years).
const MAX_SESSION_DAYS: u64 = 3650;
/// The longest reuse grace accepted, in seconds: beyond a few minutes a
/// "duplicate" is a stolen token.
const MAX_REUSE_GRACE_SECONDS: u64 = 300;

/// `SESSION_MAX_AGE_DAYS`, `REFRESH_TOKEN_TTL_DAYS` and
/// `REFRESH_REUSE_GRACE_SECONDS`.
fn sessions(env: &Env<'_>) -> Result<SessionPolicy, ConfigError> {
    let days = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
        match env.positive(name, default)? {
            value if value > MAX_SESSION_DAYS => Err(ConfigError {
                variable: name,
                problem: format!("must be at most {MAX_SESSION_DAYS} days, not {value}"),
            }),
            value => Ok(Duration::from_secs(value * 24 * 60 * 60)),
        }
    };
    let grace = env.parsed("REFRESH_REUSE_GRACE_SECONDS", 10u64)?;
    if grace > MAX_REUSE_GRACE_SECONDS {
        return Err(ConfigError {
            variable: "REFRESH_REUSE_GRACE_SECONDS",
            problem: format!(
                "must be at most {MAX_REUSE_GRACE_SECONDS} seconds (0 turns the grace off), not {grace}"
            ),
        });
    }
    Ok(SessionPolicy {
        max_age: days("SESSION_MAX_AGE_DAYS", 90)?,
        idle_ttl: days("REFRESH_TOKEN_TTL_DAYS", 30)?,
        reuse_grace: Duration::from_secs(grace),
    })
}

/// `CORS_ORIGINS`: comma-separated, each `scheme://host[:port]` and nothing
/// more: a path, a trailing slash or a wildcard never matches a browser's
/// `Origin`.
fn cors_origins(env: &Env<'_>) -> Result<Vec<String>, ConfigError> {
    let origins: Vec<String> = env
        .get("CORS_ORIGINS")
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for origin in &origins {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        if !valid {
            return Err(ConfigError {
                variable: "CORS_ORIGINS",
                problem: format!(
                    "has {origin:?}, which is not an origin like https://app.example.com"
                ),
            });
        }
    }
    Ok(origins)
}
