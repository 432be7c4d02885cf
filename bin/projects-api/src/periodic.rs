//! The background work of every instance: periodic tasks, and the session
//! jobs they run (cleanup of dead sessions, the live-sessions gauge).
//!
//! A task that must run on one instance at a time takes a
//! transaction-scoped advisory lock inside its own transaction (see
//! `Sessions::cleanup_batch`), so it is safe behind a transaction pooler
//! and needs no coordination here: the other instances' attempts find the
//! lock taken and skip that round. A job queue can adopt these jobs as
//! they are.

use std::future::Future;
use std::time::Duration;

use projects_http::metrics::SESSIONS_LIVE;
use projects_store::{CleanupBatch, Store, StoreError};
use tokio::task::JoinHandle;

/// Runs `job` every `period` (the first run after one period) until the
/// task is aborted; a failure is logged and the next round runs anyway.
pub fn every<F, Fut>(name: &'static str, period: Duration, mut job: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), StoreError>> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = job().await {
                tracing::warn!(task.name = name, error = ?error, "a periodic task failed; it runs again next round");
            }
        }
    })
}

/// Sessions (and feed entries) removed per batch: each batch is one short
/// transaction.
pub const CLEANUP_BATCH: i64 = 500;
/// Batches per round at most, so that one round stays short; the next
/// round goes on.
pub const CLEANUP_MAX_BATCHES: usize = 20;

/// One cleanup round: bounded batches of ended and expired sessions (their
/// refresh tokens go with them) and of feed entries older than
/// `feed_window` (what the revocation reload no longer needs). Stops early
/// when another instance holds the cleanup lock.
pub async fn clean_up_sessions(
    store: &Store,
    feed_window: Duration,
) -> Result<CleanupBatch, StoreError> {
    let mut total = CleanupBatch::default();
    for _ in 0..CLEANUP_MAX_BATCHES {
        let Some(batch) = store
            .sessions()
            .cleanup_batch(CLEANUP_BATCH, feed_window)
            .await?
        else {
            break;
        };
        total.sessions += batch.sessions;
        total.feed_entries += batch.feed_entries;
        // Each statement of a batch removes up to CLEANUP_BATCH rows; a batch
        // that removed fewer of each kind found the end.
        let full = u64::try_from(CLEANUP_BATCH).unwrap_or(u64::MAX);
        if batch.sessions < full && batch.feed_entries < full {
            break;
        }
    }
    if total != CleanupBatch::default() {
        tracing::info!(
            cleanup.sessions = total.sessions,
            cleanup.feed_entries = total.feed_entries,
            "removed dead sessions"
        );
    }
    Ok(total)
}

/// Sets the live-sessions gauge (one count per round, never per request).
pub async fn count_live_sessions(store: &Store) -> Result<(), StoreError> {
    let live = store.sessions().count_live().await?;
    // Counts stay far below 2^53: the conversion is exact.
    metrics::gauge!(SESSIONS_LIVE).set(live as f64);
    Ok(())
}

/// Idempotency keys deleted per statement: short transactions, no long lock.
pub const IDEMPOTENCY_CLEANUP_BATCH: i64 = 1000;

/// Deletes the idempotency keys older than 24 hours, in batches, unless
/// another instance is doing it (a transaction-level advisory lock, safe
/// behind a transaction pooler).
pub async fn expire_idempotency_keys(store: &Store) -> Result<(), StoreError> {
    let deleted = store
        .idempotency_keys()
        .expire(IDEMPOTENCY_CLEANUP_BATCH)
        .await?;
    if deleted > 0 {
        tracing::info!(
            idempotency.expired = deleted,
            "expired idempotency keys deleted"
        );
    }
    Ok(())
}
