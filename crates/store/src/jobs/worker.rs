//! The worker loop every instance runs: schedule the periodic jobs, claim
//! due jobs, hand each to the handler, and record how it ended. It knows
//! nothing of what a job does (mail, cleanup): the handler does.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;

use super::{ClaimedJob, FailOutcome, NewJob};
use crate::{Store, StoreError};

/// Jobs finished, by `kind`.
pub const JOBS_COMPLETED_TOTAL: &str = "jobs_completed_total";
/// Failed attempts that were queued again, by `kind`.
pub const JOBS_RETRIED_TOTAL: &str = "jobs_retried_total";
/// Jobs given up (dead), by `kind`.
pub const JOBS_DEAD_TOTAL: &str = "jobs_dead_total";

/// Why an attempt failed; `Display`-safe text goes into the job's
/// `last_error`, so it must never carry an address, a token or a secret.
#[derive(Debug, Clone)]
pub struct JobFailure {
    pub message: String,
    /// Retrying cannot help (a malformed payload): dead at once.
    pub permanent: bool,
}

impl JobFailure {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Runs one job. Called at least once per job (a worker can die after the
/// work and before recording it), so handlers must tolerate a repeat.
pub trait JobHandler: Send + Sync + 'static {
    fn handle(&self, job: &ClaimedJob) -> impl Future<Output = Result<(), JobFailure>> + Send;
}

/// Exponential backoff with jitter: attempt n waits a random time between
/// half and all of `base * 2^(n-1)`, capped at `max`, so that jobs failing
/// together (an SMTP outage) do not come back in lockstep.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn delay(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let full = self.base.saturating_mul(1 << exponent).min(self.max);
        // A random fraction in [0.5, 1.0] from the fast v4 generator.
        let random = (uuid::Uuid::new_v4().as_u128() & 0xffff) as f64 / f64::from(0xffff_u32);
        full.mul_f64(0.5 + random / 2.0)
    }
}

/// A job queued once per `period` across the fleet.
#[derive(Debug, Clone)]
pub struct Periodic {
    pub job: NewJob,
    pub period: Duration,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claim lasts; a worker that dies loses its jobs to another
    /// after this. A job's handler gets three quarters of it.
    pub lease: Duration,
    /// How long to sleep when no job is due.
    pub poll_interval: Duration,
    /// Jobs claimed (and run concurrently) at once.
    pub batch: i64,
    pub backoff: Backoff,
    pub periodic: Vec<Periodic>,
    /// After the stop signal, how long running jobs may go on before they
    /// are released for another instance.
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            batch: 8,
            backoff: Backoff {
                base: Duration::from_secs(10),
                max: Duration::from_secs(3600),
            },
            periodic: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The worker of one instance.
#[derive(Debug)]
pub struct Worker<H> {
    store: Store,
    handler: Arc<H>,
    config: WorkerConfig,
}

impl<H: JobHandler> Worker<H> {
    pub fn new(store: Store, handler: H, config: WorkerConfig) -> Self {
        Self {
            store,
            handler: Arc::new(handler),
            config,
        }
    }

    /// Runs until `stop` turns true; then finishes its running jobs within
    /// the grace period, releases those that did not finish, and returns.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!("job worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            let claimed = match self.round(&stop).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(error = %error, error.detail = ?error, "job worker round failed");
                    0
                }
            };
            if claimed == 0 {
                tokio::select! {
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = stop.wait_for(|stopped| *stopped) => {}
                }
            }
        }
        tracing::info!("job worker stopped");
    }

    /// One round: queues the periodic jobs whose period began, then claims a
    /// batch and runs it. Returns how many jobs were claimed.
    pub async fn round(&self, stop: &watch::Receiver<bool>) -> Result<usize, StoreError> {
        for periodic in &self.config.periodic {
            self.store
                .jobs()
                .enqueue_periodic(&periodic.job, periodic.period)
                .await?;
        }
        let jobs = self
            .store
            .jobs()
            .claim(self.config.lease, self.config.batch)
            .await?;
        let claimed = jobs.len();
        join_all(jobs.into_iter().map(|job| self.run_job(job, stop.clone()))).await;
        Ok(claimed)
    }

    async fn run_job(&self, job: ClaimedJob, mut stop: watch::Receiver<bool>) {
        let limit = self.config.lease.mul_f64(0.75);
        let work = tokio::time::timeout(limit, self.handler.handle(&job));
        let grace = self.config.shutdown_grace;
        let stopped = async move {
            // A dropped sender counts as a stop.
            let _ = stop.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        };
        let outcome = tokio::select! {
            outcome = work => Some(outcome),
            () = stopped => None,
        };
        let jobs = self.store.jobs();
        let recorded = match outcome {
            None => jobs.release(&job).await.map(|released| {
                tracing::info!(job.id = %job.id, job.kind = %job.kind, released, "job released at shutdown");
            }),
            Some(Ok(Ok(()))) => jobs.complete(&job).await.map(|done| {
                if done {
                    metrics::counter!(JOBS_COMPLETED_TOTAL, "kind" => job.kind.clone()).increment(1);
                    tracing::debug!(job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempt, "job done");
                } else {
                    tracing::warn!(job.id = %job.id, job.kind = %job.kind, "job finished after its lease expired");
                }
            }),
            Some(Ok(Err(failure))) => self.fail(&job, &failure).await,
            Some(Err(_)) => {
                self.fail(&job, &JobFailure::transient("the job ran out of time"))
                    .await
            }
        };
        if let Err(error) = recorded {
            // The lease expires and another worker runs the job again.
            tracing::warn!(job.id = %job.id, error = %error, error.detail = ?error, "could not record a job's end");
        }
    }

    async fn fail(&self, job: &ClaimedJob, failure: &JobFailure) -> Result<(), StoreError> {
        let delay = self.config.backoff.delay(job.attempt);
        let outcome = self
            .store
            .jobs()
            .fail(job, &failure.message, delay, failure.permanent)
            .await?;
        match outcome {
            FailOutcome::Retrying => {
                metrics::counter!(JOBS_RETRIED_TOTAL, "kind" => job.kind.clone()).increment(1);
                tracing::warn!(
                    job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempt,
                    retry_in_ms = delay.as_millis() as u64, error = %failure.message,
                    "job failed; retrying"
                );
            }
            FailOutcome::Dead => {
                metrics::counter!(JOBS_DEAD_TOTAL, "kind" => job.kind.clone()).increment(1);
                tracing::error!(
                    job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempt,
                    error = %failure.message, "job failed for good; it is dead"
                );
            }
            FailOutcome::LeaseLost => {
                tracing::warn!(job.id = %job.id, job.kind = %job.kind, "job failed after its lease expired");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_under_the_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(300),
        };
        for attempt in 1..=12 {
            let full = (Duration::from_secs(10) * (1 << (attempt - 1))).min(backoff.max);
            let delay = backoff.delay(attempt);
            assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
        }
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(3)).collect();
        assert!(delays.len() > 1, "no jitter");
    }
}
