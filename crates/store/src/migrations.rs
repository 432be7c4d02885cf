//! The embedded migrations of `migrations/`, applied under an advisory lock so
//! that instances starting together do not race.
//!
//! They run on a connection of their own to the migration URL (a direct
//! connection, never a transaction-pooling proxy): the session-level lock
//! must be taken and released on one server connection.

use tokio_postgres::error::SqlState;

use crate::statement::{Conn, Session, Sql};
use crate::{Store, StoreError};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// An arbitrary, fixed key for `pg_advisory_lock`: "projects-api migrate".
const MIGRATION_LOCK_KEY: i64 = 0x7072_6f6a_6d69_6772;

const LATEST_APPLIED: Sql = Sql::new(
    "migrations.latest_applied",
    "SELECT COALESCE(MAX(version), 0)::bigint FROM refinery_schema_history",
);

/// The highest version among the embedded migrations.
fn latest_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|migration| i64::from(migration.version()))
        .max()
        .unwrap_or(0)
}

impl Store {
    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        // The timeouts go in the startup packet of this direct connection.
        let session = Session::new(true, self.timeout());
        // Its task ends once the client is dropped.
        let (mut client, _connection) =
            crate::pool::open(self.migration_config(), &session).await?;
        if session.per_transaction() {
            tracing::warn!(
                "migrating through a pooler: set DATABASE_MIGRATION_URL to a direct \
                 connection, so that the migration lock holds"
            );
        }
        migrate_on(&mut client).await
    }
}

async fn migrate_on(client: &mut tokio_postgres::Client) -> Result<usize, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let report = embedded::migrations::runner()
        .set_grouped(true)
        .run_async(client)
        .await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    let report = report?;
    unlock?;
    let applied = report.applied_migrations();
    for migration in applied {
        tracing::info!(migration.name = %migration, "applied migration");
    }
    Ok(applied.len())
}

/// Whether the database has every embedded migration.
pub(crate) async fn all_applied(store: &Store, client: &Conn<'_>) -> Result<bool, StoreError> {
    match store.slow.query_one(client, &LATEST_APPLIED, &[]).await {
        Ok(row) => Ok(row.try_get::<_, i64>(0)? >= latest_version()),
        Err(error) if error.postgres_code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(false),
        Err(error) => Err(error),
    }
}
