//! The embedded migrations of `migrations/`, applied under an advisory lock so
//! that instances starting together do not race.

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use crate::{Store, StoreError};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// An arbitrary, fixed key for `pg_advisory_lock`: "projects-api migrate".
const MIGRATION_LOCK_KEY: i64 = 0x7072_6f6a_6d69_6772;

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
        let mut client = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut client;
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
}

/// Whether the database has every embedded migration.
pub(crate) async fn all_applied<C: GenericClient>(client: &C) -> Result<bool, StoreError> {
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM refinery_schema_history",
            &[],
        )
        .await;
    match row {
        Ok(row) => Ok(row.get::<_, i64>(0) >= latest_version()),
        Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(false),
        Err(error) => Err(error.into()),
    }
}
