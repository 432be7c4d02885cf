//! The `users` table.

use projects_domain::{
    DomainError, Email, Role, SessionEndReason, SessionId, User, UserId, ensure_an_admin_remains,
};
use tokio_postgres::Row;

use crate::sessions::{EndedSessions, SessionScope, end_sessions};
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

/// A user with their stored password hash, for logging in. Never leaves the
/// server: `Debug` hides the hash.
#[derive(Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user.id", &self.user.id)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// An admin's change to a user: a role and/or a name.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub name: Option<String>,
}

/// Why an admin-side change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserChangeError {
    /// It would leave no admin.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for UserChangeError {
    fn from(error: tokio_postgres::Error) -> Self {
        UserChangeError::Store(error.into())
    }
}

/// The users repository.
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    store: &'a Store,
}

pub(crate) const INSERT: Sql = Sql::new(
    "users.insert",
    concat!(
        "INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5) \
     RETURNING ",
        user_columns!()
    ),
);
pub(crate) const FIND_BY_ID: Sql = Sql::new(
    "users.find_by_id",
    concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"),
);
const FIND_CREDENTIALS_BY_EMAIL: Sql = Sql::new(
    "users.find_credentials_by_email",
    concat!(
        "SELECT ",
        user_columns!(),
        ", password_hash FROM users \
     WHERE lower(email) = lower($1)"
    ),
);
const FIND_CREDENTIALS_BY_ID: Sql = Sql::new(
    "users.find_credentials_by_id",
    concat!(
        "SELECT ",
        user_columns!(),
        ", password_hash FROM users \
     WHERE id = $1"
    ),
);
const SET_PASSWORD_HASH: Sql = Sql::new(
    "users.set_password_hash",
    "UPDATE users SET password_hash = $2 WHERE id = $1",
);
const SET_NAME: Sql = Sql::new(
    "users.set_name",
    concat!(
        "UPDATE users SET name = $2 WHERE id = $1 \
     RETURNING ",
        user_columns!()
    ),
);
const LOCK_FOR_UPDATE: Sql = Sql::new(
    "users.lock_for_update",
    concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1 FOR UPDATE"
    ),
);
// Locks every admin row, so that two concurrent demotions of the last two
// admins serialise and the second one sees that only one is left.
const LOCK_ADMINS: Sql = Sql::new(
    "users.lock_admins",
    "SELECT id FROM users WHERE role = 'admin' FOR UPDATE",
);
const UPDATE: Sql = Sql::new(
    "users.update",
    concat!(
        "UPDATE users SET role = COALESCE($2, role), name = COALESCE($3, name) WHERE id = $1 \
     RETURNING ",
        user_columns!()
    ),
);
const DELETE: Sql = Sql::new("users.delete", "DELETE FROM users WHERE id = $1");
const LIST_FIRST: Sql = Sql::new(
    "users.list_first",
    concat!(
        "SELECT ",
        user_columns!(),
        " FROM users ORDER BY id LIMIT $1"
    ),
);
const LIST_AFTER: Sql = Sql::new(
    "users.list_after",
    concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id > $1 \
     ORDER BY id LIMIT $2"
    ),
);
const PROMOTE_BY_EMAIL: Sql = Sql::new(
    "users.promote_by_email",
    concat!(
        "UPDATE users SET role = 'admin', password_hash = $2 WHERE lower(email) = lower($1) \
     RETURNING ",
        user_columns!()
    ),
);

impl Store {
    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }
}

impl Users<'_> {
    /// Inserts a user. A taken e-mail (in any letter case) is
    /// `StoreError::Conflict`, also when two registrations race.
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

    /// The user with this e-mail (compared case-insensitively) and their
    /// password hash, if there is one.
    pub async fn find_credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_opt(&client, &FIND_CREDENTIALS_BY_EMAIL, &[&email])
            .await?;
        row.as_ref().map(credentials_from_row).transpose()
    }

    /// The user with this id and their password hash.
    pub async fn find_credentials_by_id(&self, id: UserId) -> Result<Credentials, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_one(&client, &FIND_CREDENTIALS_BY_ID, &[id.as_uuid()])
            .await?;
        credentials_from_row(&row)
    }

    /// Replaces a hash with one of the same password under current
    /// parameters (after a successful login). Tokens stay valid.
    pub async fn rehash_password(&self, id: UserId, password_hash: &str) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        self.store
            .slow
            .execute(&client, &SET_PASSWORD_HASH, &[id.as_uuid(), &password_hash])
            .await?;
        Ok(())
    }

    /// Sets a new password and ends every session of the user but `keep`
    /// (the one the change was made from), in one transaction.
    pub async fn change_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep: SessionId,
    ) -> Result<EndedSessions, StoreError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let changed = self
            .store
            .slow
            .execute(&tx, &SET_PASSWORD_HASH, &[id.as_uuid(), &password_hash])
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        let ended = end_sessions(
            self.store.slow,
            &tx,
            SessionScope::AllBut { user: id, keep },
            SessionEndReason::PasswordChange,
        )
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Renames a user (their own profile change).
    pub async fn set_name(&self, id: UserId, name: &str) -> Result<User, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_one(&client, &SET_NAME, &[id.as_uuid(), &name])
            .await?;
        user_from_row(&row)
    }

    /// An admin's change of role and/or name. Demoting the last admin is
    /// `DomainError::LastAdmin`; concurrent demotions serialise on the
    /// admins' row locks.
    pub async fn update(&self, id: UserId, update: &UserUpdate) -> Result<User, UserChangeError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        if update.role == Some(Role::User) {
            let admins = self.store.slow.query(&tx, &LOCK_ADMINS, &[]).await?;
            let target_is_admin = admins
                .iter()
                .any(|row| row.get::<_, uuid::Uuid>(0) == *id.as_uuid());
            ensure_an_admin_remains(target_is_admin, admins.len())?;
        }
        let role = update.role.map(Role::as_str);
        let row = self
            .store
            .slow
            .query_one(&tx, &UPDATE, &[id.as_uuid(), &role, &update.name])
            .await?;
        tx.commit().await?;
        Ok(user_from_row(&row)?)
    }

    /// Deletes a user; their sessions end (the ended-sessions feed keeps
    /// them, so that their access tokens stop working everywhere), and
    /// their projects, sessions and refresh tokens go with them.
    pub async fn delete(&self, id: UserId) -> Result<EndedSessions, StoreError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let ended = end_sessions(
            self.store.slow,
            &tx,
            SessionScope::AllOfUser(id),
            SessionEndReason::UserDeleted,
        )
        .await?;
        if self
            .store
            .slow
            .execute(&tx, &DELETE, &[id.as_uuid()])
            .await?
            == 0
        {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Deletes a user as an admin asked: like [`Users::delete`] (sessions
    /// end; projects, sessions and tokens cascade), but the last admin
    /// cannot be deleted.
    pub async fn delete_unless_last_admin(
        &self,
        id: UserId,
    ) -> Result<EndedSessions, UserChangeError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let admins = self.store.slow.query(&tx, &LOCK_ADMINS, &[]).await?;
        let target_is_admin = admins
            .iter()
            .any(|row| row.get::<_, uuid::Uuid>(0) == *id.as_uuid());
        ensure_an_admin_remains(target_is_admin, admins.len())?;
        let ended = end_sessions(
            self.store.slow,
            &tx,
            SessionScope::AllOfUser(id),
            SessionEndReason::UserDeleted,
        )
        .await?;
        let deleted = self
            .store
            .slow
            .execute(&tx, &DELETE, &[id.as_uuid()])
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound.into());
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// One page of users in id order (UUID v7: creation order), starting
    /// after `after`. Asks for `limit` rows.
    pub async fn list(&self, after: Option<UserId>, limit: i64) -> Result<Vec<User>, StoreError> {
        let client = self.store.client().await?;
        let rows = match after {
            None => {
                self.store
                    .slow
                    .query(&client, &LIST_FIRST, &[&limit])
                    .await?
            }
            Some(after) => {
                self.store
                    .slow
                    .query(&client, &LIST_AFTER, &[after.as_uuid(), &limit])
                    .await?
            }
        };
        rows.iter().map(user_from_row).collect()
    }

    /// Makes the user with this e-mail an admin with this password hash;
    /// `NotFound` when there is none (the caller then inserts one).
    pub async fn promote_by_email(
        &self,
        email: &Email,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_one(
                &client,
                &PROMOTE_BY_EMAIL,
                &[&email.as_str(), &password_hash],
            )
            .await?;
        user_from_row(&row)
    }

    /// Sets a user's role directly, without the last-admin rule: for
    /// operators and test fixtures.
    pub async fn set_role(&self, id: UserId, role: Role) -> Result<User, StoreError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        self.store
            .slow
            .query_one(&tx, &LOCK_FOR_UPDATE, &[id.as_uuid()])
            .await?;
        let row = self
            .store
            .slow
            .query_one(
                &tx,
                &UPDATE,
                &[id.as_uuid(), &Some(role.as_str()), &None::<String>],
            )
            .await?;
        tx.commit().await?;
        user_from_row(&row)
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
        email_verified: row.try_get("email_verified")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn credentials_from_row(row: &Row) -> Result<Credentials, StoreError> {
    Ok(Credentials {
        user: user_from_row(row)?,
        password_hash: row.try_get("password_hash")?,
    })
}
