//! The connection pool and the `Store` handle that the repositories hang off.

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
    /// The most connections the pool opens.
    pub pool_size: usize,
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
            timeout: Duration::from_secs(5),
            slow_query: Duration::from_millis(200),
        }
    }
}

/// A snapshot of the pool, for metrics.
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
    pub(crate) pool: Pool,
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
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let verify_timeout = config.timeout.min(VERIFY_TIMEOUT);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
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
            .map_err(|error| StoreError::Other(Box::new(error)))?;
        Ok(Self {
            pool,
            slow: SlowQuery {
                threshold: config.slow_query,
                deadline: config.timeout + ANSWER_MARGIN,
            },
            timeout: config.timeout,
        })
    }

    /// A pooled connection, within the configured timeout: the pool's own
    /// timeouts do not cover its hooks, nor all of its steps together.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        match tokio::time::timeout(self.timeout, self.pool.get()).await {
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
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }

    /// Closes the pool: connections are dropped and new requests fail fast.
    pub fn close(&self) {
        self.pool.close();
    }
}
