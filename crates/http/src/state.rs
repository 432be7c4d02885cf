//! What every handler can reach: the store, and the HTTP settings.

use std::sync::Arc;

use projects_store::Store;

use crate::rate_limit::{RateLimitConfig, RateLimits};

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
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024,
            cors_origins: Vec::new(),
            hsts_seconds: 0,
            rate_limits: RateLimitConfig::default(),
        }
    }
}

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: HttpConfig,
    /// Shared by every worker, so a client's allowance is per server.
    pub rate_limits: Arc<RateLimits>,
}

impl AppState {
    pub fn new(store: Store, config: HttpConfig) -> Self {
        let rate_limits = RateLimits::new(&config.rate_limits).unwrap_or_else(|error| {
            // The binary checks REDIS_URL before building the state
            // (`RateLimits::new`); here the limits stay in memory.
            tracing::error!(error = %error, "rate limits fall back to memory");
            let memory_only = RateLimitConfig {
                redis_url: None,
                ..config.rate_limits.clone()
            };
            RateLimits::new(&memory_only).unwrap_or_else(|_| RateLimits::disabled())
        });
        Self::with_rate_limits(store, config, rate_limits)
    }

    /// The state with limits built by the caller (who can report a bad
    /// `REDIS_URL` at start).
    pub fn with_rate_limits(store: Store, config: HttpConfig, rate_limits: RateLimits) -> Self {
        Self {
            store,
            config,
            rate_limits: Arc::new(rate_limits),
        }
    }
}
