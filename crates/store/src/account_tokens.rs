//! Account tokens (password reset, email verification, email change) and
//! the mail they cause, each flow in one transaction with its outbox job:
//! a token is stored (its hash only) together with the job that mails it,
//! and consumed (single use, before its expiry) together with the change it
//! authorises. The per-address mail limits are counted here too, in
//! `mail_sends`, under a transaction-level advisory lock per address, so
//! that two instances cannot both let a message through (pooler-safe: the
//! lock ends with the transaction).

use projects_domain::{Email, SessionEndReason, User, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::jobs::{NewJob, enqueue};
use crate::sessions::{EndedSessions, SessionScope, end_sessions};
use crate::statement::{Executor, SlowQuery, Sql};
use crate::users::{self, user_from_row};
use crate::{NewUser, Store, StoreError};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
    EmailChange,
}

impl TokenPurpose {
    const fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
            TokenPurpose::EmailChange => "email_change",
        }
    }
}

/// A token to store: its hash, never the token.
#[derive(Debug, Clone)]
pub struct NewAccountToken {
    pub token_hash: [u8; 32],
    pub purpose: TokenPurpose,
    /// The address an email change moves to.
    pub new_email: Option<Email>,
    pub expires_at: OffsetDateTime,
}

/// The per-address mail limits: at most `per_minute` messages in the last
/// minute and `per_hour` in the last hour to one address.
#[derive(Debug, Clone, Copy)]
pub struct MailLimits {
    pub per_minute: i64,
    pub per_hour: i64,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self {
            per_minute: 1,
            per_hour: 5,
        }
    }
}

/// What asking for a message led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// The token is stored and its message queued.
    Queued,
    /// The address had its share of mail: nothing stored or queued. The
    /// value is how long until the next message may go, in seconds.
    Limited { retry_after_secs: u64 },
}

/// A token was unknown, used, expired or for another purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the token is invalid, used or expired")]
pub struct InvalidToken;

/// Why consuming a token failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Invalid(#[from] InvalidToken),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The account-tokens repository.
#[derive(Debug, Clone, Copy)]
pub struct AccountTokens<'a> {
    store: &'a Store,
}

const FIND_USER_BY_EMAIL: Sql = Sql::new(
    "account_tokens.find_user_by_email",
    concat!(
        "SELECT ",
        user_columns!(),
        " FROM users \
     WHERE lower(email) = lower($1)"
    ),
);
const INSERT_TOKEN: Sql = Sql::new(
    "account_tokens.insert",
    "INSERT INTO account_tokens (token_hash, user_id, purpose, new_email, expires_at) \
     VALUES ($1, $2, $3, $4, $5)",
);
// Issuing a new token of a purpose retires the older ones: only the latest
// link works.
const RETIRE: Sql = Sql::new(
    "account_tokens.retire",
    "UPDATE account_tokens SET used_at = now() \
     WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
);
// The conditional update is the lock: of two concurrent confirmations of
// one token, the second waits for the first to commit, re-checks
// `used_at IS NULL`, and finds nothing.
const CONSUME: Sql = Sql::new(
    "account_tokens.consume",
    "UPDATE account_tokens SET used_at = now() \
     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() \
     RETURNING user_id, new_email",
);
const LOCK_ADDRESS: Sql = Sql::new(
    "mail_sends.lock_address",
    "SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, 'hex'), 0))",
);
const COUNT_SENDS: Sql = Sql::new(
    "mail_sends.count",
    "SELECT count(*) FILTER (WHERE sent_at > now() - interval '1 minute') AS last_minute, \
            count(*) AS last_hour, \
            COALESCE(extract(epoch FROM min(sent_at) FILTER \
                (WHERE sent_at > now() - interval '1 minute') + interval '1 minute' - now()), 0) \
                ::float8 AS minute_wait, \
            COALESCE(extract(epoch FROM min(sent_at) + interval '1 hour' - now()), 0)::float8 \
                AS hour_wait \
     FROM mail_sends WHERE address_hash = $1 AND sent_at > now() - interval '1 hour'",
);
const RECORD_SEND: Sql = Sql::new(
    "mail_sends.record",
    "INSERT INTO mail_sends (address_hash) VALUES ($1)",
);
const SET_PASSWORD: Sql = Sql::new(
    "account_tokens.set_password",
    concat!(
        "UPDATE users SET password_hash = $2 WHERE id = $1 \
     RETURNING ",
        user_columns!()
    ),
);
const SET_VERIFIED: Sql = Sql::new(
    "account_tokens.set_verified",
    concat!(
        "UPDATE users SET email_verified = true WHERE id = $1 \
     RETURNING ",
        user_columns!()
    ),
);
const SET_EMAIL: Sql = Sql::new(
    "account_tokens.set_email",
    concat!(
        "UPDATE users SET email = $2, email_verified = true WHERE id = $1 \
     RETURNING ",
        user_columns!()
    ),
);
const DELETE_EXPIRED: Sql = Sql::new(
    "account_tokens.delete_expired",
    "DELETE FROM account_tokens WHERE token_hash IN ( \
         SELECT token_hash FROM account_tokens WHERE expires_at < now() - interval '1 day' \
         LIMIT $1)",
);
const DELETE_OLD_SENDS: Sql = Sql::new(
    "mail_sends.delete_old",
    "DELETE FROM mail_sends WHERE ctid IN ( \
         SELECT ctid FROM mail_sends WHERE sent_at < now() - interval '1 day' LIMIT $1)",
);

impl Store {
    pub fn account_tokens(&self) -> AccountTokens<'_> {
        AccountTokens { store: self }
    }
}

impl AccountTokens<'_> {
    /// Registration: the user, their verification token and the message
    /// that carries it, in one transaction (a failed registration sends
    /// nothing). A taken address is `StoreError::Conflict`. The message is
    /// outside the per-address limits: an address registers once, so it
    /// cannot be used to flood anyone.
    pub async fn register(
        &self,
        user: &NewUser,
        token: &NewAccountToken,
        mail: impl FnOnce(&User) -> NewJob,
    ) -> Result<User, StoreError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let row = slow
            .query_one(
                &tx,
                &users::INSERT,
                &[
                    UserId::new().as_uuid(),
                    &user.email.as_str(),
                    &user.name,
                    &user.role.as_str(),
                    &user.password_hash,
                ],
            )
            .await?;
        let created = user_from_row(&row)?;
        insert_token(slow, &tx, created.id, token).await?;
        enqueue(slow, &tx, &mail(&created)).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The user with this address, if any (for a password-reset request
    /// handled by the worker).
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_opt(&client, &FIND_USER_BY_EMAIL, &[&email])
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Stores `token` for `user_id` (retiring the user's older tokens of the
    /// same purpose) and queues `mail` to the address `address_hash` names,
    /// in one transaction, unless that address had its share of mail.
    pub async fn issue(
        &self,
        user_id: UserId,
        token: &NewAccountToken,
        address_hash: [u8; 32],
        limits: MailLimits,
        mail: &NewJob,
    ) -> Result<Issued, StoreError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        if let Some(retry_after_secs) = over_limit(slow, &tx, address_hash, limits).await? {
            return Ok(Issued::Limited { retry_after_secs });
        }
        slow.execute(&tx, &RETIRE, &[user_id.as_uuid(), &token.purpose.as_str()])
            .await?;
        insert_token(slow, &tx, user_id, token).await?;
        slow.execute(&tx, &RECORD_SEND, &[&address_hash.as_slice()])
            .await?;
        enqueue(slow, &tx, mail).await?;
        tx.commit().await?;
        Ok(Issued::Queued)
    }

    /// Password reset: consumes the token, sets the new password hash and
    /// ends every session of the user, in one transaction. Returns the user
    /// and the sessions it ended (for the instance's revocation set).
    pub async fn reset_password(
        &self,
        token_hash: [u8; 32],
        password_hash: &str,
    ) -> Result<(User, EndedSessions), ConsumeError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let (user_id, _) = consume(slow, &tx, token_hash, TokenPurpose::PasswordReset).await?;
        let row = slow
            .query_one(&tx, &SET_PASSWORD, &[&user_id, &password_hash])
            .await?;
        let ended = end_sessions(
            slow,
            &tx,
            SessionScope::AllOfUser(UserId::from_uuid(user_id)),
            SessionEndReason::PasswordReset,
        )
        .await?;
        // Any other reset link of the user dies with this one.
        slow.execute(
            &tx,
            &RETIRE,
            &[&user_id, &TokenPurpose::PasswordReset.as_str()],
        )
        .await?;
        tx.commit().await?;
        Ok((user_from_row(&row)?, ended))
    }

    /// Email verification: consumes the token and marks the address
    /// verified.
    pub async fn verify_email(&self, token_hash: [u8; 32]) -> Result<User, ConsumeError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let (user_id, _) = consume(slow, &tx, token_hash, TokenPurpose::EmailVerification).await?;
        let row = slow.query_one(&tx, &SET_VERIFIED, &[&user_id]).await?;
        tx.commit().await?;
        Ok(user_from_row(&row)?)
    }

    /// Email change: consumes the token, moves the user to the new address
    /// (verified), and queues `notice` (built from the user as they were,
    /// at their old address), in one transaction. An address taken in the
    /// meantime is `StoreError::Conflict`, and the token stays unused.
    pub async fn change_email(
        &self,
        token_hash: [u8; 32],
        notice: impl FnOnce(&User) -> NewJob,
    ) -> Result<User, ConsumeError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let (user_id, new_email) =
            consume(slow, &tx, token_hash, TokenPurpose::EmailChange).await?;
        let new_email = new_email.ok_or(InvalidToken)?;
        let before = slow.query_one(&tx, &users::FIND_BY_ID, &[&user_id]).await?;
        let before = user_from_row(&before)?;
        let row = slow
            .query_one(&tx, &SET_EMAIL, &[&user_id, &new_email])
            .await?;
        enqueue(slow, &tx, &notice(&before)).await?;
        tx.commit().await?;
        Ok(user_from_row(&row)?)
    }

    /// Deletes up to `limit` tokens expired for a day, and as many mail
    /// counts older than a day; returns how many rows went.
    pub async fn delete_expired(&self, limit: i64) -> Result<u64, StoreError> {
        let client = self.store.client().await?;
        let tokens = self
            .store
            .slow
            .execute(&client, &DELETE_EXPIRED, &[&limit])
            .await?;
        let sends = self
            .store
            .slow
            .execute(&client, &DELETE_OLD_SENDS, &[&limit])
            .await?;
        Ok(tokens + sends)
    }
}

async fn insert_token<E: Executor>(
    slow: SlowQuery,
    client: &E,
    user_id: UserId,
    token: &NewAccountToken,
) -> Result<(), StoreError> {
    slow.execute(
        client,
        &INSERT_TOKEN,
        &[
            &token.token_hash.as_slice(),
            user_id.as_uuid(),
            &token.purpose.as_str(),
            &token.new_email.as_ref().map(Email::as_str),
            &token.expires_at,
        ],
    )
    .await?;
    Ok(())
}

/// Locks the address for this transaction and says how long until it may
/// get another message, if it may not now.
async fn over_limit<E: Executor>(
    slow: SlowQuery,
    client: &E,
    address_hash: [u8; 32],
    limits: MailLimits,
) -> Result<Option<u64>, StoreError> {
    slow.query(client, &LOCK_ADDRESS, &[&address_hash.as_slice()])
        .await?;
    let row = slow
        .query_one(client, &COUNT_SENDS, &[&address_hash.as_slice()])
        .await?;
    let last_minute: i64 = row.try_get("last_minute")?;
    let last_hour: i64 = row.try_get("last_hour")?;
    let wait = if last_hour >= limits.per_hour {
        row.try_get::<_, f64>("hour_wait")?
    } else if last_minute >= limits.per_minute {
        row.try_get::<_, f64>("minute_wait")?
    } else {
        return Ok(None);
    };
    Ok(Some(wait.ceil().max(1.0) as u64))
}

async fn consume<E: Executor>(
    slow: SlowQuery,
    client: &E,
    token_hash: [u8; 32],
    purpose: TokenPurpose,
) -> Result<(Uuid, Option<String>), ConsumeError> {
    let row = slow
        .query_opt(
            client,
            &CONSUME,
            &[&token_hash.as_slice(), &purpose.as_str()],
        )
        .await?
        .ok_or(InvalidToken)?;
    let user_id = row.try_get("user_id").map_err(StoreError::from)?;
    let new_email = row.try_get("new_email").map_err(StoreError::from)?;
    Ok((user_id, new_email))
}
