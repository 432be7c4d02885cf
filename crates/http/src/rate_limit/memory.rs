//! In-memory limits: governor's keyed GCRA, one state per client IP.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::Standing;

type Keyed =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// Forget clients whose allowance is whole again this often (in checks),
/// so that the map does not grow with every address ever seen.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug)]
pub(super) struct MemoryLimiter {
    limiter: Keyed,
    checks: AtomicU64,
}

impl MemoryLimiter {
    pub(super) fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            checks: AtomicU64::new(0),
        }
    }

    pub(super) fn check(&self, client: IpAddr, emission: Duration, burst: u32) -> Standing {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        match self.limiter.check_key(&client) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Standing {
                    limit: burst,
                    remaining,
                    reset: emission * burst.saturating_sub(remaining),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Standing {
                    limit: burst,
                    remaining: 0,
                    reset: wait + emission * burst.saturating_sub(1),
                    retry_after: Some(wait),
                }
            }
        }
    }
}
