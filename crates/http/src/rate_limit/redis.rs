//! The one connection to Redis that the limits share, bounded in time and
//! behind a circuit breaker.
//!
//! Every call takes at most `REDIS_TIMEOUT_MS` (connecting included). A
//! failure or a time-out opens the breaker: for the next [`PAUSE`] no call
//! goes to Redis at all (the caller uses memory at once), then one call is
//! let through as a probe; its success closes the breaker, its failure opens
//! it again. So a Redis that stops answering costs one request the time-out
//! per pause, not every request. Each answer given from memory instead of
//! Redis counts in `rate_limit_redis_fallbacks_total`, and one warning is
//! logged per outage.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret as _, SecretString};

use super::RateLimitError;

/// Counts the checks answered from memory because Redis was failing.
pub const FALLBACKS_COUNTER: &str = "rate_limit_redis_fallbacks_total";

/// How long to use memory alone after Redis failed, before probing again.
const PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    /// Redis answers: every call goes to it.
    Closed,
    /// Redis failed: no call until then.
    Open { until: Instant },
    /// One call is probing whether Redis answers again.
    Probing,
}

pub(super) struct RedisLink {
    client: redis::Client,
    timeout: Duration,
    connection: Mutex<Option<ConnectionManager>>,
    breaker: Mutex<Breaker>,
    down: AtomicBool,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("timeout", &self.timeout)
            .field("down", &self.down)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    pub(super) fn new(url: &SecretString, timeout: Duration) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url.expose_secret()).map_err(RateLimitError::RedisUrl)?;
        Ok(Self {
            client,
            timeout: timeout.max(Duration::from_millis(1)),
            connection: Mutex::new(None),
            breaker: Mutex::new(Breaker::Closed),
            down: AtomicBool::new(false),
        })
    }

    /// Runs `script` on `key` with integer `args`; `None` when Redis may
    /// not be asked now or did not answer in time: the caller uses memory.
    pub(super) async fn run(
        &self,
        script: &redis::Script,
        key: &str,
        args: &[i64],
    ) -> Option<Vec<i64>> {
        if !self.admit() {
            metrics::counter!(FALLBACKS_COUNTER).increment(1);
            return None;
        }
        let call = async {
            let mut connection = self.connection().await?;
            let mut invocation = script.key(key);
            for arg in args {
                invocation.arg(*arg);
            }
            invocation.invoke_async::<Vec<i64>>(&mut connection).await
        };
        let outcome = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(values)) => Ok(values),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "no answer within REDIS_TIMEOUT_MS ({} ms)",
                self.timeout.as_millis()
            )),
        };
        match outcome {
            Ok(values) => {
                self.succeeded();
                Some(values)
            }
            Err(error) => {
                self.failed(&error);
                metrics::counter!(FALLBACKS_COUNTER).increment(1);
                None
            }
        }
    }

    /// Whether this call may go to Redis (see the module's documentation).
    fn admit(&self) -> bool {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match *breaker {
            Breaker::Closed => true,
            Breaker::Open { until } if Instant::now() >= until => {
                *breaker = Breaker::Probing;
                true
            }
            Breaker::Open { .. } | Breaker::Probing => false,
        }
    }

    fn succeeded(&self) {
        *self.breaker.lock().unwrap_or_else(|e| e.into_inner()) = Breaker::Closed;
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis answers again: rate limits are shared again");
        }
    }

    fn failed(&self, error: &str) {
        *self.breaker.lock().unwrap_or_else(|e| e.into_inner()) = Breaker::Open {
            until: Instant::now() + PAUSE,
        };
        // A connection that stopped answering is not reused: the probe
        // starts a fresh one.
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "Redis is unreachable: rate limits fall back to this instance's memory"
            );
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(connection) = self
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
        Ok(connection)
    }
}
