//! The one path every statement takes to the server, with a warning for the
//! slow ones (it names the statement and its duration, never its
//! parameters).
//!
//! Two things depend on what sits between us and PostgreSQL, and both are
//! decided here, for every repository at once:
//!
//! - **Which statements.** By default, named statements from each
//!   connection's prepared-statement cache. With
//!   `prepared_statements = false`, unnamed statements only (one Parse /
//!   Bind / Execute / Sync, one round trip), which a transaction-pooling
//!   proxy without protocol-level prepared statements (PgBouncer before
//!   1.21) passes on: a named statement would live on one server
//!   connection and be looked for on another. The parameter types an
//!   unnamed statement needs are learnt once per statement, inside a
//!   transaction so that the describing statement lives and dies on one
//!   server connection.
//! - **Where the timeouts come from.** Directly, they travel in the startup
//!   packet, free. A pooler rejects that (`unsupported startup parameter`)
//!   or drops it, so there they are set with `SET LOCAL` in every
//!   transaction, pipelined with the statement itself: a statement outside
//!   a transaction is sent as `BEGIN; SET LOCAL …` + the statement +
//!   `COMMIT` in one write, still one round trip, and a transaction sends
//!   its `SET LOCAL` with its first statement.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient as CachingClient;
use tokio_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

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

/// How this store's statements reach the server; shared by every
/// connection of the store.
#[derive(Debug)]
pub(crate) struct Session {
    /// Named, cached statements (true) or unnamed ones only.
    prepared: bool,
    /// The timeouts are set in each transaction (true) rather than at
    /// connection start. Starts true without prepared statements; turns
    /// true when a server refuses them in the startup packet.
    per_transaction: AtomicBool,
    /// `SET LOCAL statement_timeout = …; …`
    set_local: String,
    /// `BEGIN; ` and `set_local`.
    begin_local: String,
    /// The timeouts every statement must run under, in milliseconds:
    /// statement, lock, idle in transaction.
    pub(crate) expected: [i64; 3],
    /// Parameter types of each unnamed statement, learnt once.
    param_types: RwLock<HashMap<&'static str, Arc<[Type]>>>,
}

impl Session {
    pub(crate) fn new(prepared: bool, timeout: Duration) -> Self {
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let expected = [timeout_ms, timeout_ms, timeout_ms.saturating_mul(2)];
        let set_local = format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; \
             SET LOCAL idle_in_transaction_session_timeout = {}",
            expected[0], expected[1], expected[2]
        );
        Self {
            prepared,
            per_transaction: AtomicBool::new(!prepared),
            begin_local: format!("BEGIN; {set_local}"),
            set_local,
            expected,
            param_types: RwLock::default(),
        }
    }

    /// The `options` startup parameter that carries the timeouts to a
    /// direct connection, or `None` when they go with each transaction.
    pub(crate) fn startup_options(&self) -> Option<String> {
        (!self.per_transaction()).then(|| {
            format!(
                "-c statement_timeout={} -c lock_timeout={} \
                 -c idle_in_transaction_session_timeout={}",
                self.expected[0], self.expected[1], self.expected[2]
            )
        })
    }

    pub(crate) fn per_transaction(&self) -> bool {
        self.per_transaction.load(Ordering::Relaxed)
    }

    /// A server refused the timeouts in the startup packet: from now on
    /// they go with each transaction.
    pub(crate) fn set_per_transaction(&self) {
        if !self.per_transaction.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the database refused the timeouts as startup options (a pooler?): \
                 setting them in every transaction instead"
            );
        }
    }

    pub(crate) fn prepared(&self) -> bool {
        self.prepared
    }
}

/// A pooled connection with the store's session rules.
pub(crate) struct Conn<'s> {
    client: deadpool_postgres::Client,
    session: &'s Session,
}

impl<'s> Conn<'s> {
    pub(crate) fn new(client: deadpool_postgres::Client, session: &'s Session) -> Self {
        Self { client, session }
    }

    /// Starts a transaction; in per-transaction mode its first statement
    /// carries the `SET LOCAL` of the timeouts.
    pub(crate) async fn transaction(&mut self) -> Result<Tx<'_>, StoreError> {
        let tx = self.client.transaction().await?;
        Ok(Tx {
            tx,
            session: self.session,
            locals_pending: AtomicBool::new(self.session.per_transaction()),
        })
    }
}

impl Deref for Conn<'_> {
    type Target = deadpool_postgres::Client;

    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

/// A transaction with the store's session rules. Rolls back when dropped
/// without `commit`.
pub(crate) struct Tx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    session: &'a Session,
    /// The timeouts still have to be sent (with the next statement).
    locals_pending: AtomicBool,
}

impl Tx<'_> {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}

impl<'a> Deref for Tx<'a> {
    type Target = deadpool_postgres::Transaction<'a>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

/// What has to travel with a statement.
pub(crate) enum Wrap {
    /// Nothing: the timeouts are in effect already.
    None,
    /// `BEGIN; SET LOCAL …` before and `COMMIT` after.
    Transaction,
    /// `SET LOCAL …` before (the first statement of a transaction).
    Locals,
}

/// A connection or a transaction that statements run on.
pub(crate) trait Executor: Sync {
    type Caching: CachingClient + Sync;
    type Raw: GenericClient + Sync;
    fn caching(&self) -> &Self::Caching;
    fn raw(&self) -> &Self::Raw;
    fn session(&self) -> &Session;
    fn in_transaction(&self) -> bool;
    /// What the next statement must carry (and, for a transaction, that
    /// it has been carried).
    fn wrap(&self) -> Wrap;
}

impl Executor for Conn<'_> {
    type Caching = deadpool_postgres::Client;
    type Raw = tokio_postgres::Client;

    fn caching(&self) -> &Self::Caching {
        &self.client
    }

    fn raw(&self) -> &Self::Raw {
        &self.client
    }

    fn session(&self) -> &Session {
        self.session
    }

    fn in_transaction(&self) -> bool {
        false
    }

    fn wrap(&self) -> Wrap {
        if self.session.per_transaction() {
            Wrap::Transaction
        } else {
            Wrap::None
        }
    }
}

impl<'a> Executor for Tx<'a> {
    type Caching = deadpool_postgres::Transaction<'a>;
    type Raw = tokio_postgres::Transaction<'a>;

    fn caching(&self) -> &Self::Caching {
        &self.tx
    }

    fn raw(&self) -> &Self::Raw {
        &self.tx
    }

    fn session(&self) -> &Session {
        self.session
    }

    fn in_transaction(&self) -> bool {
        true
    }

    fn wrap(&self) -> Wrap {
        if self.locals_pending.swap(false, Ordering::Relaxed) {
            Wrap::Locals
        } else {
            Wrap::None
        }
    }
}

/// Runs `work` with what it must carry. Every request of the pipeline is
/// written on the first poll (tokio-postgres sends on the first poll of
/// each call, and `join!` polls them in order), so the server sees
/// `BEGIN; SET LOCAL …`, the statement and `COMMIT` in one write: one
/// round trip, and a pooler keeps them on one server connection because
/// the transaction is open until the `COMMIT`.
async fn carried<E: Executor, T>(
    executor: &E,
    work: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    match executor.wrap() {
        Wrap::None => work.await,
        Wrap::Transaction => {
            let raw = executor.raw();
            let (begin, outcome, end) = tokio::join!(
                raw.batch_execute(&executor.session().begin_local),
                work,
                raw.batch_execute("COMMIT")
            );
            begin?;
            let value = outcome?;
            end?;
            Ok(value)
        }
        Wrap::Locals => {
            let raw = executor.raw();
            let (locals, outcome) =
                tokio::join!(raw.batch_execute(&executor.session().set_local), work);
            locals?;
            outcome
        }
    }
}

/// The parameter types of an unnamed statement: learnt once per statement
/// and store, by describing it inside a transaction (behind a pooler the
/// describing named statement is created and closed on one server
/// connection).
async fn param_types<E: Executor>(executor: &E, sql: &Sql) -> Result<Arc<[Type]>, StoreError> {
    let session = executor.session();
    if let Some(types) = session
        .param_types
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(sql.text)
    {
        return Ok(types.clone());
    }
    let raw = executor.raw();
    // Describing a statement takes the locks its tables need (a wait the
    // timeouts must bound too), so the timeouts go first.
    let types: Arc<[Type]> = if executor.in_transaction() {
        let statement = carried(executor, raw.prepare(sql.text)).await?;
        statement.params().into()
        // Dropping `statement` sends its Close within the transaction.
    } else {
        let (begin, statement) = tokio::join!(
            raw.batch_execute(&session.begin_local),
            raw.prepare(sql.text)
        );
        let described = begin.and(statement).map(|statement| {
            let types: Arc<[Type]> = statement.params().into();
            drop(statement);
            types
        });
        raw.batch_execute("ROLLBACK").await?;
        described?
    };
    session
        .param_types
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(sql.text, types.clone());
    Ok(types)
}

/// The parameters with the types the server expects, for an unnamed
/// statement.
fn typed<'p>(
    sql: &Sql,
    params: &[&'p (dyn ToSql + Sync)],
    types: &[Type],
) -> Result<Vec<(&'p (dyn ToSql + Sync), Type)>, StoreError> {
    if params.len() != types.len() {
        return Err(StoreError::Other(
            format!(
                "statement {} takes {} parameters, not {}",
                sql.name,
                types.len(),
                params.len()
            )
            .into(),
        ));
    }
    Ok(params.iter().copied().zip(types.iter().cloned()).collect())
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
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    db.statement = sql.name,
                    "the database did not answer in time"
                );
                Err(StoreError::Unavailable(
                    "the database did not answer in time".into(),
                ))
            }
        };
        let elapsed = started.elapsed();
        if elapsed >= self.threshold {
            tracing::warn!(
                db.statement = sql.name,
                duration_ms = elapsed.as_millis() as u64,
                "slow query"
            );
        }
        outcome
    }

    pub(crate) async fn query<E: Executor>(
        self,
        executor: &E,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.bounded(sql, async {
            if executor.session().prepared() {
                let statement = executor.caching().prepare_cached(sql.text).await?;
                Ok(carried(executor, executor.raw().query(&statement, params)).await?)
            } else {
                let types = param_types(executor, sql).await?;
                let params = typed(sql, params, &types)?;
                Ok(carried(executor, executor.raw().query_typed(sql.text, &params)).await?)
            }
        })
        .await
    }

    pub(crate) async fn query_opt<E: Executor>(
        self,
        executor: &E,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        self.bounded(sql, async {
            if executor.session().prepared() {
                let statement = executor.caching().prepare_cached(sql.text).await?;
                Ok(carried(executor, executor.raw().query_opt(&statement, params)).await?)
            } else {
                let types = param_types(executor, sql).await?;
                let params = typed(sql, params, &types)?;
                Ok(carried(executor, executor.raw().query_typed_opt(sql.text, &params)).await?)
            }
        })
        .await
    }

    pub(crate) async fn query_one<E: Executor>(
        self,
        executor: &E,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        self.query_opt(executor, sql, params)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub(crate) async fn execute<E: Executor>(
        self,
        executor: &E,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.bounded(sql, async {
            if executor.session().prepared() {
                let statement = executor.caching().prepare_cached(sql.text).await?;
                Ok(carried(executor, executor.raw().execute(&statement, params)).await?)
            } else {
                let types = param_types(executor, sql).await?;
                let params = typed(sql, params, &types)?;
                Ok(carried(executor, executor.raw().execute_typed(sql.text, &params)).await?)
            }
        })
        .await
    }
}
