//! The background worker of every instance: claims due jobs from the
//! outbox and hands mail jobs to the mailer; runs the periodic cleanup. It
//! stops with the server (see `server.rs`): running jobs finish within the
//! grace period, or go back to the queue for another instance.

use std::time::Duration;

use projects_auth::AccountTokenKey;
use projects_http::AccountsConfig;
use projects_http::account_mail::{PASSWORD_RESET_REQUEST_JOB_KIND, password_reset_job};
use projects_mail::{Letter, MAIL_JOB_KIND, MailJob, Mailer};
use projects_store::{ClaimedJob, JobFailure, JobHandler, NewJob, Periodic, Store, WorkerConfig};

/// The job kind of the periodic cleanup.
pub const CLEANUP_JOB_KIND: &str = "cleanup";
/// How often the fleet runs the cleanup (once per period in all).
const CLEANUP_PERIOD: Duration = Duration::from_secs(15 * 60);
/// Done jobs are kept this long (dead ones until an operator deletes them).
const KEEP_DONE_JOBS: Duration = Duration::from_secs(7 * 24 * 3600);
/// Rows one cleanup deletes at most per table, to keep its transactions short.
const CLEANUP_BATCH: i64 = 10_000;

/// Runs the jobs of this service.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub store: Store,
    pub mailer: Mailer,
    pub tokens: AccountTokenKey,
    /// The front end's base URL, without a trailing slash.
    pub public_app_url: String,
    /// Lifetimes and limits of the mailed links.
    pub accounts: AccountsConfig,
}

/// The worker's settings: the defaults, the cleanup, and the server's grace.
pub fn worker_config(shutdown_grace: Duration) -> WorkerConfig {
    WorkerConfig {
        periodic: vec![Periodic {
            job: NewJob::new(CLEANUP_JOB_KIND, serde_json::json!({}), 3),
            period: CLEANUP_PERIOD,
        }],
        // Half the grace, so that releasing the rest fits in it too.
        shutdown_grace: shutdown_grace / 2,
        ..WorkerConfig::default()
    }
}

impl JobHandler for Jobs {
    async fn handle(&self, job: &ClaimedJob) -> Result<(), JobFailure> {
        match job.kind.as_str() {
            MAIL_JOB_KIND => self.send(job).await,
            PASSWORD_RESET_REQUEST_JOB_KIND => {
                password_reset_job(&self.store, &self.tokens, &self.accounts, &job.payload)
                    .await
                    .map_err(|error| JobFailure::transient(error.to_string()))
            }
            CLEANUP_JOB_KIND => self.clean_up().await,
            other => Err(JobFailure::permanent(format!("unknown job kind {other:?}"))),
        }
    }
}

impl Jobs {
    async fn send(&self, job: &ClaimedJob) -> Result<(), JobFailure> {
        let mail: MailJob = serde_json::from_value(job.payload.clone())
            .map_err(|_| JobFailure::permanent("the mail job's payload is malformed"))?;
        let link = match (mail.kind.link_path(), mail.token_id) {
            (Some(path), Some(id)) => Some(format!(
                "{}{path}?token={}",
                self.public_app_url,
                self.tokens.token(id).expose()
            )),
            (None, _) => None,
            (Some(_), None) => {
                return Err(JobFailure::permanent(
                    "the mail job has no token for its link",
                ));
            }
        };
        let letter = Letter {
            kind: mail.kind,
            to: mail.to,
            name: mail.name,
            link,
            valid_for: mail.valid_for,
        };
        self.mailer
            .send(job.id, &letter)
            .await
            .map_err(|error| JobFailure {
                message: error.to_string(),
                permanent: error.is_permanent(),
            })?;
        tracing::info!(job.id = %job.id, mail.kind = mail.kind.as_str(), job.attempt = job.attempt, "mail sent");
        Ok(())
    }

    async fn clean_up(&self) -> Result<(), JobFailure> {
        let failed = |error: projects_store::StoreError| JobFailure::transient(error.to_string());
        let jobs = self
            .store
            .jobs()
            .delete_finished(KEEP_DONE_JOBS, CLEANUP_BATCH)
            .await
            .map_err(failed)?;
        let tokens = self
            .store
            .account_tokens()
            .delete_expired(CLEANUP_BATCH)
            .await
            .map_err(failed)?;
        tracing::info!(
            jobs.deleted = jobs,
            account_tokens.deleted = tokens,
            "cleanup done"
        );
        Ok(())
    }
}
