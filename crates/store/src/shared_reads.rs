//! Point reads that share a connection: concurrent reads of one row by its
//! key, made by the requests of one worker, travel on one pooled
//! connection, where tokio-postgres pipelines them (it writes every query
//! waiting for the connection in one go, and PostgreSQL answers them in
//! order).
//!
//! PostgreSQL does much less work per statement that way: 32 reads in
//! flight from two threads made 43,600 `projects.find`/s on 32 connections
//! and 74,000-98,000/s on one or two (on 2 cores, beside the client; the
//! same statement through `pgbench` on 32 clients: 37,500/s).
//!
//! The shared connection is checked out of the worker's shard like any
//! other (so an idle one proves itself first, and it counts against
//! `DATABASE_POOL_SIZE`), and it goes back to the pool when the last read
//! that shares it ends: a read that finds no other in flight takes a
//! connection as every statement does. Only reads of one row by its
//! primary key share, so that no slow statement holds up the reads queued
//! behind it.
//!
//! Only direct connections share. Behind a pooler each statement travels
//! inside its own `BEGIN; SET LOCAL …; COMMIT`, and two of those must not
//! interleave on one connection; there, and with unnamed statements, each
//! read takes a connection of its own.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::pool::Pooled;
use crate::statement::{Conn, Session};

/// The connection the point reads of one shard currently share, if any
/// read holds it.
#[derive(Debug)]
pub(crate) struct SharedReads {
    current: Mutex<Weak<Pooled>>,
    /// False for a shard of one connection: it stays free for every
    /// statement in turn, where reads that keep overlapping could hold it
    /// for good.
    enabled: bool,
}

impl SharedReads {
    /// For a shard of `size` connections.
    pub(crate) fn new(size: usize) -> Self {
        Self {
            current: Mutex::default(),
            enabled: size > 1,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The connection in use by other reads, unless none is or it has
    /// closed (its reads fail; a new one is taken for the next).
    pub(crate) fn join(&self) -> Option<Arc<Pooled>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade()
            .filter(|pooled| !pooled.client.is_closed())
    }

    /// Offers a freshly checked-out connection to the reads that follow.
    pub(crate) fn offer(&self, pooled: &Arc<Pooled>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(pooled);
    }
}

/// A connection for one point read, possibly shared with others.
pub(crate) type Reader<'s> = Conn<'s, Arc<Pooled>>;

impl<'s> Reader<'s> {
    /// A reader on a connection other reads may join.
    pub(crate) fn shared(pooled: Arc<Pooled>, session: &'s Session) -> Self {
        Conn::on(pooled, session, true)
    }

    /// A reader on a connection of its own: its statements are wrapped as
    /// any connection's.
    pub(crate) fn own(pooled: Pooled, session: &'s Session) -> Self {
        Conn::on(Arc::new(pooled), session, false)
    }

    /// Whether reads may share connections: only named statements on
    /// direct connections, whose timeouts came with the connection.
    pub(crate) fn may_share(session: &Session) -> bool {
        session.prepared() && !session.per_transaction()
    }

    /// The server process behind the connection, for the tests.
    #[cfg(test)]
    pub(crate) async fn backend_pid(&self) -> i32 {
        self.query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use projects_testkit::TestDb;

    use crate::{Store, StoreConfig};

    fn store(db: &TestDb, prepared_statements: bool) -> Store {
        let mut config = StoreConfig::new(db.url());
        config.pool_size = 3;
        config.timeout = Duration::from_millis(300);
        config.prepared_statements = prepared_statements;
        Store::connect(&config).expect("valid URL")
    }

    #[tokio::test]
    async fn reads_in_flight_share_one_connection_that_goes_back_when_they_end() {
        let db = TestDb::empty().await;
        let store = store(&db, true);
        let first = store.reader().await.expect("reader");
        let second = store.reader().await.expect("reader");
        assert_eq!(first.backend_pid().await, second.backend_pid().await);
        assert_eq!(store.status().size, 1, "no second connection was opened");
        assert_eq!(store.status().available, 0);

        drop((first, second));
        assert_eq!(store.status().available, 1, "back in the pool");
        // The connections of the pool stay the pool's: a transaction (or
        // any statement) can take that one now.
        let conn = store.client().await.expect("client");
        assert_eq!(store.status().size, 1);
        drop(conn);
    }

    #[tokio::test]
    async fn behind_a_pooler_each_read_has_a_connection_of_its_own() {
        let db = TestDb::empty().await;
        let store = store(&db, false);
        let first = store.reader().await.expect("reader");
        let second = store.reader().await.expect("reader");
        assert_ne!(first.backend_pid().await, second.backend_pid().await);
        assert_eq!(store.status().size, 2);
    }

    #[tokio::test]
    async fn a_shard_of_one_connection_never_shares_it() {
        let db = TestDb::empty().await;
        let mut config = StoreConfig::new(db.url());
        config.pool_size = 1;
        config.timeout = Duration::from_millis(300);
        let store = Store::connect(&config).expect("valid URL");
        let first = store.reader().await.expect("reader");
        assert!(
            matches!(store.reader().await, Err(crate::StoreError::Unavailable(_))),
            "the second read waits for the one connection"
        );
        drop(first);
        assert!(store.reader().await.is_ok());
    }

    #[tokio::test]
    async fn a_shared_connection_that_closed_is_not_joined() {
        let db = TestDb::empty().await;
        let store = store(&db, true);
        let first = store.reader().await.expect("reader");
        let pid = first.backend_pid().await;
        db.client()
            .await
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .expect("terminate");
        // The client learns of it when its socket task ends.
        for _ in 0..100 {
            if first.is_closed() {
                break;
            }
            let _ = first.simple_query("SELECT 1").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(first.is_closed());

        let second = store.reader().await.expect("reader");
        assert_ne!(second.backend_pid().await, pid, "a fresh connection");
    }
}
