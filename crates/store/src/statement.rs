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

use std::borrow::Borrow;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::{BoxFuture, Either};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row, Statement};

use crate::StoreError;
use crate::pool::{Pooled, PooledConnection};
use crate::prepared::{Prepared, SqlKey};

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
    param_types: RwLock<foldhash::HashMap<SqlKey, Arc<[Type]>>>,
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

/// A pooled connection with the store's session rules: one of its own
/// (`Pooled`), or one that point reads share (`Arc<Pooled>`,
/// `shared_reads::Reader`).
pub(crate) struct Conn<'s, P = Pooled> {
    pooled: P,
    session: &'s Session,
    /// Shared with other point reads: it was opened with its timeouts (a
    /// session only turns to per-transaction timeouts when a server refuses
    /// them at start), and nothing may wrap its statements in a transaction
    /// that another read's could fall into.
    shared: bool,
}

impl<'s, P: Borrow<Pooled>> Conn<'s, P> {
    pub(crate) fn on(pooled: P, session: &'s Session, shared: bool) -> Self {
        Self {
            pooled,
            session,
            shared,
        }
    }
}

impl<'s> Conn<'s> {
    pub(crate) fn new(pooled: Pooled, session: &'s Session) -> Self {
        Self::on(pooled, session, false)
    }

    /// Starts a transaction; in per-transaction mode its first statement
    /// carries the `SET LOCAL` of the timeouts.
    pub(crate) async fn transaction(&mut self) -> Result<Tx<'_>, StoreError> {
        let PooledConnection {
            client, prepared, ..
        } = &mut *self.pooled;
        let tx = client.transaction().await?;
        Ok(Tx {
            tx,
            prepared,
            session: self.session,
            locals_pending: AtomicBool::new(self.session.per_transaction()),
        })
    }

    /// The statements prepared on this connection.
    #[cfg(test)]
    pub(crate) fn prepared(&self) -> &Prepared {
        &self.pooled.prepared
    }
}

impl<P: Borrow<Pooled>> Deref for Conn<'_, P> {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &Self::Target {
        &self.pooled.borrow().client
    }
}

/// A transaction with the store's session rules. Rolls back when dropped
/// without `commit`.
pub(crate) struct Tx<'a> {
    tx: tokio_postgres::Transaction<'a>,
    /// The statements prepared on the transaction's connection.
    prepared: &'a Prepared,
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
    type Target = tokio_postgres::Transaction<'a>;

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
    type Client: GenericClient + Sync;
    fn client(&self) -> &Self::Client;
    /// The statements prepared on the underlying connection.
    fn prepared(&self) -> &Prepared;
    fn session(&self) -> &Session;
    fn in_transaction(&self) -> bool;
    /// What the next statement must carry (and, for a transaction, that
    /// it has been carried).
    fn wrap(&self) -> Wrap;
}

impl<P: Borrow<Pooled> + Sync> Executor for Conn<'_, P> {
    type Client = tokio_postgres::Client;

    fn client(&self) -> &Self::Client {
        &self.pooled.borrow().client
    }

    fn prepared(&self) -> &Prepared {
        &self.pooled.borrow().prepared
    }

    fn session(&self) -> &Session {
        self.session
    }

    fn in_transaction(&self) -> bool {
        false
    }

    fn wrap(&self) -> Wrap {
        if !self.shared && self.session.per_transaction() {
            Wrap::Transaction
        } else {
            Wrap::None
        }
    }
}

impl<'a> Executor for Tx<'a> {
    type Client = tokio_postgres::Transaction<'a>;

    fn client(&self) -> &Self::Client {
        &self.tx
    }

    fn prepared(&self) -> &Prepared {
        self.prepared
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
///
/// Nothing to carry (a direct connection) is `work` itself; the wrapped
/// forms live in a box of their own, so that their futures do not enlarge
/// every statement's (a request's future is moved whole when actix boxes
/// it: each byte of it is copied).
fn carried<'a, E: Executor, T: Send + 'a>(
    executor: &'a E,
    work: impl Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a,
) -> Either<
    impl Future<Output = Result<T, tokio_postgres::Error>> + 'a,
    BoxFuture<'a, Result<T, tokio_postgres::Error>>,
> {
    match executor.wrap() {
        Wrap::None => Either::Left(work),
        Wrap::Transaction => Either::Right(Box::pin(async move {
            let client = executor.client();
            let (begin, outcome, end) = tokio::join!(
                client.batch_execute(&executor.session().begin_local),
                work,
                client.batch_execute("COMMIT")
            );
            begin?;
            let value = outcome?;
            end?;
            Ok(value)
        })),
        Wrap::Locals => Either::Right(Box::pin(async move {
            let client = executor.client();
            let (locals, outcome) =
                tokio::join!(client.batch_execute(&executor.session().set_local), work);
            locals?;
            outcome
        })),
    }
}

/// The named statement of `sql` on the executor's connection, prepared on
/// first use (in a box: the preparing future is large and rarely needed).
async fn statement<E: Executor>(
    executor: &E,
    sql: &Sql,
) -> Result<Statement, tokio_postgres::Error> {
    if let Some(statement) = executor.prepared().get(sql) {
        return Ok(statement);
    }
    let statement = Box::pin(executor.client().prepare(sql.text)).await?;
    executor.prepared().insert(sql, statement.clone());
    Ok(statement)
}

/// The server no longer has the statement as it was prepared: it was
/// deallocated (`DEALLOCATE ALL`, `DISCARD ALL`, a pooler that reset the
/// session: 26000), or a schema change altered its result type ("cached
/// plan must not change result type": 0A000).
fn is_stale(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == SqlState::INVALID_SQL_STATEMENT_NAME || *code == SqlState::FEATURE_NOT_SUPPORTED
    })
}

/// Runs `run` with the named statement of `sql`. A statement the server
/// refuses as stale is forgotten and, outside a transaction (where the
/// failed attempt changed nothing), prepared again and run once more;
/// inside one the error stands (the transaction is aborted), and the next
/// use prepares it afresh.
async fn run_prepared<'a, E, T, F, Fut>(
    executor: &'a E,
    sql: &'a Sql,
    run: F,
) -> Result<T, StoreError>
where
    E: Executor,
    T: Send + 'a,
    F: Fn(Statement) -> Fut + Send + 'a,
    Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a,
{
    let first = statement(executor, sql).await?;
    let outcome = carried(executor, run(first)).await;
    match outcome {
        Err(error) if is_stale(&error) => {
            executor.prepared().forget(sql);
            if executor.in_transaction() {
                return Err(error.into());
            }
            // In a box: the second attempt's future would otherwise sit
            // beside the first in every statement's.
            Box::pin(async move {
                let again = statement(executor, sql).await?;
                Ok(carried(executor, run(again)).await?)
            })
            .await
        }
        outcome => Ok(outcome?),
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
        .get(&SqlKey::of(sql))
    {
        return Ok(types.clone());
    }
    let client = executor.client();
    // Describing a statement takes the locks its tables need (a wait the
    // timeouts must bound too), so the timeouts go first.
    let types: Arc<[Type]> = if executor.in_transaction() {
        let statement = carried(executor, client.prepare(sql.text)).await?;
        statement.params().into()
        // Dropping `statement` sends its Close within the transaction.
    } else {
        let (begin, statement) = tokio::join!(
            client.batch_execute(&session.begin_local),
            client.prepare(sql.text)
        );
        let described = begin.and(statement).map(|statement| {
            let types: Arc<[Type]> = statement.params().into();
            drop(statement);
            types
        });
        client.batch_execute("ROLLBACK").await?;
        described?
    };
    session
        .param_types
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(SqlKey::of(sql), types.clone());
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
    /// Runs the statement `work` makes within the deadline, timing it
    /// with the one clock reading the deadline needs anyway. `work` is
    /// made here rather than handed over made, so that its future is
    /// stored once, inside the timeout, and not also as an argument.
    async fn bounded<T, Work: Future<Output = Result<T, StoreError>>>(
        self,
        sql: &Sql,
        work: impl FnOnce() -> Work,
    ) -> Result<T, StoreError> {
        let started = tokio::time::Instant::now();
        let outcome = match tokio::time::timeout_at(started + self.deadline, work()).await {
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
        self.bounded(sql, || async {
            if executor.session().prepared() {
                run_prepared(executor, sql, |statement| async move {
                    executor.client().query(&statement, params).await
                })
                .await
            } else {
                let types = param_types(executor, sql).await?;
                let params = typed(sql, params, &types)?;
                Ok(carried(executor, executor.client().query_typed(sql.text, &params)).await?)
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
        self.bounded(sql, || async {
            if executor.session().prepared() {
                run_prepared(executor, sql, |statement| async move {
                    executor.client().query_opt(&statement, params).await
                })
                .await
            } else {
                let types = param_types(executor, sql).await?;
                let params = typed(sql, params, &types)?;
                Ok(carried(
                    executor,
                    executor.client().query_typed_opt(sql.text, &params),
                )
                .await?)
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
        self.bounded(sql, || async {
            if executor.session().prepared() {
                run_prepared(executor, sql, |statement| async move {
                    executor.client().execute(&statement, params).await
                })
                .await
            } else {
                let types = param_types(executor, sql).await?;
                let params = typed(sql, params, &types)?;
                Ok(carried(executor, executor.client().execute_typed(sql.text, &params)).await?)
            }
        })
        .await
    }
}
