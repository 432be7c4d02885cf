//! The statements prepared on one connection, found by the identity of
//! their SQL text rather than by the text itself.
//!
//! Every statement of the store is a [`Sql`] whose text is a `&'static
//! str`, so the text's address and length name it: static memory is never
//! freed, so no other text can ever appear at that address with that
//! length. Finding a statement hashes two words; deadpool-postgres' cache,
//! which this replaces, hashed the whole text (hundreds of bytes) with
//! SipHash under a lock on every statement. Two equal texts at different
//! addresses are prepared twice: one more Parse, never a wrong statement.

use std::sync::{Mutex, PoisonError};

use tokio_postgres::Statement;

use crate::statement::Sql;

/// What names a statement: the address and length of its static text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SqlKey {
    address: usize,
    len: usize,
}

impl SqlKey {
    pub(crate) fn of(sql: &Sql) -> Self {
        Self {
            address: sql.text.as_ptr().addr(),
            len: sql.text.len(),
        }
    }
}

/// The named statements one server session holds, by their [`SqlKey`].
/// They live as long as the connection; one that the server no longer
/// knows (or whose result type changed) is forgotten and prepared again.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    statements: Mutex<foldhash::HashMap<SqlKey, Statement>>,
}

impl Prepared {
    /// The statement prepared for `sql` on this connection, if any.
    pub(crate) fn get(&self, sql: &Sql) -> Option<Statement> {
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&SqlKey::of(sql))
            .cloned()
    }

    pub(crate) fn insert(&self, sql: &Sql, statement: Statement) {
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(SqlKey::of(sql), statement);
    }

    /// Forgets the statement of `sql`, so that the next use prepares it
    /// again. Dropping it sends its `Close` (harmless for a statement the
    /// server does not know).
    pub(crate) fn forget(&self, sql: &Sql) {
        let forgotten = self
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&SqlKey::of(sql));
        drop(forgotten);
    }

    /// How many statements are prepared.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use projects_testkit::TestDb;

    use super::*;
    use crate::{Store, StoreConfig, StoreError};

    const ONE: Sql = Sql::new("test.one", "SELECT 1");
    static OTHER: &str = "SELECT 1 + 1";

    #[test]
    fn a_statement_is_named_by_where_its_text_lives() {
        assert_eq!(SqlKey::of(&ONE), SqlKey::of(&ONE));
        // The same static text under another name is the same statement.
        assert_eq!(SqlKey::of(&ONE), SqlKey::of(&Sql::new("other", ONE.text)));
        assert_ne!(SqlKey::of(&ONE), SqlKey::of(&Sql::new("test.other", OTHER)));
        // A prefix of a text at the same address is another statement.
        assert_ne!(
            SqlKey::of(&Sql::new("test.prefix", &OTHER[..8])),
            SqlKey::of(&Sql::new("test.other", OTHER))
        );
    }

    const PLUS_ONE: Sql = Sql::new("test.plus_one", "SELECT $1::int + 1");
    const PROBE: Sql = Sql::new("test.probe", "SELECT v FROM probe");

    /// A store of one connection, so that every checkout gets the same one.
    fn one_connection(db: &TestDb) -> Store {
        let mut config = StoreConfig::new(db.url());
        config.pool_size = 1;
        Store::connect(&config).expect("valid URL")
    }

    /// The names of the statements the connection's server session holds,
    /// read with the simple protocol (which prepares nothing itself).
    async fn server_side_names(conn: &crate::statement::Conn<'_>) -> Vec<String> {
        let messages = conn
            .simple_query("SELECT name FROM pg_prepared_statements ORDER BY name")
            .await
            .expect("names");
        messages
            .iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    async fn plus_one(store: &Store, n: i32) -> Result<i32, StoreError> {
        let conn = store.client().await?;
        let row = store.slow.query_one(&conn, &PLUS_ONE, &[&n]).await?;
        Ok(row.try_get(0)?)
    }

    #[tokio::test]
    async fn each_statement_is_prepared_once_per_connection() {
        let db = TestDb::empty().await;
        let store = one_connection(&db);
        for n in 0..5 {
            assert_eq!(plus_one(&store, n).await.expect("runs"), n + 1);
        }
        let conn = store.client().await.expect("the connection");
        let text = "SELECT 2";
        let two = || async {
            store
                .slow
                .query_one(&conn, &Sql::new("test.two", text), &[])
                .await
                .expect("runs");
        };
        two().await;
        let names = server_side_names(&conn).await;
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(conn.prepared().len(), 2);
        // Running them again prepares nothing new.
        two().await;
        two().await;
        drop(conn);
        assert_eq!(plus_one(&store, 9).await.expect("runs"), 10);
        let conn = store.client().await.expect("the connection");
        assert_eq!(server_side_names(&conn).await, names);
        drop(conn);
        store.close();
    }

    #[tokio::test]
    async fn a_statement_the_server_forgot_is_prepared_again() {
        let db = TestDb::empty().await;
        let store = one_connection(&db);
        assert_eq!(plus_one(&store, 1).await.expect("runs"), 2);
        let conn = store.client().await.expect("the connection");
        conn.batch_execute("DEALLOCATE ALL")
            .await
            .expect("deallocate");
        drop(conn);
        assert_eq!(plus_one(&store, 2).await.expect("prepared again"), 3);
        store.close();
    }

    #[tokio::test]
    async fn a_statement_whose_result_type_changed_is_prepared_again() {
        let db = TestDb::empty().await;
        let store = one_connection(&db);
        let direct = db.client().await;
        direct
            .batch_execute("CREATE TABLE probe (v int); INSERT INTO probe VALUES (7)")
            .await
            .expect("arrange");
        let conn = store.client().await.expect("the connection");
        let row = store
            .slow
            .query_one(&conn, &PROBE, &[])
            .await
            .expect("runs");
        assert_eq!(row.get::<_, i32>(0), 7);
        direct
            .batch_execute("ALTER TABLE probe ALTER COLUMN v TYPE bigint")
            .await
            .expect("alter");
        let row = store
            .slow
            .query_one(&conn, &PROBE, &[])
            .await
            .expect("prepared again");
        assert_eq!(row.get::<_, i64>(0), 7);
        drop(conn);
        store.close();
    }

    #[tokio::test]
    async fn a_stale_statement_fails_its_transaction_and_is_prepared_again_after() {
        let db = TestDb::empty().await;
        let store = one_connection(&db);
        assert_eq!(plus_one(&store, 1).await.expect("runs"), 2);
        let mut conn = store.client().await.expect("the connection");
        conn.batch_execute("DEALLOCATE ALL")
            .await
            .expect("deallocate");
        let tx = conn.transaction().await.expect("begin");
        // The failed attempt aborted the transaction: no second try in it.
        let error = store
            .slow
            .query_one(&tx, &PLUS_ONE, &[&1])
            .await
            .expect_err("the server forgot the statement");
        assert_eq!(
            error.postgres_code(),
            Some(&tokio_postgres::error::SqlState::INVALID_SQL_STATEMENT_NAME)
        );
        drop(tx);
        drop(conn);
        assert_eq!(plus_one(&store, 2).await.expect("prepared again"), 3);
        store.close();
    }
}
