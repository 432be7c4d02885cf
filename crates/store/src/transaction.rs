//! A transaction that the caller composes from repository steps, so that a
//! change and the jobs it causes commit together (the outbox), or not at
//! all. Dropping a `Tx` without committing rolls it back.

use crate::statement::{self, Conn, SlowQuery};
use crate::{Store, StoreError};

/// A pooled connection held for one or more transactions.
pub struct Connection<'s> {
    conn: Conn<'s>,
    slow: SlowQuery,
}

/// An open transaction on a [`Connection`].
pub struct Tx<'c> {
    pub(crate) tx: statement::Tx<'c>,
    pub(crate) slow: SlowQuery,
}

impl std::fmt::Debug for Connection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl Store {
    /// A connection from the pool, for [`Connection::begin`].
    pub async fn connection(&self) -> Result<Connection<'_>, StoreError> {
        Ok(Connection {
            conn: self.client().await?,
            slow: self.slow,
        })
    }
}

impl Connection<'_> {
    /// Opens a transaction; it rolls back unless [`Tx::commit`] is called.
    pub async fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
        Ok(Tx {
            tx: self.conn.transaction().await?,
            slow: self.slow,
        })
    }
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await
    }
}
