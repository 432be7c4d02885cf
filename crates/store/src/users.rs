//! The `users` table.

use projects_domain::{Email, Role, User, UserId};
use tokio_postgres::Row;

use crate::statement::Sql;
use crate::{Store, StoreError};

/// What it takes to insert a user; the password arrives already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

/// The users repository.
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    store: &'a Store,
}

const INSERT: Sql = Sql::new(
    "users.insert",
    "INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5) \
     RETURNING id, email, name, role, created_at, updated_at",
);
const FIND_BY_ID: Sql = Sql::new(
    "users.find_by_id",
    "SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = $1",
);
const DELETE: Sql = Sql::new("users.delete", "DELETE FROM users WHERE id = $1");

impl Store {
    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }
}

impl Users<'_> {
    pub async fn insert(&self, user: &NewUser) -> Result<User, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_one(
                &client,
                &INSERT,
                &[
                    UserId::new().as_uuid(),
                    &user.email.as_str(),
                    &user.name,
                    &user.role.as_str(),
                    &user.password_hash,
                ],
            )
            .await?;
        user_from_row(&row)
    }

    pub async fn find_by_id(&self, id: UserId) -> Result<User, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_one(&client, &FIND_BY_ID, &[id.as_uuid()])
            .await?;
        user_from_row(&row)
    }

    /// Deletes a user; their projects and refresh tokens go with them.
    pub async fn delete(&self, id: UserId) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        match self
            .store
            .slow
            .execute(&client, &DELETE, &[id.as_uuid()])
            .await?
        {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

pub(crate) fn user_from_row(row: &Row) -> Result<User, StoreError> {
    let role: &str = row.try_get("role")?;
    Ok(User {
        id: UserId::from_uuid(row.try_get("id")?),
        email: Email::from_trusted(row.try_get("email")?),
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|error| StoreError::Other(Box::new(error)))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
