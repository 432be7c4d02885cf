//! The shutdown drain: once it starts, readiness answers 503 while
//! requests are still served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the server starts draining (after SIGTERM, for
/// `SHUTDOWN_DRAIN_SECONDS`): readiness answers 503 at once, so that a load
/// balancer takes the instance out of rotation, while requests are still
/// served. Shared by every worker.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
