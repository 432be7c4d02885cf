//! PostgreSQL and pool errors, classified as the API contract needs them.

use deadpool::managed::PoolError;
use tokio_postgres::error::SqlState;

/// What went wrong in the store. `Display` is safe for clients; `Debug`
/// carries the cause for the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated (23505).
    #[error("already exists")]
    Conflict { constraint: Option<String> },
    /// A foreign key was violated (23503): the referenced row is gone.
    #[error("a referenced resource does not exist")]
    ForeignKey { constraint: Option<String> },
    /// A check constraint was violated (23514): a value the rules forbid.
    #[error("a value is not allowed")]
    Check { constraint: Option<String> },
    /// PostgreSQL could not read a value (22P02 and friends).
    #[error("a value has the wrong form")]
    InvalidInput(#[source] tokio_postgres::Error),
    /// The database cannot be reached, the pool timed out, or a statement
    /// ran past its timeout (57014): worth retrying later.
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Migrations could not be applied.
    #[error("migrations failed")]
    Migration(#[source] refinery::Error),
    /// Anything else: a bug or an unexpected database state.
    #[error("database error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// SQLSTATE classes that mean the connection or the server is in trouble.
fn is_unavailable(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections)
        || code.starts_with("57") // operator intervention: timeouts, shutdown
        || code.starts_with("58") // system error
        || code == "40001" // serialization failure: rolled back, may be retried
        || code == "40P01" // deadlock: rolled back, may be retried
        || code == "55P03" // lock not available (lock_timeout)
}

impl StoreError {
    /// The connection itself is broken (closed socket, I/O error, or a
    /// connection-class SQLSTATE): it must not go back into service.
    pub fn is_connection_lost(&self) -> bool {
        let StoreError::Unavailable(cause) = self else {
            return false;
        };
        let Some(error) = cause.downcast_ref::<tokio_postgres::Error>() else {
            return false;
        };
        error.is_closed()
            || error_is_io(error)
            || error.code().is_some_and(|code| {
                let code = code.code();
                code.starts_with("08") || code == "57P01" || code == "57P02" || code == "57P03"
            })
    }

    pub(crate) fn postgres_code(&self) -> Option<&SqlState> {
        match self {
            StoreError::Unavailable(cause) | StoreError::Other(cause) => cause
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(tokio_postgres::Error::code),
            StoreError::InvalidInput(error) => error.code(),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(db) = error.as_db_error() else {
            // No SQLSTATE: the socket closed, the server went away, or a
            // value could not be converted.
            return if error.is_closed() || error_is_io(&error) {
                StoreError::Unavailable(Box::new(error))
            } else {
                StoreError::Other(Box::new(error))
            };
        };
        let constraint = db.constraint().map(str::to_owned);
        let code = db.code().clone();
        match code {
            SqlState::UNIQUE_VIOLATION => StoreError::Conflict { constraint },
            SqlState::FOREIGN_KEY_VIOLATION => StoreError::ForeignKey { constraint },
            SqlState::CHECK_VIOLATION | SqlState::NOT_NULL_VIOLATION => {
                StoreError::Check { constraint }
            }
            SqlState::INVALID_TEXT_REPRESENTATION
            | SqlState::CHARACTER_NOT_IN_REPERTOIRE
            | SqlState::UNTRANSLATABLE_CHARACTER
            | SqlState::STRING_DATA_RIGHT_TRUNCATION
            | SqlState::NUMERIC_VALUE_OUT_OF_RANGE
            | SqlState::INVALID_DATETIME_FORMAT
            | SqlState::DATETIME_FIELD_OVERFLOW => StoreError::InvalidInput(error),
            ref code if is_unavailable(code) => StoreError::Unavailable(Box::new(error)),
            _ => StoreError::Other(Box::new(error)),
        }
    }
}

fn error_is_io(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl From<PoolError<tokio_postgres::Error>> for StoreError {
    fn from(error: PoolError<tokio_postgres::Error>) -> Self {
        match error {
            PoolError::Backend(error) => error.into(),
            // Timeouts, a closed pool, a failed connect: all mean "not now".
            other => StoreError::Unavailable(Box::new(other)),
        }
    }
}

impl From<refinery::Error> for StoreError {
    fn from(error: refinery::Error) -> Self {
        StoreError::Migration(error)
    }
}
