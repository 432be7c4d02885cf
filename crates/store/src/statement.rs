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

/// How slow a statement may be before it logs a warning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlowQuery(pub Duration);

impl SlowQuery {
    fn observe(self, sql: &Sql, started: Instant) {
        let elapsed = started.elapsed();
        if elapsed >= self.0 {
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
        let statement = client.prepare_cached(sql.text).await?;
        let rows = client.query(&statement, params).await;
        self.observe(sql, started);
        Ok(rows?)
    }

    pub(crate) async fn query_opt<C: GenericClient>(
        self,
        client: &C,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let started = Instant::now();
        let statement = client.prepare_cached(sql.text).await?;
        let row = client.query_opt(&statement, params).await;
        self.observe(sql, started);
        Ok(row?)
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
        let statement = client.prepare_cached(sql.text).await?;
        let count = client.execute(&statement, params).await;
        self.observe(sql, started);
        Ok(count?)
    }
}
