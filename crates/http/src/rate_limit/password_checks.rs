//! The per-account throttle of password checks (login and the current
//! password of `PATCH /users/me` alike), whatever the client address.
//!
//! Each check is counted *before* the hash runs, as if it failed, so that
//! concurrent attempts cannot slip past together; a right password clears
//! the account's record. The first [`FREE_CHECKS`] checks run at once;
//! from then on each check makes the next wait: [`FIRST_DELAY`], doubling
//! with every further check, never more than [`MAX_DELAY`] (so the owner is
//! never locked out for good). An attempt during the wait gets 429 with
//! `Retry-After` and is not counted. A record is forgotten [`FORGET_AFTER`]
//! after its wait ends. Spraying one account therefore gets 6 checks in the
//! first minute (at 0, 0, 0, 5, 15 and 35 s), then one per 2.5, 5, 10 and 15
//! minutes, from any number of addresses.
//!
//! Accounts are keyed by a SHA-256 of the normalised e-mail address, so
//! that an unknown address is throttled exactly like a known one (no
//! enumeration) and no address is written to Redis.
//!
//! Shared through Redis when `REDIS_URL` is set (one Lua script, atomic on
//! Redis's clock). Without Redis, or while it fails, in this instance's
//! memory, which is kept warm the same way as the rate limits' (every check
//! is recorded there too). Memory rather than PostgreSQL: a deployment that
//! runs several instances already needs Redis for the rate limits to hold
//! across them, and a table would add a write to every login plus a
//! cleanup job; without Redis each instance throttles on its own, so N
//! instances allow N times the checks (docs/security.md says so).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::redis::RedisLink;

/// Checks that run without waiting.
pub const FREE_CHECKS: u32 = 3;
/// The wait after the first check past the free ones; it doubles.
pub const FIRST_DELAY: Duration = Duration::from_secs(5);
/// The longest wait.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// How long after its wait ends a record is kept.
pub const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Records in memory past which forgotten ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// Returns {allowed (0/1), retry after ms}.
const BEGIN: &str = r"
local free = tonumber(ARGV[1])
local first = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local record = redis.call('HMGET', KEYS[1], 'checks', 'until')
local checks = tonumber(record[1]) or 0
local wait_until = tonumber(record[2]) or 0
if wait_until > now then
  return {0, wait_until - now}
end
checks = checks + 1
local delay = 0
if checks >= free then
  delay = math.min(first * 2 ^ (checks - free), max)
end
redis.call('HSET', KEYS[1], 'checks', checks, 'until', string.format('%d', now + delay))
redis.call('PEXPIRE', KEYS[1], string.format('%d', delay + forget))
return {1, 0}
";

static BEGIN_SCRIPT: std::sync::LazyLock<::redis::Script> =
    std::sync::LazyLock::new(|| ::redis::Script::new(BEGIN));

const CLEAR: &str = "redis.call('DEL', KEYS[1]) return {1}";

static CLEAR_SCRIPT: std::sync::LazyLock<::redis::Script> =
    std::sync::LazyLock::new(|| ::redis::Script::new(CLEAR));

#[derive(Debug, Clone, Copy)]
struct Record {
    checks: u32,
    wait_until: Instant,
}

/// The throttle; shared by every worker of a server.
#[derive(Debug)]
pub struct PasswordChecks {
    redis: Option<Arc<RedisLink>>,
    memory: Mutex<HashMap<[u8; 32], Record>>,
}

/// The wait after the `checks`-th check.
fn delay_after(checks: u32) -> Duration {
    if checks < FREE_CHECKS {
        return Duration::ZERO;
    }
    let doublings = (checks - FREE_CHECKS).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl PasswordChecks {
    pub(super) fn new(redis: Option<Arc<RedisLink>>) -> Self {
        Self {
            redis,
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a password check for `account` (an e-mail address) before it
    /// runs; `Err(retry after)` when the account must wait.
    pub async fn begin(&self, account: &str) -> Result<(), Duration> {
        let key = account_key(account);
        let local = self.begin_in_memory(key);
        let Some(redis) = &self.redis else {
            return local;
        };
        let args = [
            i64::from(FREE_CHECKS),
            millis(FIRST_DELAY),
            millis(MAX_DELAY),
            millis(FORGET_AFTER),
        ];
        match redis
            .run(&BEGIN_SCRIPT, &redis_key(&key), &args)
            .await
            .as_deref()
        {
            Some(&[1, _]) => Ok(()),
            Some(&[_, retry_ms]) => Err(Duration::from_millis(
                u64::try_from(retry_ms).unwrap_or(0).max(1),
            )),
            _ => local,
        }
    }

    /// The password was right: the account starts afresh.
    pub async fn succeeded(&self, account: &str) {
        let key = account_key(account);
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(redis) = &self.redis {
            redis.run(&CLEAR_SCRIPT, &redis_key(&key), &[]).await;
        }
    }

    fn begin_in_memory(&self, key: [u8; 32]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut records = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() > SWEEP_ABOVE {
            records.retain(|_, record| record.wait_until + FORGET_AFTER > now);
        }
        let record = records.entry(key).or_insert(Record {
            checks: 0,
            wait_until: now,
        });
        if record.wait_until > now {
            return Err(record.wait_until - now);
        }
        if record.wait_until + FORGET_AFTER <= now {
            record.checks = 0;
        }
        record.checks = record.checks.saturating_add(1);
        record.wait_until = now + delay_after(record.checks);
        Ok(())
    }
}

/// The account's key: a hash of the normalised address.
fn account_key(account: &str) -> [u8; 32] {
    Sha256::digest(account.trim().to_lowercase().as_bytes()).into()
}

fn redis_key(key: &[u8; 32]) -> String {
    let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("projects-api:password-checks:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_from_the_third_check_and_is_bounded() {
        let waits: Vec<u64> = (1..=12).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn in_memory_the_fourth_check_waits_and_a_success_clears() {
        let checks = PasswordChecks::new(None);
        let key = account_key(" Ada@Example.com");
        for _ in 0..FREE_CHECKS {
            assert_eq!(checks.begin_in_memory(key), Ok(()));
        }
        let wait = checks.begin_in_memory(key).expect_err("must wait");
        assert!(
            wait > Duration::from_secs(4) && wait <= FIRST_DELAY,
            "{wait:?}"
        );
        // The same account however it is spelt.
        assert!(
            checks
                .begin_in_memory(account_key("ada@example.com"))
                .is_err()
        );
        checks
            .memory
            .lock()
            .expect("memory")
            .remove(&account_key("ada@example.com"));
        assert_eq!(checks.begin_in_memory(key), Ok(()));
    }
}
