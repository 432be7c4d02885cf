//! The application state of the in-process tests: a published JWT secret
//! (the binary refuses it), default HTTP settings, rate limits off.

use std::time::Duration;

use projects_auth::{PasswordHasher, TokenConfig, TokenService};
use projects_http::rate_limit::{RateLimitConfig, RateLimits};
use projects_http::{AppState, HttpConfig};
use projects_store::Store;

/// The JWT secret of [`ForTests::for_tests`]. Public so that tests can forge
/// tokens; `projects-api serve` refuses it.
pub const TEST_JWT_SECRET: &str = "projects-api test secret: never use in production";

/// The token settings of [`ForTests::for_tests`].
pub fn test_token_config() -> TokenConfig {
    TokenConfig {
        secret: TEST_JWT_SECRET.into(),
        issuer: "projects-api".into(),
        audience: "projects-api".into(),
        access_ttl: Duration::from_secs(900),
    }
}

/// Test constructors of [`AppState`] (`AppState::for_tests(store)` with
/// this trait in scope).
pub trait ForTests: Sized {
    /// A state for tests: default HTTP settings (rate limits off),
    /// [`TEST_JWT_SECRET`], issuer and audience `projects-api`, 900 s access
    /// tokens, the contract's session policy, and the production password
    /// hasher.
    fn for_tests(store: Store) -> Self;

    /// [`ForTests::for_tests`] with other HTTP settings. Rate limits whose
    /// Redis cannot be used stay in memory.
    fn for_tests_with(store: Store, config: HttpConfig) -> Self;
}

impl ForTests for AppState {
    fn for_tests(store: Store) -> Self {
        Self::for_tests_with(store, HttpConfig::default())
    }

    fn for_tests_with(store: Store, config: HttpConfig) -> Self {
        let rate_limits = RateLimits::new(&config.rate_limits).unwrap_or_else(|_| {
            let memory_only = RateLimitConfig {
                redis_url: None,
                ..config.rate_limits.clone()
            };
            RateLimits::new(&memory_only).unwrap_or_else(|_| RateLimits::disabled())
        });
        Self::new(
            store,
            config,
            TokenService::new(test_token_config()),
            PasswordHasher::default(),
            rate_limits,
        )
    }
}
