//! Per-client rate limits: a general one on every route and a stricter one
//! on the routes under `/api/v1/auth` (decided on the route the request
//! matches, never on the raw path), plus the per-account throttle of failed
//! password checks ([`PasswordChecks`]).
//!
//! The limits are GCRA (a leaky bucket without timers): in memory through
//! `governor` by default, or in Redis through a Lua script with the same
//! arithmetic when `REDIS_URL` is set, so that every instance sharing the
//! Redis enforces one limit. Clients are keyed by address, IPv6 ones by
//! their /64.
//!
//! Redis calls are bounded by `REDIS_TIMEOUT_MS` behind a circuit breaker
//! (see `redis`). While Redis fails, the limits fall back to memory; the
//! memory counts are kept warm (every request is counted in memory too,
//! whatever Redis said), so a Redis failure does not hand any client a full
//! allowance again: it finds the allowance this instance saw it use.

mod memory;
mod password_checks;
mod redis;

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;
use secrecy::SecretString;

use self::memory::MemoryLimiter;
pub use self::password_checks::PasswordChecks;
pub use self::redis::FALLBACKS_COUNTER;
use self::redis::RedisLink;
use crate::client_ip::{TrustedProxies, limit_key};

/// `REDIS_TIMEOUT_MS`'s default.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

/// The limits to enforce, from configuration. A zero rate turns a limit off.
#[derive(Clone)]
pub struct RateLimitConfig {
    /// General limit: requests per second per client IP.
    pub per_second: u32,
    /// General limit: how many requests may come at once.
    pub burst: u32,
    /// `/api/v1/auth/*`: requests per minute per client IP.
    pub auth_per_minute: u32,
    /// Share the limits through this Redis.
    pub redis_url: Option<SecretString>,
    /// The most one Redis call may take (`REDIS_TIMEOUT_MS`).
    pub redis_timeout: Duration,
    /// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: 0,
            burst: 0,
            auth_per_minute: 0,
            redis_url: None,
            redis_timeout: DEFAULT_REDIS_TIMEOUT,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

impl fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitConfig")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .field("auth_per_minute", &self.auth_per_minute)
            .field("redis", &self.redis_url.as_ref().map(|_| "[set]"))
            .field("redis_timeout", &self.redis_timeout)
            .field("trusted_proxies", &self.trusted_proxies)
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

/// One limit: its quota, and the in-memory state.
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

/// Which limits a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every request: the general limit.
    General,
    /// Authentication: the general limit and the auth limit.
    Auth,
    /// The auth limit alone (a request already counted by the general one
    /// that turns out to check a password, such as `PATCH /users/me`).
    AuthOnly,
}

/// The limits of one server, shared by all its workers.
#[derive(Debug)]
pub struct RateLimits {
    general: Option<Limit>,
    auth: Option<Limit>,
    redis: Option<Arc<RedisLink>>,
    trusted_proxies: TrustedProxies,
    password_checks: PasswordChecks,
}

/// The GCRA of governor in Lua; returns {allowed (0/1), remaining, retry
/// after µs, reset µs}. On Redis's clock, so that instances with skewed
/// clocks agree.
const GCRA: &str = r"
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - emission * burst
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / emission), 0, new_tat - now}
";

static GCRA_SCRIPT: std::sync::LazyLock<::redis::Script> =
    std::sync::LazyLock::new(|| ::redis::Script::new(GCRA));

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
            .map(|url| RedisLink::new(url, config.redis_timeout).map(Arc::new))
            .transpose()?;
        Ok(Self {
            general,
            auth,
            password_checks: PasswordChecks::new(redis.clone()),
            redis,
            trusted_proxies: config.trusted_proxies.clone(),
        })
    }

    /// No limits at all (the password-check throttle stays on, in memory).
    pub fn disabled() -> Self {
        Self {
            general: None,
            auth: None,
            redis: None,
            trusted_proxies: TrustedProxies::default(),
            password_checks: PasswordChecks::new(None),
        }
    }

    /// Whether any limit counts a request of `scope`: when none does, the
    /// middleware has nothing to count and no standing to report.
    pub fn apply_to(&self, scope: Scope) -> bool {
        match scope {
            Scope::General => self.general.is_some(),
            Scope::Auth => self.general.is_some() || self.auth.is_some(),
            Scope::AuthOnly => self.auth.is_some(),
        }
    }

    /// Counts one request of `client` and says where it stands: refused if
    /// any applicable limit refuses it, else the tightest standing. `None`
    /// when no limit applies.
    pub async fn check(&self, client: IpAddr, scope: Scope) -> Option<Standing> {
        let key = limit_key(client);
        let mut tightest: Option<Standing> = None;
        let limits = [
            self.general.as_ref().filter(|_| scope != Scope::AuthOnly),
            self.auth.as_ref().filter(|_| scope != Scope::General),
        ];
        for limit in limits.into_iter().flatten() {
            let standing = self.check_one(limit, key).await;
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

    async fn check_one(&self, limit: &Limit, key: IpAddr) -> Standing {
        // Counted in memory whatever Redis says, so that the memory is warm
        // when Redis fails.
        let local = limit.memory.check(key, limit.emission, limit.burst);
        let Some(redis) = &self.redis else {
            return local;
        };
        let emission_us = i64::try_from(limit.emission.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let redis_key = format!("projects-api:rate:{}:{key}", limit.name);
        match redis
            .run(
                &GCRA_SCRIPT,
                &redis_key,
                &[emission_us, i64::from(limit.burst)],
            )
            .await
            .as_deref()
        {
            Some(&[allowed, remaining, retry_us, reset_us]) => Standing {
                limit: limit.burst,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                reset: micros(reset_us),
                retry_after: (allowed == 0).then(|| micros(retry_us)),
            },
            _ => local,
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// The per-account throttle of failed password checks.
    pub fn password_checks(&self) -> &PasswordChecks {
        &self.password_checks
    }
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

/// A rate-limit configuration the server cannot use.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("REDIS_URL is not a usable Redis URL")]
    RedisUrl(#[source] ::redis::RedisError),
}
