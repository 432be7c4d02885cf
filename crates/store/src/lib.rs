//! PostgreSQL persistence for projects-api: the connection pool, the embedded
//! migrations, and one repository per table (`Users`, `Projects`,
//! `RefreshTokens`) with typed methods. PostgreSQL errors become `StoreError`
//! here, at the boundary, so that no SQLSTATE leaks upward.
//!
//! This crate holds every SQL string of the project and nothing about HTTP,
//! password hashing or tokens.

mod error;
mod idempotency;
mod migrations;
mod pool;
mod projects;
mod refresh_tokens;
mod retry;
mod statement;
mod users;

pub use error::StoreError;
pub use idempotency::{
    Claim, IDEMPOTENCY_KEY_TTL, IdempotencyKey, IdempotencyKeys, StoredResponse,
};
pub use pool::{PoolStatus, Store, StoreConfig};
pub use projects::{PlanKind, ProjectUpdate, Projects};
pub use refresh_tokens::{NewRefreshToken, RefreshTokens, Rotation};
pub use retry::{TRANSACTION_ATTEMPTS, retry_transaction};
pub use users::{Credentials, NewUser, UserChangeError, UserUpdate, Users};
