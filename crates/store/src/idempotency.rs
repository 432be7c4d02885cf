//! Idempotency keys: the first request with a key claims it (a row in flight),
//! the response it produced is stored in the same transaction as its effect,
//! and later requests with the same key get that response again, from any
//! instance. Rows expire after 24 hours and are deleted in bounded batches by
//! one instance at a time.

use std::time::Duration;

use projects_domain::UserId;
use uuid::Uuid;

use crate::statement::Sql;
use crate::{Store, StoreError};

/// How long a key holds its response.
pub const IDEMPOTENCY_KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A claim still in flight after this long belongs to a request that died
/// (every request is bounded by the database and shutdown timeouts, far
/// below this): another request with the key may take it over.
const ABANDONED_AFTER_SECONDS: i32 = 120;

/// The key of the cleanup's transaction-level advisory lock.
const CLEANUP_LOCK_KEY: i64 = 0x6964_656d_7065_6e74;

/// A response as it is replayed: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a request with an idempotency key does next.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: do the work, store the response.
    Owned,
    /// The same request was answered already: send this again.
    Replay(StoredResponse),
    /// The first request with this key is still running.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

/// The key of one user's request, the request's fingerprint, and the
/// request's own claim id (so that only this request completes or releases
/// the key it claimed).
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    pub user: UserId,
    pub key: &'a str,
    pub request_hash: &'a [u8; 32],
    pub claim: Uuid,
}

impl<'a> IdempotencyKey<'a> {
    /// The key for one request, with a fresh claim id.
    pub fn new(user: UserId, key: &'a str, request_hash: &'a [u8; 32]) -> Self {
        Self {
            user,
            key,
            request_hash,
            claim: Uuid::new_v4(),
        }
    }
}

const CLAIM: Sql = Sql::new(
    "idempotency.claim",
    "INSERT INTO idempotency_keys (user_id, key, request_hash, claim) VALUES ($1, $2, $3, $5) \
     ON CONFLICT (user_id, key) DO UPDATE \
        SET request_hash = EXCLUDED.request_hash, claim = EXCLUDED.claim, status = NULL, \
            header_names = '{}', \
            header_values = '{}', body = NULL, created_at = now() \
      WHERE idempotency_keys.created_at < now() - interval '24 hours' \
         OR (idempotency_keys.status IS NULL \
             AND idempotency_keys.created_at < now() - make_interval(secs => $4)) \
     RETURNING true",
);
const FIND: Sql = Sql::new(
    "idempotency.find",
    "SELECT request_hash, status, header_names, header_values, body FROM idempotency_keys \
     WHERE user_id = $1 AND key = $2",
);
pub(crate) const COMPLETE: Sql = Sql::new(
    "idempotency.complete",
    "UPDATE idempotency_keys SET status = $3, header_names = $4, header_values = $5, body = $6 \
     WHERE user_id = $1 AND key = $2 AND claim = $7 AND status IS NULL",
);
const RELEASE: Sql = Sql::new(
    "idempotency.release",
    "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND claim = $3 AND status IS NULL",
);
const CLEANUP_LOCK: Sql = Sql::new(
    "idempotency.cleanup_lock",
    "SELECT pg_try_advisory_xact_lock($1)",
);
const EXPIRE: Sql = Sql::new(
    "idempotency.expire",
    "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY( \
        SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '24 hours' \
        ORDER BY created_at LIMIT $1))",
);

/// The idempotency keys of every user.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKeys<'a> {
    store: &'a Store,
}

impl Store {
    pub fn idempotency_keys(&self) -> IdempotencyKeys<'_> {
        IdempotencyKeys { store: self }
    }
}

impl IdempotencyKeys<'_> {
    /// Claims the key for this request, or says what happened to it.
    pub async fn claim(&self, key: IdempotencyKey<'_>) -> Result<Claim, StoreError> {
        let client = self.store.client().await?;
        let hash: &[u8] = key.request_hash;
        // A row deleted between the two statements (released by a failed
        // first request, or expired) is claimed on the next round.
        for _ in 0..3 {
            let claimed = self
                .store
                .slow
                .query_opt(
                    &client,
                    &CLAIM,
                    &[
                        key.user.as_uuid(),
                        &key.key,
                        &hash,
                        &f64::from(ABANDONED_AFTER_SECONDS),
                        &key.claim,
                    ],
                )
                .await?;
            if claimed.is_some() {
                return Ok(Claim::Owned);
            }
            let Some(row) = self
                .store
                .slow
                .query_opt(&client, &FIND, &[key.user.as_uuid(), &key.key])
                .await?
            else {
                continue;
            };
            if row.try_get::<_, &[u8]>(0)? != hash {
                return Ok(Claim::Mismatch);
            }
            let Some(status) = row.try_get::<_, Option<i16>>(1)? else {
                return Ok(Claim::InFlight);
            };
            let names: Vec<String> = row.try_get(2)?;
            let values: Vec<String> = row.try_get(3)?;
            return Ok(Claim::Replay(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                headers: names.into_iter().zip(values).collect(),
                body: row.try_get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
            }));
        }
        Ok(Claim::InFlight)
    }

    /// Gives the key up after the request failed without an effect, so
    /// that a retry can run (unless the claim is no longer this request's).
    pub async fn release(&self, key: IdempotencyKey<'_>) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        self.store
            .slow
            .execute(
                &client,
                &RELEASE,
                &[key.user.as_uuid(), &key.key, &key.claim],
            )
            .await?;
        Ok(())
    }

    /// Deletes expired keys, oldest first, in batches of `batch`, unless
    /// another instance is doing it right now. Returns how many it deleted.
    pub async fn expire(&self, batch: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let mut client = self.store.client().await?;
            let tx = client.transaction().await?;
            let locked: bool = self
                .store
                .slow
                .query_one(&tx, &CLEANUP_LOCK, &[&CLEANUP_LOCK_KEY])
                .await?
                .try_get(0)?;
            if !locked {
                return Ok(deleted);
            }
            let count = self.store.slow.execute(&tx, &EXPIRE, &[&batch]).await?;
            tx.commit().await?;
            deleted += count;
            if count < u64::try_from(batch).unwrap_or(0) {
                return Ok(deleted);
            }
        }
    }
}

/// `StoredResponse` as the columns of `COMPLETE`.
pub(crate) fn response_columns(response: &StoredResponse) -> (i16, Vec<String>, Vec<String>) {
    let status = i16::try_from(response.status).unwrap_or(500);
    let (names, values) = response.headers.iter().cloned().unzip();
    (status, names, values)
}
