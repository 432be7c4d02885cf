//! What every handler can reach: the store, the HTTP settings, and the
//! credentials services (access tokens, password hashing).

use std::sync::Arc;
use std::time::Duration;

use projects_auth::{PasswordHasher, TokenConfig, TokenService};
use projects_store::Store;

/// Settings of the HTTP layer, read once at start by the binary.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024,
        }
    }
}

/// The JWT secret of [`AppState::for_tests`]. Public so that tests can forge
/// tokens; never use it anywhere else.
pub const TEST_JWT_SECRET: &str = "projects-api test secret: never use in production";

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: HttpConfig,
    /// Issues and verifies access tokens; knows the token lifetimes.
    pub tokens: Arc<TokenService>,
    /// argon2id on a bounded blocking pool (one hash per core at a time).
    pub passwords: PasswordHasher,
}

impl AppState {
    pub fn new(
        store: Store,
        config: HttpConfig,
        tokens: TokenService,
        passwords: PasswordHasher,
    ) -> Self {
        Self {
            store,
            config,
            tokens: Arc::new(tokens),
            passwords,
        }
    }

    /// A state for tests: default HTTP settings, [`TEST_JWT_SECRET`],
    /// issuer and audience `projects-api`, 900 s access tokens, 30-day
    /// refresh tokens, and the production password hasher.
    pub fn for_tests(store: Store) -> Self {
        Self::new(
            store,
            HttpConfig::default(),
            TokenService::new(test_token_config()),
            PasswordHasher::default(),
        )
    }
}

/// The token settings of [`AppState::for_tests`].
pub fn test_token_config() -> TokenConfig {
    TokenConfig {
        secret: TEST_JWT_SECRET.into(),
        issuer: "projects-api".into(),
        audience: "projects-api".into(),
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(30 * 24 * 60 * 60),
    }
}
