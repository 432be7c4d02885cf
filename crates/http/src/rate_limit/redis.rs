//! Limits shared through Redis: the same GCRA as governor, computed by a
//! Lua script so that the read-modify-write is atomic across instances, on
//! Redis's clock so that instances with skewed clocks agree.
//!
//! Redis trouble never fails a request: the caller falls back to memory,
//! one warning is logged per outage, and Redis is retried after a pause.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret as _, SecretString};

use super::{RateLimitError, Standing};

/// Returns {allowed (0/1), remaining, retry after µs, reset µs}.
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

/// How long a Redis round trip may take before we give up on it.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long to use memory alone after Redis failed.
const PAUSE: Duration = Duration::from_secs(1);

pub(super) struct RedisLimiter {
    client: redis::Client,
    script: redis::Script,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    paused_until: Mutex<Option<Instant>>,
    down: AtomicBool,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("down", &self.down)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    pub(super) fn new(url: &SecretString) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url.expose_secret()).map_err(RateLimitError::RedisUrl)?;
        Ok(Self {
            client,
            script: redis::Script::new(GCRA),
            connection: tokio::sync::Mutex::new(None),
            paused_until: Mutex::new(None),
            down: AtomicBool::new(false),
        })
    }

    /// `None` when Redis could not answer: the caller uses memory.
    pub(super) async fn check(
        &self,
        key: &str,
        emission: Duration,
        burst: u32,
    ) -> Option<Standing> {
        if self.paused() {
            return None;
        }
        match self.run(key, emission, burst).await {
            Ok((allowed, remaining, retry_us, reset_us)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: rate limits are shared again");
                }
                Some(Standing {
                    limit: burst,
                    remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                    reset: micros(reset_us),
                    retry_after: (allowed == 0).then(|| micros(retry_us)),
                })
            }
            Err(error) => {
                self.pause();
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %error,
                        "Redis is unreachable: rate limits fall back to this instance's memory"
                    );
                }
                None
            }
        }
    }

    async fn run(
        &self,
        key: &str,
        emission: Duration,
        burst: u32,
    ) -> Result<(i64, i64, i64, i64), redis::RedisError> {
        let mut connection = self.connection().await?;
        let emission_us = u64::try_from(emission.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = self.script.key(key);
        invocation.arg(emission_us).arg(burst);
        let call = invocation.invoke_async(&mut connection);
        match tokio::time::timeout(TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(timed_out()),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(1);
        let connect = ConnectionManager::new_with_config(self.client.clone(), config);
        let connection = match tokio::time::timeout(TIMEOUT * 2, connect).await {
            Ok(connection) => connection?,
            Err(_) => return Err(timed_out()),
        };
        *slot = Some(connection.clone());
        Ok(connection)
    }

    fn paused(&self) -> bool {
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        match *paused {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *paused = None;
                false
            }
            None => false,
        }
    }

    fn pause(&self) {
        *self.paused_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + PAUSE);
    }
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}
