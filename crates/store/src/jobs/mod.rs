//! The `jobs` table: a transactional outbox and background-job queue.
//!
//! A job is inserted in the same transaction as the change that causes it
//! ([`Tx::enqueue`]), so a rolled-back change queues nothing. Workers claim
//! due jobs with `FOR UPDATE SKIP LOCKED` under a lease; a claim is named by
//! its `lease_id`, so only the holder of the current lease can finish the
//! job. A failure puts the job back with a later `run_at` (the caller picks
//! the backoff), or into the `dead` state after `max_attempts`, where it
//! stays visible. Periodic jobs are deduplicated per period by a unique key,
//! so that a fleet runs each one once per period.
//!
//! No session state and no session-level advisory lock: everything works
//! behind a transaction-pooling proxy.

pub(crate) mod worker;

use std::time::Duration;

use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::statement::{Executor, SlowQuery, Sql};
use crate::{Store, StoreError, Tx};

pub use worker::{Backoff, JobFailure, JobHandler, Periodic, Worker, WorkerConfig};

/// The longest error text kept on a job (the column's limit).
const ERROR_LIMIT: usize = 2000;

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What the job is; the worker's handler dispatches on it.
    pub kind: String,
    /// The job's input, read by its handler.
    pub payload: serde_json::Value,
    /// Attempts before the job is given up (dead), 1 to 100.
    pub max_attempts: i32,
}

impl NewJob {
    /// A job that may be tried `max_attempts` times.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value, max_attempts: i32) -> Self {
        Self {
            kind: kind.into(),
            payload,
            max_attempts,
        }
    }
}

/// A job claimed by a worker, under a lease.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Names this claim: only it may complete, fail or release the job.
    pub lease_id: Uuid,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobState {
    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "dead" => Ok(Self::Dead),
            other => Err(StoreError::Other(
                format!("unknown job state {other:?}").into(),
            )),
        }
    }
}

/// A job as the table has it, for operators and tests.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again, due after the backoff.
    Retrying,
    /// Out of attempts (or a permanent failure): dead, and kept.
    Dead,
    /// The lease had expired and someone else holds the job now.
    LeaseLost,
}

/// The queue at one moment, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobStats {
    /// Waiting to run (due or not), retries included.
    pub queued: i64,
    /// Claimed by a worker now.
    pub running: i64,
    /// Queued after at least one failed attempt.
    pub retrying: i64,
    /// Given up; they stay until an operator deletes them.
    pub dead: i64,
    /// How long the oldest due job has been due (0 when none is).
    pub oldest_due_age: Duration,
}

/// The jobs repository.
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    store: &'a Store,
}

const INSERT: Sql = Sql::new(
    "jobs.insert",
    "INSERT INTO jobs (id, kind, payload, max_attempts) VALUES ($1, $2, $3, $4)",
);
// One row per kind and period number (whole periods since the epoch, by the
// database's clock, so every instance agrees): the first instance to get
// here in a period queues the job, the others insert nothing.
const INSERT_PERIODIC: Sql = Sql::new(
    "jobs.insert_periodic",
    "INSERT INTO jobs (id, kind, payload, max_attempts, dedupe_key) \
     SELECT $1::uuid, $2::text, $3::jsonb, $4::int4, \
            $2::text || ':' || floor(extract(epoch FROM now()) / $5::bigint)::bigint \
     ON CONFLICT (dedupe_key) DO NOTHING",
);
// A job whose lease ran out on its last attempt is given up here, since
// nobody will report its end.
const BURY_ABANDONED: Sql = Sql::new(
    "jobs.bury_abandoned",
    "UPDATE jobs SET state = 'dead', lease_id = NULL, locked_until = NULL, \
            last_error = 'the worker did not finish before its lease expired' \
     WHERE state = 'running' AND locked_until < now() AND attempts >= max_attempts",
);
// Due queued jobs and expired leases, oldest first; SKIP LOCKED lets
// concurrent claims pass each other instead of queueing on one row.
const CLAIM: Sql = Sql::new(
    "jobs.claim",
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_id = $1, \
            locked_until = now() + $2 * interval '1 millisecond' \
     WHERE id IN ( \
         SELECT id FROM jobs \
         WHERE (state = 'queued' AND run_at <= now()) \
            OR (state = 'running' AND locked_until < now() AND attempts < max_attempts) \
         ORDER BY run_at \
         LIMIT $3 \
         FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, payload, attempts, max_attempts",
);
const COMPLETE: Sql = Sql::new(
    "jobs.complete",
    "UPDATE jobs SET state = 'done', lease_id = NULL, locked_until = NULL, finished_at = now() \
     WHERE id = $1 AND lease_id = $2 AND state = 'running'",
);
// $3 true: give up now, whatever attempts are left.
const FAIL: Sql = Sql::new(
    "jobs.fail",
    "UPDATE jobs SET \
         state = CASE WHEN $3 OR attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
         run_at = now() + $4 * interval '1 millisecond', \
         last_error = $5, lease_id = NULL, locked_until = NULL \
     WHERE id = $1 AND lease_id = $2 AND state = 'running' \
     RETURNING state",
);
// Giving a job back unstarted (shutdown) does not cost it an attempt.
const RELEASE: Sql = Sql::new(
    "jobs.release",
    "UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = now(), \
            lease_id = NULL, locked_until = NULL \
     WHERE id = $1 AND lease_id = $2 AND state = 'running'",
);
const STATS: Sql = Sql::new(
    "jobs.stats",
    "SELECT count(*) FILTER (WHERE state = 'queued') AS queued, \
            count(*) FILTER (WHERE state = 'running') AS running, \
            count(*) FILTER (WHERE state = 'queued' AND attempts > 0) AS retrying, \
            count(*) FILTER (WHERE state = 'dead') AS dead, \
            COALESCE(extract(epoch FROM now() - min(run_at) FILTER \
                (WHERE state = 'queued' AND run_at <= now())), 0)::float8 AS oldest_due \
     FROM jobs WHERE state IN ('queued', 'running', 'dead')",
);
const FIND: Sql = Sql::new(
    "jobs.find",
    "SELECT id, kind, payload, state, attempts, max_attempts, run_at, last_error, \
            created_at, finished_at FROM jobs WHERE id = $1",
);
const LIST_BY_KIND: Sql = Sql::new(
    "jobs.list_by_kind",
    "SELECT id, kind, payload, state, attempts, max_attempts, run_at, last_error, \
            created_at, finished_at FROM jobs WHERE kind = $1 ORDER BY created_at, id LIMIT $2",
);
const LIST_DEAD: Sql = Sql::new(
    "jobs.list_dead",
    "SELECT id, kind, payload, state, attempts, max_attempts, run_at, last_error, \
            created_at, finished_at FROM jobs WHERE state = 'dead' ORDER BY updated_at LIMIT $1",
);
const DELETE_FINISHED: Sql = Sql::new(
    "jobs.delete_finished",
    "DELETE FROM jobs WHERE id IN ( \
         SELECT id FROM jobs WHERE state = 'done' AND finished_at < now() - $1 * interval '1 second' \
         LIMIT $2)",
);

impl Store {
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs { store: self }
    }
}

impl Tx<'_> {
    /// Queues a job in this transaction: it exists once the transaction
    /// commits, and never if it rolls back.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Uuid, StoreError> {
        enqueue(self.slow, &self.tx, job).await
    }
}

pub(crate) async fn enqueue<E: Executor>(
    slow: SlowQuery,
    client: &E,
    job: &NewJob,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    slow.execute(
        client,
        &INSERT,
        &[&id, &job.kind, &job.payload, &job.max_attempts],
    )
    .await?;
    Ok(id)
}

impl Jobs<'_> {
    /// Queues a job on its own (in a transaction of its own).
    pub async fn enqueue(&self, job: &NewJob) -> Result<Uuid, StoreError> {
        let client = self.store.client().await?;
        enqueue(self.store.slow, &client, job).await
    }

    /// Queues `job` unless this period's run of its kind is queued already:
    /// returns whether this call queued it. Periods are counted from the
    /// epoch on the database's clock.
    pub async fn enqueue_periodic(
        &self,
        job: &NewJob,
        period: Duration,
    ) -> Result<bool, StoreError> {
        let period = i64::try_from(period.as_secs().max(1)).unwrap_or(i64::MAX);
        let client = self.store.client().await?;
        let inserted = self
            .store
            .slow
            .execute(
                &client,
                &INSERT_PERIODIC,
                &[
                    &Uuid::now_v7(),
                    &job.kind,
                    &job.payload,
                    &job.max_attempts,
                    &period,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Claims up to `limit` due jobs for `lease`: due queued jobs and jobs
    /// whose lease expired. Jobs that ran out of leases on their last
    /// attempt are moved to `dead` first.
    pub async fn claim(&self, lease: Duration, limit: i64) -> Result<Vec<ClaimedJob>, StoreError> {
        let client = self.store.client().await?;
        let buried = self
            .store
            .slow
            .execute(&client, &BURY_ABANDONED, &[])
            .await?;
        if buried > 0 {
            tracing::warn!(jobs.count = buried, "jobs given up after an expired lease");
        }
        let lease_id = Uuid::now_v7();
        let lease_ms = millis(lease);
        let rows = self
            .store
            .slow
            .query(&client, &CLAIM, &[&lease_id, &lease_ms, &limit])
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedJob {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    attempt: row.try_get("attempts")?,
                    max_attempts: row.try_get("max_attempts")?,
                    lease_id,
                })
            })
            .collect()
    }

    /// Marks a claimed job done; false when the lease was lost (another
    /// worker holds the job now).
    pub async fn complete(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        let client = self.store.client().await?;
        let done = self
            .store
            .slow
            .execute(&client, &COMPLETE, &[&job.id, &job.lease_id])
            .await?;
        Ok(done == 1)
    }

    /// Records a failed attempt: queued again after `retry_in`, or dead when
    /// it was the last attempt or `permanent`.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        retry_in: Duration,
        permanent: bool,
    ) -> Result<FailOutcome, StoreError> {
        let error: String = error.chars().take(ERROR_LIMIT).collect();
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_opt(
                &client,
                &FAIL,
                &[
                    &job.id,
                    &job.lease_id,
                    &permanent,
                    &millis(retry_in),
                    &error,
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(FailOutcome::LeaseLost);
        };
        let state: &str = row.try_get("state")?;
        Ok(match JobState::parse(state)? {
            JobState::Dead => FailOutcome::Dead,
            _ => FailOutcome::Retrying,
        })
    }

    /// Gives a claimed job back without counting the attempt (the worker is
    /// stopping before it could run it to the end).
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        let client = self.store.client().await?;
        let released = self
            .store
            .slow
            .execute(&client, &RELEASE, &[&job.id, &job.lease_id])
            .await?;
        Ok(released == 1)
    }

    /// Counts by state and the age of the oldest due job.
    pub async fn stats(&self) -> Result<JobStats, StoreError> {
        let client = self.store.client().await?;
        let row = self.store.slow.query_one(&client, &STATS, &[]).await?;
        let oldest: f64 = row.try_get("oldest_due")?;
        Ok(JobStats {
            queued: row.try_get("queued")?,
            running: row.try_get("running")?,
            retrying: row.try_get("retrying")?,
            dead: row.try_get("dead")?,
            oldest_due_age: Duration::from_secs_f64(oldest.max(0.0)),
        })
    }

    pub async fn find(&self, id: Uuid) -> Result<JobRecord, StoreError> {
        let client = self.store.client().await?;
        let row = self.store.slow.query_one(&client, &FIND, &[&id]).await?;
        record_from_row(&row)
    }

    /// Jobs of one kind, oldest first.
    pub async fn list_by_kind(&self, kind: &str, limit: i64) -> Result<Vec<JobRecord>, StoreError> {
        let client = self.store.client().await?;
        let rows = self
            .store
            .slow
            .query(&client, &LIST_BY_KIND, &[&kind, &limit])
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The dead jobs, oldest first.
    pub async fn dead(&self, limit: i64) -> Result<Vec<JobRecord>, StoreError> {
        let client = self.store.client().await?;
        let rows = self
            .store
            .slow
            .query(&client, &LIST_DEAD, &[&limit])
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Deletes up to `limit` done jobs finished more than `age` ago; returns
    /// how many. Dead jobs stay.
    pub async fn delete_finished(&self, age: Duration, limit: i64) -> Result<u64, StoreError> {
        let seconds = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        let client = self.store.client().await?;
        self.store
            .slow
            .execute(&client, &DELETE_FINISHED, &[&seconds, &limit])
            .await
    }
}

/// Milliseconds as PostgreSQL multiplies an interval by them.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn record_from_row(row: &Row) -> Result<JobRecord, StoreError> {
    let state: &str = row.try_get("state")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        state: JobState::parse(state)?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: row.try_get("run_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
