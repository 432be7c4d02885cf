//! Per-client rate limits: a general one on every route and a stricter one
//! on `/api/v1/auth/*`.
//!
//! Both are GCRA (a leaky bucket without timers): in memory through
//! `governor` by default, or in Redis through a Lua script with the same
//! arithmetic when `REDIS_URL` is set, so that every instance sharing the
//! Redis enforces one limit. When Redis cannot be reached the limits fall
//! back to memory (per instance) and a warning is logged: a broken Redis
//! must not take the API down.

mod memory;
mod middleware;
mod redis;

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use secrecy::SecretString;

use self::memory::MemoryLimiter;
pub use self::middleware::rate_limit;
use self::redis::RedisLimiter;

/// The limits to enforce, from configuration. A zero rate turns a limit off.
#[derive(Clone, Default)]
pub struct RateLimitConfig {
    /// General limit: requests per second per client IP.
    pub per_second: u32,
    /// General limit: how many requests may come at once.
    pub burst: u32,
    /// `/api/v1/auth/*`: requests per minute per client IP.
    pub auth_per_minute: u32,
    /// Share the limits through this Redis.
    pub redis_url: Option<SecretString>,
    /// Read the client IP from `X-Forwarded-For` (behind a proxy).
    pub trust_forwarded_for: bool,
}

impl fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitConfig")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .field("auth_per_minute", &self.auth_per_minute)
            .field("redis", &self.redis_url.as_ref().map(|_| "[set]"))
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .finish()
    }
}

/// Where a client stands against one limit after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The most requests allowed at once (`RateLimit-Limit`).
    pub limit: u32,
    /// How many more are allowed right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the allowance is whole again (`RateLimit-Reset`).
    pub reset: Duration,
    /// `Some` when this request is refused: when to try again.
    pub retry_after: Option<Duration>,
}

/// One limit: its quota, and the in-memory state used without Redis.
#[derive(Debug)]
struct Limit {
    name: &'static str,
    burst: u32,
    emission: Duration,
    memory: MemoryLimiter,
}

impl Limit {
    fn new(name: &'static str, quota: Quota) -> Self {
        Self {
            name,
            burst: quota.burst_size().get(),
            emission: quota.replenish_interval(),
            memory: MemoryLimiter::new(quota),
        }
    }
}

/// The limits of one server, shared by all its workers.
#[derive(Debug)]
pub struct RateLimits {
    general: Option<Limit>,
    auth: Option<Limit>,
    redis: Option<RedisLimiter>,
    trust_forwarded_for: bool,
}

impl RateLimits {
    /// Limits as configured. An unusable `REDIS_URL` is an error, so that a
    /// typo does not silently turn shared limits into per-instance ones.
    pub fn new(config: &RateLimitConfig) -> Result<Self, RateLimitError> {
        let general = NonZeroU32::new(config.per_second).map(|rate| {
            let burst = NonZeroU32::new(config.burst).unwrap_or(rate);
            Limit::new("general", Quota::per_second(rate).allow_burst(burst))
        });
        let auth = NonZeroU32::new(config.auth_per_minute)
            .map(|rate| Limit::new("auth", Quota::per_minute(rate)));
        let redis = config
            .redis_url
            .as_ref()
            .map(RedisLimiter::new)
            .transpose()?;
        Ok(Self {
            general,
            auth,
            redis,
            trust_forwarded_for: config.trust_forwarded_for,
        })
    }

    /// No limits at all.
    pub fn disabled() -> Self {
        Self {
            general: None,
            auth: None,
            redis: None,
            trust_forwarded_for: false,
        }
    }

    /// Counts one request of `client` and says where it stands: refused if
    /// any applicable limit refuses it, else the tightest standing. `None`
    /// when no limit applies.
    pub async fn check(&self, client: IpAddr, auth_route: bool) -> Option<Standing> {
        let mut tightest: Option<Standing> = None;
        let limits = [
            self.general.as_ref(),
            self.auth.as_ref().filter(|_| auth_route),
        ];
        for limit in limits.into_iter().flatten() {
            let standing = self.check_one(limit, client).await;
            if standing.retry_after.is_some() {
                return Some(standing);
            }
            tightest = match tightest {
                Some(current) if current.remaining <= standing.remaining => Some(current),
                _ => Some(standing),
            };
        }
        tightest
    }

    async fn check_one(&self, limit: &Limit, client: IpAddr) -> Standing {
        if let Some(redis) = &self.redis {
            let key = format!("projects-api:rate:{}:{client}", limit.name);
            if let Some(standing) = redis.check(&key, limit.emission, limit.burst).await {
                return standing;
            }
        }
        limit.memory.check(client, limit.emission, limit.burst)
    }

    pub(crate) fn trust_forwarded_for(&self) -> bool {
        self.trust_forwarded_for
    }
}

/// A rate-limit configuration the server cannot use.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("REDIS_URL is not a usable Redis URL")]
    RedisUrl(#[source] ::redis::RedisError),
}
