//! The `refresh_tokens` table: only SHA-256 hashes of tokens, grouped in
//! families (one family per login; every rotation adds to it).

use projects_domain::{User, UserId};
use uuid::Uuid;

use crate::statement::Sql;
use crate::users::user_from_row;
use crate::{Store, StoreError};

/// A refresh token to store: its hash, never the token.
#[derive(Debug, Clone, Copy)]
pub struct NewRefreshToken {
    pub user_id: UserId,
    pub family_id: Uuid,
    pub token_hash: [u8; 32],
    pub expires_at: time::OffsetDateTime,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    /// The token was valid: it is now used and the new one is stored in
    /// the same family. The user is as the database has them now.
    Rotated { user: User },
    /// The token had been used already: its family is now revoked.
    Reused { user_id: UserId },
    /// Unknown, expired or revoked.
    Invalid,
}

/// The refresh tokens repository.
#[derive(Debug, Clone, Copy)]
pub struct RefreshTokens<'a> {
    store: &'a Store,
}

const INSERT: Sql = Sql::new(
    "refresh_tokens.insert",
    "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) \
     VALUES ($1, $2, $3, $4, $5)",
);
// The conditional update is the lock: of two concurrent rotations of one
// token, the second waits for the first to commit, re-checks `used_at IS
// NULL`, and updates nothing.
const MARK_USED: Sql = Sql::new(
    "refresh_tokens.mark_used",
    "UPDATE refresh_tokens SET used_at = now() \
     WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() \
     RETURNING user_id, family_id",
);
const FIND_BY_HASH: Sql = Sql::new(
    "refresh_tokens.find_by_hash",
    "SELECT user_id, family_id, used_at FROM refresh_tokens WHERE token_hash = $1",
);
const REVOKE_FAMILY: Sql = Sql::new(
    "refresh_tokens.revoke_family",
    "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
);
const REVOKE_FAMILY_OF: Sql = Sql::new(
    "refresh_tokens.revoke_family_of",
    "UPDATE refresh_tokens SET revoked_at = now() \
     WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) \
     AND revoked_at IS NULL",
);
const REVOKE_ALL_OF_USER: Sql = Sql::new(
    "refresh_tokens.revoke_all_of_user",
    "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
);
const USER: Sql = Sql::new(
    "refresh_tokens.user",
    "SELECT id, email, name, role, email_verified, created_at, updated_at FROM users WHERE id = $1",
);

impl Store {
    pub fn refresh_tokens(&self) -> RefreshTokens<'_> {
        RefreshTokens { store: self }
    }
}

impl RefreshTokens<'_> {
    /// Stores a new token (a login starts a family with a new `family_id`).
    pub async fn insert(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        self.store
            .slow
            .execute(
                &client,
                &INSERT,
                &[
                    &Uuid::now_v7(),
                    token.user_id.as_uuid(),
                    &token.family_id,
                    &token.token_hash.as_slice(),
                    &token.expires_at,
                ],
            )
            .await?;
        Ok(())
    }

    /// Rotates in one transaction: marks `presented` used and stores
    /// `replacement` (its `user_id` and `family_id` are taken from the
    /// presented token). A token already used revokes its whole family.
    pub async fn rotate(
        &self,
        presented: [u8; 32],
        replacement: [u8; 32],
        expires_at: time::OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let used = self
            .store
            .slow
            .query_opt(&tx, &MARK_USED, &[&presented.as_slice()])
            .await?;
        if let Some(row) = used {
            let user_id: Uuid = row.try_get("user_id")?;
            let family_id: Uuid = row.try_get("family_id")?;
            self.store
                .slow
                .execute(
                    &tx,
                    &INSERT,
                    &[
                        &Uuid::now_v7(),
                        &user_id,
                        &family_id,
                        &replacement.as_slice(),
                        &expires_at,
                    ],
                )
                .await?;
            let user = self.store.slow.query_one(&tx, &USER, &[&user_id]).await?;
            let user = user_from_row(&user)?;
            tx.commit().await?;
            return Ok(Rotation::Rotated { user });
        }
        let Some(row) = self
            .store
            .slow
            .query_opt(&tx, &FIND_BY_HASH, &[&presented.as_slice()])
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        let used_at: Option<time::OffsetDateTime> = row.try_get("used_at")?;
        if used_at.is_none() {
            // Expired or revoked, never used: nothing more to do.
            return Ok(Rotation::Invalid);
        }
        let family_id: Uuid = row.try_get("family_id")?;
        let user_id: Uuid = row.try_get("user_id")?;
        self.store
            .slow
            .execute(&tx, &REVOKE_FAMILY, &[&family_id])
            .await?;
        tx.commit().await?;
        Ok(Rotation::Reused {
            user_id: UserId::from_uuid(user_id),
        })
    }

    /// Revokes the family of a token; returns how many tokens were revoked
    /// (0 for an unknown token or an already revoked family).
    pub async fn revoke_family_of(&self, token_hash: [u8; 32]) -> Result<u64, StoreError> {
        let client = self.store.client().await?;
        self.store
            .slow
            .execute(&client, &REVOKE_FAMILY_OF, &[&token_hash.as_slice()])
            .await
    }

    /// Revokes every token of a user.
    pub async fn revoke_all_of_user(&self, user_id: UserId) -> Result<u64, StoreError> {
        let client = self.store.client().await?;
        self.store
            .slow
            .execute(&client, &REVOKE_ALL_OF_USER, &[user_id.as_uuid()])
            .await
    }
}
