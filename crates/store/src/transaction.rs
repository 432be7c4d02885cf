//! A transaction that the caller composes from repository steps, so that a
//! change and the jobs it causes commit together (the outbox), or not at
//! all. Dropping a `Tx` without committing rolls it back.

use crate::statement::SlowQuery;
use crate::{Store, StoreError};

/// A pooled connection held for one or more transactions.
#[derive(Debug)]
pub struct Connection {
    client: deadpool_postgres::Client,
    slow: SlowQuery,
}

/// An open transaction on a [`Connection`].
#[derive(Debug)]
pub struct Tx<'c> {
    pub(crate) tx: deadpool_postgres::Transaction<'c>,
    pub(crate) slow: SlowQuery,
}

impl Store {
    /// A connection from the pool, for [`Connection::begin`].
    pub async fn connection(&self) -> Result<Connection, StoreError> {
        Ok(Connection {
            client: self.client().await?,
            slow: self.slow,
        })
    }
}

impl Connection {
    /// Opens a transaction; it rolls back unless [`Tx::commit`] is called.
    pub async fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
        Ok(Tx {
            tx: self.client.transaction().await?,
            slow: self.slow,
        })
    }
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}
