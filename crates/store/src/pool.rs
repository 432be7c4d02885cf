//! The connection pool and the `Store` handle that the repositories hang off.
//!
//! The pool may be split into shards, one per HTTP worker thread. A
//! connection's I/O runs as a task on the runtime that opened it; a worker
//! that used another worker's connection would wake that thread twice per
//! statement (measured with two workers and one shared pool: 0.93 eventfd
//! wake-ups per request; none with a shard each). Each worker's handle takes its
//! connections from its own shard, so they are opened on, and only ever
//! used from, that worker's thread.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::StoreError;
use crate::statement::SlowQuery;

/// A pooled connection idle at least this long is checked with a round
/// trip before it is handed out.
const VERIFY_IDLE_AFTER: Duration = Duration::from_secs(2);
/// How long that check may take before the connection is dropped (and
/// another one taken or opened, within the same checkout).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(1);

/// How much longer than `statement_timeout` we wait for the server's own
/// timeout error before giving up on an answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// What the store needs to know to connect.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `postgres://user:pass@host:port/db`.
    pub url: String,
    /// The most connections the pool opens, all shards together.
    pub pool_size: usize,
    /// How many shards the pool is split into (at least 1, at most
    /// `pool_size`): one per thread that serves requests.
    pub shards: usize,
    /// How long to wait for a pooled connection, to connect, and for a
    /// statement to run.
    pub timeout: Duration,
    /// Statements slower than this log a warning.
    pub slow_query: Duration,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            shards: 1,
            timeout: Duration::from_secs(5),
            slow_query: Duration::from_millis(200),
        }
    }
}

/// A snapshot of the pool (all shards together), for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

/// The handle to the database: cheap to clone, shared by every request.
#[derive(Debug, Clone)]
pub struct Store {
    /// Every shard of the pool; at least one.
    shards: Arc<[Pool]>,
    /// The shard this handle takes its connections from.
    home: usize,
    pub(crate) slow: SlowQuery,
    /// The longest wait for a pooled connection, whatever the pool is doing.
    timeout: Duration,
}

impl Store {
    /// Builds the pool. No connection is opened until one is needed, so a
    /// server can start (and report itself not ready) while the database is
    /// still coming up.
    pub fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let mut pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|error| StoreError::Other(Box::new(error)))?;
        let timeout_ms = config.timeout.as_millis();
        // Every session bounds its own work, so that a stuck query, a lock
        // wait or an abandoned transaction cannot hold a connection forever.
        let session = format!(
            "-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms} \
             -c idle_in_transaction_session_timeout={}",
            timeout_ms.saturating_mul(2)
        );
        let options = match pg.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {session}"),
            _ => session,
        };
        pg.options(&options);
        pg.connect_timeout(config.timeout);
        // A server that vanished without closing its sockets (a dead host, a
        // partition) is noticed by the kernel: unacknowledged data fails the
        // socket after the timeout, and idle sockets are probed.
        pg.tcp_user_timeout(config.timeout);
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(30));
        if pg.get_application_name().is_none() {
            pg.application_name("projects-api");
        }
        let shards = config.shards.clamp(1, config.pool_size.max(1));
        let shards = (0..shards)
            .map(|index| {
                // Sizes differ by at most one and add up to `pool_size`.
                let size =
                    config.pool_size / shards + usize::from(index < config.pool_size % shards);
                build_pool(pg.clone(), size, config.timeout)
            })
            .collect::<Result<Arc<[Pool]>, StoreError>>()?;
        Ok(Self {
            shards,
            home: 0,
            slow: SlowQuery {
                threshold: config.slow_query,
                deadline: config.timeout + ANSWER_MARGIN,
            },
            timeout: config.timeout,
        })
    }

    /// The handle that serves the thread with this index (`0..shards`,
    /// wrapping): give each HTTP worker its own.
    pub fn shard(&self, index: usize) -> Self {
        Self {
            home: index % self.shards.len(),
            ..self.clone()
        }
    }

    /// How many shards the pool has.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A pooled connection, within the configured timeout: the pool's own
    /// timeouts do not cover its hooks, nor all of its steps together.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        match tokio::time::timeout(self.timeout, self.shards[self.home].get()).await {
            Ok(client) => Ok(client?),
            Err(_) => Err(StoreError::Unavailable(
                "no database connection in time".into(),
            )),
        }
    }

    /// Ready means: the database answers and every embedded migration has
    /// been applied. Answers within the timeout plus a margin, whatever the
    /// database does.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        let check = async {
            let client = self.client().await?;
            crate::migrations::all_applied(&client).await
        };
        match tokio::time::timeout(self.timeout + ANSWER_MARGIN, check).await {
            Ok(ready) => ready,
            Err(_) => Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            )),
        }
    }

    pub fn status(&self) -> PoolStatus {
        let mut total = PoolStatus {
            max_size: 0,
            size: 0,
            available: 0,
            waiting: 0,
        };
        for pool in self.shards.iter() {
            let status = pool.status();
            total.max_size += status.max_size;
            total.size += status.size;
            total.available += status.available;
            total.waiting += status.waiting;
        }
        total
    }

    /// Closes the pool (every shard): connections are dropped and new
    /// requests fail fast.
    pub fn close(&self) {
        for pool in self.shards.iter() {
            pool.close();
        }
    }
}

/// One shard: a deadpool pool of at most `size` connections, whose idle
/// connections prove themselves before use.
fn build_pool(
    pg: tokio_postgres::Config,
    size: usize,
    timeout: Duration,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let verify_timeout = timeout.min(VERIFY_TIMEOUT);
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .pre_recycle(Hook::async_fn(move |client, metrics| {
            Box::pin(async move {
                // Fast recycling trusts the client's closed flag, which
                // stays false until the connection task notices that the
                // server is gone. A connection that sat idle a while may
                // have outlived its server (a restart, a failover), so it
                // proves itself with an empty query first; a busy one
                // costs nothing extra.
                if client.is_closed() {
                    return Err(HookError::message("the connection is closed"));
                }
                // deadpool runs this hook without a timeout: bound it, or
                // a connection to a silent peer would hang the checkout.
                if metrics.last_used() >= VERIFY_IDLE_AFTER {
                    match tokio::time::timeout(verify_timeout, client.simple_query("")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return Err(HookError::Backend(error)),
                        Err(_) => return Err(HookError::message("no answer in time")),
                    }
                }
                Ok(())
            })
        }))
        .build()
        .map_err(|error| StoreError::Other(Box::new(error)))
}
