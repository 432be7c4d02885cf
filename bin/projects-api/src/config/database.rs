//! The `database` section: the store's own [`StoreConfig`], handed over
//! whole. Its `Debug` leaves the URLs out.

use std::time::Duration;

use projects_store::StoreConfig;

use super::env::{ConfigError, Env};

/// `DATABASE_*` and `SLOW_QUERY_MS`, as one pool shard (the server splits
/// the pool per worker).
pub fn read(env: &Env<'_>) -> Result<StoreConfig, ConfigError> {
    let url = env.required("DATABASE_URL")?;
    if !is_postgres_url(&url) {
        return Err(ConfigError {
            variable: "DATABASE_URL",
            problem: "must be a postgres:// URL".into(),
        });
    }
    let pool_size = env.parsed("DATABASE_POOL_SIZE", 16usize)?;
    if pool_size == 0 {
        return Err(ConfigError {
            variable: "DATABASE_POOL_SIZE",
            problem: "must be at least 1".into(),
        });
    }
    let migration_url = env.get("DATABASE_MIGRATION_URL");
    if let Some(migration_url) = &migration_url
        && !is_postgres_url(migration_url)
    {
        return Err(ConfigError {
            variable: "DATABASE_MIGRATION_URL",
            problem: "must be a postgres:// URL (a direct connection, not a pooler)".into(),
        });
    }
    Ok(StoreConfig {
        url,
        pool_size,
        shards: 1,
        timeout: Duration::from_millis(env.positive("DATABASE_TIMEOUT_MS", 5000)?),
        slow_query: Duration::from_millis(env.parsed("SLOW_QUERY_MS", 200)?),
        prepared_statements: env.flag("DATABASE_PREPARED_STATEMENTS", true)?,
        migration_url,
    })
}

/// The database section alone, for the commands that need nothing else
/// (`migrate`, `create-admin`).
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<StoreConfig, ConfigError> {
    read(&Env::new(&lookup))
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
