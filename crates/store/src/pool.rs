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
use std::task::Poll;
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use tokio_postgres::NoTls;

use crate::StoreError;
use crate::prepared::Prepared;
use crate::shared_reads::{Reader, SharedReads};
use crate::statement::{Conn, Session, SlowQuery, Sql};

/// A pooled connection idle at least this long is checked with a round
/// trip before it is handed out.
const VERIFY_IDLE_AFTER: Duration = Duration::from_secs(2);
/// How long that check may take before the connection is dropped (and
/// another one taken or opened, within the same checkout).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(1);

/// How much longer than `statement_timeout` we wait for the server's own
/// timeout error before giving up on an answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// What the store needs to know to connect. `Debug` leaves the URLs out:
/// they may hold a password.
#[derive(Clone)]
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
    /// Named, cached statements (true), or unnamed ones only, for a
    /// transaction-pooling proxy without prepared-statement support.
    pub prepared_statements: bool,
    /// The direct connection that migrations and their lock use; `None`:
    /// `url`.
    pub migration_url: Option<String>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            url: _,
            pool_size,
            shards,
            timeout,
            slow_query,
            prepared_statements,
            migration_url,
        } = self;
        f.debug_struct("StoreConfig")
            .field("url", &"[redacted]")
            .field("pool_size", pool_size)
            .field("shards", shards)
            .field("timeout", timeout)
            .field("slow_query", slow_query)
            .field("prepared_statements", prepared_statements)
            .field(
                "migration_url",
                &migration_url.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            shards: 1,
            timeout: Duration::from_secs(5),
            slow_query: Duration::from_millis(200),
            prepared_statements: true,
            migration_url: None,
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
    /// The connection each shard's point reads share (same indexes).
    shared_reads: Arc<[SharedReads]>,
    /// The shard this handle takes its connections from.
    home: usize,
    pub(crate) slow: SlowQuery,
    /// The longest wait for a pooled connection, whatever the pool is doing.
    timeout: Duration,
    /// How statements and timeouts reach the server.
    session: Arc<Session>,
    /// Where migrations connect (direct, never through a pooler).
    migration: Arc<tokio_postgres::Config>,
}

impl Store {
    /// Builds the pool. No connection is opened until one is needed, so a
    /// server can start (and report itself not ready) while the database is
    /// still coming up.
    pub fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let pg = connection_config(&config.url, config.timeout)?;
        let migration = match &config.migration_url {
            Some(url) => connection_config(url, config.timeout)?,
            None => pg.clone(),
        };
        let session = Arc::new(Session::new(config.prepared_statements, config.timeout));
        let shards = config.shards.clamp(1, config.pool_size.max(1));
        // Sizes differ by at most one and add up to `pool_size`.
        let sizes: Vec<usize> = (0..shards)
            .map(|index| config.pool_size / shards + usize::from(index < config.pool_size % shards))
            .collect();
        let shared_reads = sizes.iter().map(|&size| SharedReads::new(size)).collect();
        let shards = sizes
            .into_iter()
            .map(|size| build_pool(pg.clone(), size, config.timeout, session.clone()))
            .collect::<Result<Arc<[Pool]>, StoreError>>()?;
        Ok(Self {
            shared_reads,
            shards,
            home: 0,
            slow: SlowQuery {
                threshold: config.slow_query,
                deadline: config.timeout + ANSWER_MARGIN,
            },
            timeout: config.timeout,
            session,
            migration: Arc::new(migration),
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

    /// A pooled connection, within the configured timeout: one deadline
    /// for the whole checkout (waiting for a free connection, checking an
    /// idle one, opening one), so the pool itself sets none. Most checkouts
    /// find a free connection at once; only one that has to wait sets the
    /// timer.
    pub(crate) async fn client(&self) -> Result<Conn<'_>, StoreError> {
        Ok(Conn::new(self.checkout().await?, &self.session))
    }

    /// A connection for a read of one row by its key, shared with the
    /// other such reads of this shard in flight (`shared_reads`), or
    /// checked out as by [`Store::client`] when none is.
    pub(crate) async fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let shared = &self.shared_reads[self.home];
        let may_share = shared.enabled() && Reader::may_share(&self.session);
        if may_share && let Some(pooled) = shared.join() {
            return Ok(Reader::shared(pooled, &self.session));
        }
        let pooled = self.checkout().await?;
        // Asked again after the checkout: opening a connection may have
        // found a pooler, and that connection carries no timeouts.
        if !may_share || !Reader::may_share(&self.session) {
            return Ok(Reader::own(pooled, &self.session));
        }
        let pooled = Arc::new(pooled);
        shared.offer(&pooled);
        Ok(Reader::shared(pooled, &self.session))
    }

    async fn checkout(&self) -> Result<Pooled, StoreError> {
        let pool = &self.shards[self.home];
        match within(self.timeout, || pool.get()).await {
            Some(client) => Ok(client?),
            None => Err(StoreError::Unavailable(
                "no database connection in time".into(),
            )),
        }
    }

    /// Ready means: the database answers, every embedded migration has
    /// been applied, and statements run under the configured timeouts.
    /// Answers within the timeout plus a margin, whatever the database does.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        let check = async {
            let client = self.client().await?;
            Ok(crate::migrations::all_applied(self, &client).await?
                && self.timeouts_hold(&client).await?)
        };
        match tokio::time::timeout(self.timeout + ANSWER_MARGIN, check).await {
            Ok(ready) => ready,
            Err(_) => Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            )),
        }
    }

    /// The start-up self-check: whether a statement, run the way every
    /// request's statements run, is under the configured statement, lock
    /// and idle-in-transaction timeouts. False behind a pooler that drops
    /// the startup `options` (PgBouncer's `ignore_startup_parameters =
    /// options`) while prepared statements are on: the server must then
    /// refuse to serve, as every wait on the database would be unbounded.
    pub async fn timeouts_in_effect(&self) -> Result<bool, StoreError> {
        let check = async {
            let client = self.client().await?;
            self.timeouts_hold(&client).await
        };
        match tokio::time::timeout(self.timeout + ANSWER_MARGIN, check).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            )),
        }
    }

    async fn timeouts_hold(&self, client: &Conn<'_>) -> Result<bool, StoreError> {
        let row = self.slow.query_one(client, &TIMEOUTS, &[]).await?;
        let actual: [i64; 3] = [row.try_get(0)?, row.try_get(1)?, row.try_get(2)?];
        let holds = actual == self.session.expected;
        if !holds {
            tracing::error!(
                db.timeouts.expected_ms = ?self.session.expected,
                db.timeouts.actual_ms = ?actual,
                "statements do not run under the configured timeouts"
            );
        }
        Ok(holds)
    }

    /// Whether statements are unnamed and the timeouts set in each
    /// transaction (a pooler), for the start-up log.
    pub fn describe_session(&self) -> (bool, bool) {
        (self.session.prepared(), self.session.per_transaction())
    }

    pub(crate) fn migration_config(&self) -> &tokio_postgres::Config {
        &self.migration
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
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
    session: Arc<Session>,
) -> Result<Pool, StoreError> {
    let connector = Connector {
        pg,
        session,
        verify_timeout: timeout.min(VERIFY_TIMEOUT),
    };
    Pool::builder(connector)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::Other(Box::new(error)))
}

/// One shard of the pool.
pub(crate) type Pool = managed::Pool<Connector>;

/// A connection checked out of the pool; back in the pool when dropped.
pub(crate) type Pooled = managed::Object<Connector>;

/// A connection as the pool keeps it: the client, the task that drives its
/// socket, and the statements prepared in its server session.
#[derive(Debug)]
pub(crate) struct PooledConnection {
    pub(crate) client: tokio_postgres::Client,
    pub(crate) prepared: Prepared,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for PooledConnection {
    /// A connection leaves the pool for good: its socket task goes with it,
    /// even when the peer no longer answers.
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How the pool opens connections, and whether an idle one may be handed
/// out again.
#[derive(Debug)]
pub(crate) struct Connector {
    pg: tokio_postgres::Config,
    session: Arc<Session>,
    /// How long the check of a connection idle for a while may take.
    verify_timeout: Duration,
}

impl managed::Manager for Connector {
    type Type = PooledConnection;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<PooledConnection, tokio_postgres::Error> {
        // In a box: opening is rare, and its future would otherwise be
        // part of every checkout's.
        let (client, driver) = Box::pin(open(&self.pg, &self.session)).await?;
        Ok(PooledConnection {
            client,
            prepared: Prepared::default(),
            driver,
        })
    }

    /// A closed connection is dropped. One that sat idle a while may have
    /// outlived its server (a restart, a failover) while its closed flag
    /// stays false until the socket task notices, so it proves itself with
    /// an empty query first, within `verify_timeout`: a connection to a
    /// silent peer is replaced, not waited on. A busy one costs nothing.
    async fn recycle(
        &self,
        connection: &mut PooledConnection,
        metrics: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        if connection.client.is_closed() {
            return Err(RecycleError::message("the connection is closed"));
        }
        if metrics.last_used() >= VERIFY_IDLE_AFTER {
            // In a box: the check's future would otherwise be part of
            // every checkout's.
            let check = Box::pin(tokio::time::timeout(
                self.verify_timeout,
                connection.client.simple_query(""),
            ));
            match check.await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(RecycleError::Backend(error)),
                Err(_) => return Err(RecycleError::message("no answer in time")),
            }
        }
        Ok(())
    }
}

/// The output of the future `make` makes, or `None` once `limit` has
/// passed. The timer (a scheduler handle, a clock reading) is only set when
/// the future does not finish on its first poll; the limit counts from
/// then.
async fn within<F: Future>(limit: Duration, make: impl FnOnce() -> F) -> Option<F::Output> {
    let mut future = std::pin::pin!(make());
    if let Poll::Ready(output) =
        std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
    {
        return Some(output);
    }
    tokio::time::timeout(limit, future).await.ok()
}

/// The settings of every statement, as `pg_settings` reports them in the
/// current transaction (milliseconds).
const TIMEOUTS: Sql = Sql::new(
    "store.timeouts",
    "SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'), \
            (SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'), \
            (SELECT setting::bigint FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout')",
);

/// The connection settings of `url`, with the timeouts that bound
/// connecting and a vanished peer.
fn connection_config(url: &str, timeout: Duration) -> Result<tokio_postgres::Config, StoreError> {
    let mut pg: tokio_postgres::Config = url
        .parse()
        .map_err(|error| StoreError::Other(Box::new(error)))?;
    pg.connect_timeout(timeout);
    // A server that vanished without closing its sockets (a dead host, a
    // partition) is noticed by the kernel: unacknowledged data fails the
    // socket after the timeout, and idle sockets are probed.
    pg.tcp_user_timeout(timeout);
    pg.keepalives(true);
    pg.keepalives_idle(Duration::from_secs(30));
    if pg.get_application_name().is_none() {
        pg.application_name("projects-api");
    }
    Ok(pg)
}

/// Opens a connection whose session bounds its own work (a stuck query, a
/// lock wait, an abandoned transaction) with the timeouts in the startup
/// `options`, unless the session sets them per transaction. A server that
/// refuses them there (a pooler: "unsupported startup parameter") switches
/// the session to per-transaction timeouts, and the connection is opened
/// again without them.
pub(crate) async fn open(
    pg: &tokio_postgres::Config,
    session: &Session,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    if let Some(timeouts) = session.startup_options() {
        let mut with_options = pg.clone();
        let options = match pg.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {timeouts}"),
            _ => timeouts,
        };
        with_options.options(&options);
        match with_options.connect(NoTls).await {
            Ok((client, connection)) => return Ok((client, drive(connection))),
            Err(error) if refuses_startup_options(&error) => session.set_per_transaction(),
            Err(error) => return Err(error),
        }
    }
    let (client, connection) = pg.connect(NoTls).await?;
    Ok((client, drive(connection)))
}

fn drive(
    connection: tokio_postgres::Connection<
        tokio_postgres::Socket,
        tokio_postgres::tls::NoTlsStream,
    >,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "database connection ended");
        }
    })
}

/// PgBouncer's answer to startup parameters it does not pass on
/// ("unsupported startup parameter: options", and from 1.20 "unsupported
/// options startup parameter: …").
fn refuses_startup_options(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        db.message().contains("unsupported startup parameter")
            || db
                .message()
                .contains("unsupported options startup parameter")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_database_urls() {
        let mut config = StoreConfig::new("postgres://app:hunter2-secret@db.internal:5432/app");
        config.migration_url = Some("postgres://owner:other-secret@db.internal:5432/app".into());
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2-secret"), "{printed}");
        assert!(!printed.contains("other-secret"), "{printed}");
        assert!(printed.contains("pool_size: 16"), "{printed}");
    }
}
