//! PostgreSQL persistence for projects-api: the connection pool, the embedded
//! migrations, and one repository per table (`Users`, `Projects`,
//! `Sessions` with their refresh tokens) with typed methods. PostgreSQL errors become `StoreError`
//! here, at the boundary, so that no SQLSTATE leaks upward.
//!
//! This crate holds every SQL string of the project and nothing about HTTP,
//! password hashing or tokens.

/// The columns a `User` is read from, in the order `users::user_from_row` reads
/// them: one list for every statement that returns a user.
macro_rules! user_columns {
    () => {
        "id, email, name, role, email_verified, created_at, updated_at"
    };
}

mod account_tokens;
mod columns;
mod error;
mod idempotency;
mod jobs;
mod migrations;
mod pool;
mod prepared;
mod projects;
mod sessions;
mod shared_reads;
mod statement;
mod transaction;
mod users;

pub use account_tokens::{
    AccountTokens, ConsumeError, InvalidToken, Issued, MailLimits, NewAccountToken, TokenPurpose,
};
pub use error::StoreError;
pub use idempotency::{
    Claim, IDEMPOTENCY_KEY_TTL, IdempotencyKey, IdempotencyKeys, StoredResponse,
};
pub use jobs::worker::{JOBS_COMPLETED_TOTAL, JOBS_DEAD_TOTAL, JOBS_RETRIED_TOTAL};
pub use jobs::{
    Backoff, ClaimedJob, FailOutcome, JobFailure, JobHandler, JobRecord, JobState, JobStats, Jobs,
    NewJob, Periodic, Worker, WorkerConfig,
};
pub use pool::{PoolStatus, Store, StoreConfig};
#[cfg(feature = "test-support")]
pub use projects::PlanKind;
pub use projects::{ProjectRow, ProjectUpdate, Projects};
pub use sessions::{
    CleanupBatch, EndedFeed, EndedSessions, NewSession, Rotation, SessionPolicy, SessionScope,
    Sessions,
};
pub use transaction::{Connection, Tx};
pub use users::{Credentials, NewUser, UserChangeError, UserUpdate, Users};
