//! What every handler can reach: the store, the HTTP settings, and the
//! credentials services (access tokens, password hashing).

use std::sync::Arc;

use secrecy::ExposeSecret as _;
use std::time::Duration;

use projects_auth::{AccountTokenKey, PasswordHasher, SuccessorKey, TokenService};
use projects_store::{MailLimits, SessionPolicy, Store};

use crate::cursor::ListCursors;
use crate::rate_limit::{RateLimitConfig, RateLimits};
use crate::revocations::Revocations;

/// Settings of the HTTP layer, read once at start by the binary.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Origins allowed by CORS; none by default.
    pub cors_origins: Vec<String>,
    /// `Strict-Transport-Security: max-age=…` when above 0.
    pub hsts_seconds: u64,
    /// Per-client rate limits; all off by default (tests are not throttled;
    /// the binary sets the contract's defaults).
    pub rate_limits: RateLimitConfig,
    /// Session lifetimes and the refresh-token reuse grace.
    pub sessions: SessionPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024,
            cors_origins: Vec::new(),
            hsts_seconds: 0,
            rate_limits: RateLimitConfig::default(),
            sessions: SessionPolicy::default(),
        }
    }
}

/// Settings of the account flows, read once at start by the binary.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    pub password_reset_ttl: Duration,
    /// Also the lifetime of an email-change link.
    pub email_verification_ttl: Duration,
    /// Login of an unverified account is 403 `email-not-verified`.
    pub require_verified_email: bool,
    /// Per-address limits on everything that sends mail.
    pub mail_limits: MailLimits,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            password_reset_ttl: Duration::from_secs(30 * 60),
            email_verification_ttl: Duration::from_secs(48 * 3600),
            require_verified_email: false,
            mail_limits: MailLimits::default(),
        }
    }
}

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: HttpConfig,
    /// Issues and verifies access tokens; knows the token lifetimes.
    pub tokens: Arc<TokenService>,
    /// argon2id on a bounded blocking pool (one hash per core at a time).
    pub passwords: PasswordHasher,
    /// Shared by every worker, so a client's allowance is per server.
    pub rate_limits: Arc<RateLimits>,
    /// The sessions that ended recently: the extractor refuses their
    /// access tokens. One set per instance, shared by every worker.
    pub revocations: Arc<Revocations>,
    /// Derives a rotated refresh token's successor (from the JWT secret).
    pub successors: SuccessorKey,
    /// Readiness turns 503 once this starts (shutdown drain).
    pub drain: crate::drain::Drain,
    /// Derives the tokens of mailed links from their ids.
    pub account_tokens: AccountTokenKey,
    /// Lifetimes, limits and policy of the account flows.
    pub accounts: AccountsConfig,
    /// The list cursors' codecs, keyed once from the JWT secret.
    pub cursors: ListCursors,
}

impl AppState {
    /// The state the binary builds. The rate limits are built by the caller,
    /// once for all workers, so that it can report a bad `REDIS_URL` at start.
    pub fn new(
        store: Store,
        config: HttpConfig,
        tokens: TokenService,
        passwords: PasswordHasher,
        rate_limits: RateLimits,
    ) -> Self {
        // Mailed links are keyed by the same secret as the access tokens.
        let account_tokens = AccountTokenKey::new(tokens.config().secret.clone());
        let revocations = Arc::new(Revocations::new(tokens.config().access_ttl));
        let successors = SuccessorKey::from_secret(&tokens.config().secret);
        let cursors = ListCursors::from_secret(tokens.config().secret.expose_secret().as_bytes());
        Self {
            store,
            config,
            tokens: Arc::new(tokens),
            passwords,
            rate_limits: Arc::new(rate_limits),
            revocations,
            successors,
            drain: crate::drain::Drain::default(),
            account_tokens,
            accounts: AccountsConfig::default(),
            cursors,
        }
    }
}
