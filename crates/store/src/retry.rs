//! Bounded retries of transactions that lost a serialization race (40001)
//! or were chosen as a deadlock victim (40P01). Both are safe to run again
//! from the start: PostgreSQL rolled the whole transaction back. After the
//! last attempt the error stays `StoreError::Unavailable` (503).

use std::future::Future;
use std::time::Duration;

use crate::StoreError;

/// Attempts in all, the first included.
pub const TRANSACTION_ATTEMPTS: u32 = 3;

/// Runs `transaction` (which must open, run and commit its own transaction
/// on each call) until it succeeds, fails otherwise, or has failed with a
/// conflict `TRANSACTION_ATTEMPTS` times.
///
/// ```text
/// retry_transaction(|| async {
///     let mut client = store.client().await?;
///     let tx = client.transaction().await?;
///     // … statements …
///     tx.commit().await?;
///     Ok(value)
/// })
/// .await
/// ```
pub async fn retry_transaction<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(error) if error.is_transaction_conflict() && attempt < TRANSACTION_ATTEMPTS => {
                tracing::debug!(attempt, "transaction conflict; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A few milliseconds, growing, with jitter so that the two transactions
/// that collided do not collide again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.subsec_nanos() % 5_000_000);
    Duration::from_millis(5 * u64::from(attempt)) + Duration::from_nanos(u64::from(jitter))
}
