//! Named statements, run through each connection's prepared-statement cache,
//! with a warning for the slow ones. The warning names the statement and its
//! duration, never its parameters.

use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::StoreError;

/// One SQL statement with a name for the logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql {
    pub name: &'static str,
    pub text: &'static str,
}

impl Sql {
    pub(crate) const fn new(name: &'static str, text: &'static str) -> Self {
        Self { name, text }
    }
}

/// How slow a statement may be before it logs a warning, and how long we
/// wait for an answer at all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlowQuery {
    pub threshold: Duration,
    /// `statement_timeout` ends a slow statement on the server; this bounds
    /// the wait when the server cannot answer at all (frozen, or gone
    /// without closing the socket), so that a request never hangs.
    pub deadline: Duration,
}

impl SlowQuery {
    async fn bounded<T>(
        self,
        sql: &Sql,
        work: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => Ok(result?),
            Err(_) => {
                tracing::warn!(
                    db.statement = sql.name,
                    "the database did not answer in time"
                );
                Err(StoreError::Unavailable(
                    "the database did not answer in time".into(),
                ))
            }
        }
    }

    fn observe(self, sql: &Sql, started: Instant) {
        let elapsed = started.elapsed();
        if elapsed >= self.threshold {
            tracing::warn!(
                db.statement = sql.name,
                duration_ms = elapsed.as_millis() as u64,
                "slow query"
            );
        }
    }

    pub(crate) async fn query<C: GenericClient>(
        self,
        client: &C,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let started = Instant::now();
        let statement = self.bounded(sql, client.prepare_cached(sql.text)).await?;
        let rows = self.bounded(sql, client.query(&statement, params)).await;
        self.observe(sql, started);
        rows
    }

    pub(crate) async fn query_opt<C: GenericClient>(
        self,
        client: &C,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let started = Instant::now();
        let statement = self.bounded(sql, client.prepare_cached(sql.text)).await?;
        let row = self
            .bounded(sql, client.query_opt(&statement, params))
            .await;
        self.observe(sql, started);
        row
    }

    pub(crate) async fn query_one<C: GenericClient>(
        self,
        client: &C,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        self.query_opt(client, sql, params)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub(crate) async fn execute<C: GenericClient>(
        self,
        client: &C,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let started = Instant::now();
        let statement = self.bounded(sql, client.prepare_cached(sql.text)).await?;
        let count = self.bounded(sql, client.execute(&statement, params)).await;
        self.observe(sql, started);
        count
    }
}
