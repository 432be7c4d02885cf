//! The `sessions` table, the refresh tokens that belong to each session, and
//! the ended-sessions feed (`session_endings`).
//!
//! One rule makes endings final: rotation and every kind of ending lock the
//! session row (`SELECT … FOR UPDATE`) before anything else. A rotation that
//! got the lock first commits its new token before the ending goes on, and
//! the ending then ends the session that token belongs to; a rotation that
//! waited sees the ended session and refuses. Tokens carry no state of their
//! own beyond "used": whether one works is its session's state, read under
//! that lock.
//!
//! Every ending goes through [`end_sessions`] (one session, all of a user's,
//! or all but one), which also writes the feed that other instances poll.

use std::net::IpAddr;
use std::time::Duration;

use projects_domain::{Session, SessionEndReason, SessionId, User, UserId};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::statement::{Executor, SlowQuery, Sql};
use crate::users::user_from_row;
use crate::{Store, StoreError};

/// How long a session may live and how it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// The absolute limit from the start (`SESSION_MAX_AGE_DAYS`).
    pub max_age: Duration,
    /// The idle limit: a session unused this long ends
    /// (`REFRESH_TOKEN_TTL_DAYS`).
    pub idle_ttl: Duration,
    /// How long after a rotation a duplicate presentation of the rotated
    /// token is benign (`REFRESH_REUSE_GRACE_SECONDS`).
    pub reuse_grace: Duration,
}

impl Default for SessionPolicy {
    /// The contract's defaults: 90 days, 30 days idle, 10 s of grace.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(90 * 86_400),
            idle_ttl: Duration::from_secs(30 * 86_400),
            reuse_grace: Duration::from_secs(10),
        }
    }
}

/// A session to start, with its first refresh token (its hash, never the
/// token).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: UserId,
    pub first_token_hash: [u8; 32],
    /// At most 256 characters (longer is cut by the caller).
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

/// Which sessions an ending ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope {
    /// One session, if it is this user's and live.
    One { user: UserId, session: SessionId },
    /// Every live session of the user.
    AllOfUser(UserId),
    /// Every live session of the user except `keep`.
    AllBut { user: UserId, keep: SessionId },
}

/// The sessions one ending ended (possibly none), with when, as the
/// database clock says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndedSessions {
    pub sessions: Vec<(SessionId, time::OffsetDateTime)>,
}

impl EndedSessions {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    /// The token was valid: it is now used, and its successor is stored in
    /// the same session. The user is as the database has them now.
    Rotated { user: User, session: SessionId },
    /// The token had been rotated within the grace, and its successor is
    /// still unused: the caller hands out that successor again.
    Duplicate { user: User, session: SessionId },
    /// The token had been rotated before the grace: its session is now
    /// ended.
    Reused {
        user_id: UserId,
        ended: EndedSessions,
    },
    /// Unknown, or its session ended or expired, or a duplicate whose
    /// successor has moved on: nothing changed.
    Invalid,
}

/// A page of the ended-sessions feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedFeed {
    /// Pass it to the next poll: no ending committed after this poll can
    /// have a smaller cursor.
    pub next_cursor: i64,
    /// The database clock when the poll ran.
    pub polled_at: time::OffsetDateTime,
    /// Sessions ended since the cursor (and within the window), with when.
    pub ended: Vec<(SessionId, time::OffsetDateTime)>,
}

/// What one cleanup batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupBatch {
    /// Ended or expired sessions (their refresh tokens went with them).
    pub sessions: u64,
    /// Feed entries older than the window the revocation reload needs.
    pub feed_entries: u64,
}

/// The sessions repository.
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a> {
    store: &'a Store,
}

const INSERT_SESSION: Sql = Sql::new(
    "sessions.insert",
    "INSERT INTO sessions (id, user_id, expires_at, idle_expires_at, user_agent, ip) \
     VALUES ($1, $2, now() + make_interval(secs => $3), \
             least(now() + make_interval(secs => $3), now() + make_interval(secs => $4)), $5, $6) \
     RETURNING idle_expires_at",
);
const INSERT_TOKEN: Sql = Sql::new(
    "sessions.insert_token",
    "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
);
const TOKEN_SESSION: Sql = Sql::new(
    "sessions.token_session",
    "SELECT session_id FROM refresh_tokens WHERE token_hash = $1",
);
/// The lock every rotation and ending takes first.
const LOCK_SESSION: Sql = Sql::new(
    "sessions.lock",
    "SELECT user_id, ended_at IS NULL AND idle_expires_at > now() AS live \
     FROM sessions WHERE id = $1 FOR UPDATE",
);
/// Read after the lock: a concurrent rotation of the same token has
/// committed by then, and this statement sees it.
const TOKEN_STATE: Sql = Sql::new(
    "sessions.token_state",
    "SELECT used_at IS NOT NULL AS used, \
            used_at > clock_timestamp() - make_interval(secs => $3) AS within_grace \
     FROM refresh_tokens WHERE token_hash = $1 AND session_id = $2",
);
const MARK_USED: Sql = Sql::new(
    "sessions.mark_used",
    "UPDATE refresh_tokens SET used_at = clock_timestamp() WHERE token_hash = $1",
);
const TOUCH: Sql = Sql::new(
    "sessions.touch",
    "UPDATE sessions SET last_used_at = now(), \
     idle_expires_at = least(expires_at, now() + make_interval(secs => $2)) \
     WHERE id = $1 RETURNING idle_expires_at",
);
const SUCCESSOR_UNUSED: Sql = Sql::new(
    "sessions.successor_unused",
    "SELECT 1 FROM refresh_tokens WHERE token_hash = $1 AND session_id = $2 AND used_at IS NULL",
);
const USER: Sql = Sql::new(
    "sessions.user",
    concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"),
);
const LOCK_ONE: Sql = Sql::new(
    "sessions.lock_one",
    "SELECT id FROM sessions \
     WHERE id = $1 AND user_id = $2 AND ended_at IS NULL AND idle_expires_at > now() \
     FOR UPDATE",
);
// In id order, so that two endings of overlapping sets never deadlock.
const LOCK_ALL_OF_USER: Sql = Sql::new(
    "sessions.lock_all_of_user",
    "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL ORDER BY id FOR UPDATE",
);
const LOCK_ALL_BUT: Sql = Sql::new(
    "sessions.lock_all_but",
    "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND id <> $2 \
     ORDER BY id FOR UPDATE",
);
const LOCK_BY_ID: Sql = Sql::new(
    "sessions.lock_by_id",
    "SELECT id FROM sessions WHERE id = $1 AND ended_at IS NULL FOR UPDATE",
);
/// Ends locked sessions and writes the feed, in one statement. The time is
/// the clock's, not the transaction start's: the feed is read by age.
const END: Sql = Sql::new(
    "sessions.end",
    "WITH ended AS ( \
         UPDATE sessions SET ended_at = clock_timestamp(), end_reason = $2 \
         WHERE id = ANY($1) AND ended_at IS NULL RETURNING id, ended_at) \
     INSERT INTO session_endings (session_id, ended_at) SELECT id, ended_at FROM ended \
     ON CONFLICT (session_id) DO NOTHING RETURNING session_id, ended_at",
);
const LIST_FIRST: Sql = Sql::new(
    "sessions.list_first",
    "SELECT id, created_at, last_used_at, idle_expires_at, user_agent, ip FROM sessions \
     WHERE user_id = $1 AND ended_at IS NULL AND idle_expires_at > now() \
     ORDER BY id DESC LIMIT $2",
);
const LIST_AFTER: Sql = Sql::new(
    "sessions.list_after",
    "SELECT id, created_at, last_used_at, idle_expires_at, user_agent, ip FROM sessions \
     WHERE user_id = $1 AND ended_at IS NULL AND idle_expires_at > now() AND id < $2 \
     ORDER BY id DESC LIMIT $3",
);
/// One poll of the feed: one indexed statement, whatever happened.
const FEED: Sql = Sql::new(
    "sessions.feed",
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS next_cursor, \
            now() AS polled_at, \
            COALESCE(array_agg(session_id), '{}') AS ids, \
            COALESCE(array_agg(ended_at), '{}') AS ended \
     FROM session_endings \
     WHERE xid >= $1 AND ended_at > now() - make_interval(secs => $2)",
);
const COUNT_LIVE: Sql = Sql::new(
    "sessions.count_live",
    "SELECT count(*) FROM sessions WHERE ended_at IS NULL AND idle_expires_at > now()",
);
/// An arbitrary, fixed key: "projects-api session cleanup".
const CLEANUP_LOCK_KEY: i64 = 0x7365_7373_636c_6e75;
const CLEANUP_LOCK: Sql = Sql::new(
    "sessions.cleanup_lock",
    "SELECT pg_try_advisory_xact_lock($1)",
);
const DELETE_ENDED: Sql = Sql::new(
    "sessions.delete_ended",
    "DELETE FROM sessions WHERE id IN ( \
         SELECT id FROM sessions WHERE ended_at IS NOT NULL ORDER BY ended_at LIMIT $1 \
         FOR UPDATE SKIP LOCKED)",
);
const DELETE_EXPIRED: Sql = Sql::new(
    "sessions.delete_expired",
    "DELETE FROM sessions WHERE id IN ( \
         SELECT id FROM sessions WHERE ended_at IS NULL AND idle_expires_at <= now() \
         ORDER BY idle_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
);
const DELETE_OLD_FEED: Sql = Sql::new(
    "sessions.delete_old_feed",
    "DELETE FROM session_endings WHERE session_id IN ( \
         SELECT session_id FROM session_endings \
         WHERE ended_at <= now() - make_interval(secs => $2) ORDER BY ended_at LIMIT $1)",
);

impl Store {
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { store: self }
    }
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl Sessions<'_> {
    /// Starts a session with its first refresh token.
    pub async fn start(
        &self,
        session: &NewSession,
        policy: &SessionPolicy,
    ) -> Result<SessionId, StoreError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let id = SessionId::new();
        let row = slow
            .query_one(
                &tx,
                &INSERT_SESSION,
                &[
                    id.as_uuid(),
                    session.user_id.as_uuid(),
                    &seconds(policy.max_age),
                    &seconds(policy.idle_ttl),
                    &session.user_agent,
                    &session.ip,
                ],
            )
            .await?;
        let expires_at: time::OffsetDateTime = row.try_get("idle_expires_at")?;
        slow.execute(
            &tx,
            &INSERT_TOKEN,
            &[
                &Uuid::now_v7(),
                id.as_uuid(),
                &session.first_token_hash.as_slice(),
                &expires_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Rotates `presented` into `successor` (its derived successor), in one
    /// transaction under the session's lock. See [`Rotation`].
    pub async fn rotate(
        &self,
        presented: [u8; 32],
        successor: [u8; 32],
        policy: &SessionPolicy,
    ) -> Result<Rotation, StoreError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = slow
            .query_opt(&tx, &TOKEN_SESSION, &[&presented.as_slice()])
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        let session_id: Uuid = row.try_get("session_id")?;
        let Some(session) = slow.query_opt(&tx, &LOCK_SESSION, &[&session_id]).await? else {
            return Ok(Rotation::Invalid);
        };
        if !session.try_get::<_, bool>("live")? {
            return Ok(Rotation::Invalid);
        }
        let user_id: Uuid = session.try_get("user_id")?;
        let Some(state) = slow
            .query_opt(
                &tx,
                &TOKEN_STATE,
                &[
                    &presented.as_slice(),
                    &session_id,
                    &seconds(policy.reuse_grace),
                ],
            )
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        let session = SessionId::from_uuid(session_id);
        if !state.try_get::<_, bool>("used")? {
            slow.execute(&tx, &MARK_USED, &[&presented.as_slice()])
                .await?;
            let touched = slow
                .query_one(&tx, &TOUCH, &[&session_id, &seconds(policy.idle_ttl)])
                .await?;
            let expires_at: time::OffsetDateTime = touched.try_get("idle_expires_at")?;
            slow.execute(
                &tx,
                &INSERT_TOKEN,
                &[
                    &Uuid::now_v7(),
                    &session_id,
                    &successor.as_slice(),
                    &expires_at,
                ],
            )
            .await?;
            let user = user_from_row(&slow.query_one(&tx, &USER, &[&user_id]).await?)?;
            tx.commit().await?;
            return Ok(Rotation::Rotated { user, session });
        }
        if state.try_get::<_, Option<bool>>("within_grace")? == Some(true) {
            let unused = slow
                .query_opt(
                    &tx,
                    &SUCCESSOR_UNUSED,
                    &[&successor.as_slice(), &session_id],
                )
                .await?
                .is_some();
            if !unused {
                return Ok(Rotation::Invalid);
            }
            let user = user_from_row(&slow.query_one(&tx, &USER, &[&user_id]).await?)?;
            tx.commit().await?;
            return Ok(Rotation::Duplicate { user, session });
        }
        let ended = end_locked(slow, &tx, &[session_id], SessionEndReason::Reuse).await?;
        tx.commit().await?;
        Ok(Rotation::Reused {
            user_id: UserId::from_uuid(user_id),
            ended,
        })
    }

    /// Ends the sessions of `scope`; returns those it ended (none when they
    /// had ended already or do not exist).
    pub async fn end(
        &self,
        scope: SessionScope,
        reason: SessionEndReason,
    ) -> Result<EndedSessions, StoreError> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let ended = end_sessions(self.store.slow, &tx, scope, reason).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Ends the session a refresh token (used or not) belongs to: logout.
    pub async fn end_by_token(
        &self,
        token_hash: [u8; 32],
        reason: SessionEndReason,
    ) -> Result<EndedSessions, StoreError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = slow
            .query_opt(&tx, &TOKEN_SESSION, &[&token_hash.as_slice()])
            .await?
        else {
            return Ok(EndedSessions::default());
        };
        let session_id: Uuid = row.try_get("session_id")?;
        let locked = slow.query(&tx, &LOCK_BY_ID, &[&session_id]).await?;
        let ids = ids_of(&locked)?;
        let ended = end_locked(slow, &tx, &ids, reason).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// A page of the user's live sessions, newest first, after `after`.
    pub async fn list(
        &self,
        user: UserId,
        after: Option<SessionId>,
        limit: i64,
    ) -> Result<Vec<Session>, StoreError> {
        let client = self.store.client().await?;
        let rows = match after {
            None => {
                self.store
                    .slow
                    .query(&client, &LIST_FIRST, &[user.as_uuid(), &limit])
                    .await?
            }
            Some(after) => {
                self.store
                    .slow
                    .query(
                        &client,
                        &LIST_AFTER,
                        &[user.as_uuid(), after.as_uuid(), &limit],
                    )
                    .await?
            }
        };
        rows.iter().map(session_from_row).collect()
    }

    /// The sessions ended since `cursor` (0 at first: everything within the
    /// window), at most `window` ago.
    pub async fn ended_since(
        &self,
        cursor: i64,
        window: Duration,
    ) -> Result<EndedFeed, StoreError> {
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_one(&client, &FEED, &[&cursor, &seconds(window)])
            .await?;
        let ids: Vec<Uuid> = row.try_get("ids")?;
        let ended: Vec<time::OffsetDateTime> = row.try_get("ended")?;
        Ok(EndedFeed {
            next_cursor: row.try_get("next_cursor")?,
            polled_at: row.try_get("polled_at")?,
            ended: ids
                .into_iter()
                .map(SessionId::from_uuid)
                .zip(ended)
                .collect(),
        })
    }

    /// How many sessions are live now.
    pub async fn count_live(&self) -> Result<i64, StoreError> {
        let client = self.store.client().await?;
        let row = self.store.slow.query_one(&client, &COUNT_LIVE, &[]).await?;
        Ok(row.try_get(0)?)
    }

    /// One bounded batch of cleanup: up to `limit` ended sessions, `limit`
    /// expired ones (their tokens go with them) and `limit` feed entries
    /// older than `feed_window`. `None` when another instance is cleaning
    /// up (a transaction-scoped advisory lock: safe behind a transaction
    /// pooler).
    pub async fn cleanup_batch(
        &self,
        limit: i64,
        feed_window: Duration,
    ) -> Result<Option<CleanupBatch>, StoreError> {
        let slow = self.store.slow;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let locked: bool = slow
            .query_one(&tx, &CLEANUP_LOCK, &[&CLEANUP_LOCK_KEY])
            .await?
            .try_get(0)?;
        if !locked {
            return Ok(None);
        }
        let ended = slow.execute(&tx, &DELETE_ENDED, &[&limit]).await?;
        let expired = slow.execute(&tx, &DELETE_EXPIRED, &[&limit]).await?;
        let feed_entries = slow
            .execute(&tx, &DELETE_OLD_FEED, &[&limit, &seconds(feed_window)])
            .await?;
        tx.commit().await?;
        Ok(Some(CleanupBatch {
            sessions: ended + expired,
            feed_entries,
        }))
    }
}

/// Ends the sessions of `scope` inside the caller's transaction: the one
/// way every kind of ending (logout, reuse, a password change or reset, a
/// user's deletion, the sessions routes) ends sessions. Locks them first,
/// in id order.
pub(crate) async fn end_sessions<E: Executor>(
    slow: SlowQuery,
    tx: &E,
    scope: SessionScope,
    reason: SessionEndReason,
) -> Result<EndedSessions, StoreError> {
    let locked = match scope {
        SessionScope::One { user, session } => {
            slow.query(tx, &LOCK_ONE, &[session.as_uuid(), user.as_uuid()])
                .await?
        }
        SessionScope::AllOfUser(user) => {
            slow.query(tx, &LOCK_ALL_OF_USER, &[user.as_uuid()]).await?
        }
        SessionScope::AllBut { user, keep } => {
            slow.query(tx, &LOCK_ALL_BUT, &[user.as_uuid(), keep.as_uuid()])
                .await?
        }
    };
    let ids = ids_of(&locked)?;
    end_locked(slow, tx, &ids, reason).await
}

fn ids_of(rows: &[Row]) -> Result<Vec<Uuid>, StoreError> {
    rows.iter()
        .map(|row| row.try_get::<_, Uuid>("id").map_err(StoreError::from))
        .collect()
}

/// Ends sessions whose rows this transaction has locked.
async fn end_locked<E: Executor>(
    slow: SlowQuery,
    tx: &E,
    ids: &[Uuid],
    reason: SessionEndReason,
) -> Result<EndedSessions, StoreError> {
    if ids.is_empty() {
        return Ok(EndedSessions::default());
    }
    let rows = slow.query(tx, &END, &[&ids, &reason.as_str()]).await?;
    let sessions = rows
        .iter()
        .map(|row| {
            Ok((
                SessionId::from_uuid(row.try_get("session_id")?),
                row.try_get("ended_at")?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(EndedSessions { sessions })
}

fn session_from_row(row: &Row) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_uuid(row.try_get("id")?),
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("idle_expires_at")?,
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
    })
}
