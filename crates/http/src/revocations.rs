//! Ended sessions, known to every instance within a second, so that the
//! authenticated extractor refuses their access tokens with a memory lookup
//! (no database round trip on the hot path).
//!
//! Each instance keeps the set of sessions that ended recently enough for
//! one of their access tokens to be unexpired (ended within the access-token
//! lifetime, plus leeway and a margin); older entries expire from the set.
//! It learns of endings three ways:
//!
//! - its own: the handler that ended a session adds it before answering;
//! - Redis pub/sub (when `REDIS_URL` is set): the ending instance publishes,
//!   every instance subscribes; fast, but a message sent while a subscriber
//!   is disconnected is lost;
//! - a poll of the ended-sessions feed in PostgreSQL, every
//!   [`POLL_INTERVAL`], one indexed statement per instance (never per
//!   request), which also covers Redis' gaps. Its cursor is a transaction
//!   id (see `V2__sessions.sql`), so a late commit is never skipped; the
//!   first poll (cursor 0) loads the whole window, and a poll that fails
//!   leaves the cursor where it was, so the next one catches up. It is one
//!   plain statement, so it works behind a transaction pooler (LISTEN would
//!   not).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use metrics::histogram;
use projects_auth::LEEWAY_SECONDS;
use projects_domain::SessionId;
use projects_store::{EndedSessions, Store};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::task::JoinHandle;

use crate::metrics::SESSION_REVOCATION_DELAY_SECONDS;

/// How often each instance polls the ended-sessions feed: well within the
/// contract's one second, with room for a slow query.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Kept beyond the access-token lifetime and leeway: an access token can be
/// signed a moment after its session's ending committed (a rotation that
/// won the lock just before).
const WINDOW_MARGIN: Duration = Duration::from_secs(60);
/// The Redis channel; the payload is `<ended_at unix ms> <session id>…`.
const CHANNEL: &str = "projects-api:sessions-ended";
/// A publish or a connection attempt to Redis gives up after this.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause before resubscribing after Redis failed.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// At most this many ids per Redis message are read (a message this server
/// sends never has more than one ending's sessions).
const MAX_IDS_PER_MESSAGE: usize = 10_000;

/// Where an ending was learnt from (the delay is measured for the remote
/// ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Local,
    Remote,
}

/// The set of ended sessions of one instance.
pub struct Revocations {
    /// Session → when its entry may be dropped.
    ended: RwLock<HashMap<SessionId, Instant>>,
    /// Entries in `ended`: lets the hot path skip the lock while it is
    /// empty.
    len: AtomicUsize,
    window: Duration,
    publisher: OnceLock<Publisher>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// An empty set whose entries last as long as an access token may.
    pub fn new(access_ttl: Duration) -> Self {
        Self {
            ended: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            window: access_ttl + Duration::from_secs(LEEWAY_SECONDS) + WINDOW_MARGIN,
            publisher: OnceLock::new(),
        }
    }

    /// How long after its ending a session is remembered.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether the session has ended: the hot-path check, a memory lookup
    /// that neither waits on I/O nor allocates.
    pub fn is_ended(&self, session: &SessionId) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.ended
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(session)
    }

    /// How many sessions the set holds.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions this instance just ended: remembered at once (before the
    /// answer goes out) and published to the other instances.
    pub fn ended_here(&self, ended: &EndedSessions) {
        if ended.is_empty() {
            return;
        }
        self.note(&ended.sessions, Source::Local);
        if let Some(publisher) = self.publisher.get() {
            publisher.publish(&ended.sessions);
        }
    }

    /// Adds endings; returns how many were new to this set.
    fn note(&self, ended: &[(SessionId, time::OffsetDateTime)], source: Source) -> usize {
        let now = Instant::now();
        let wall = time::OffsetDateTime::now_utc();
        let mut added = 0;
        let mut set = self.ended.write().unwrap_or_else(PoisonError::into_inner);
        for (session, ended_at) in ended {
            let age = Duration::try_from(wall - *ended_at).unwrap_or(Duration::ZERO);
            let Some(left) = self.window.checked_sub(age) else {
                continue;
            };
            if set.insert(*session, now + left).is_none() {
                added += 1;
                if source == Source::Remote {
                    histogram!(SESSION_REVOCATION_DELAY_SECONDS).record(age.as_secs_f64());
                }
            }
        }
        self.len.store(set.len(), Ordering::Release);
        added
    }

    /// Drops the entries whose access tokens have all expired.
    fn purge(&self) {
        let now = Instant::now();
        let expired = {
            let set = self.ended.read().unwrap_or_else(PoisonError::into_inner);
            set.values().any(|until| *until <= now)
        };
        if expired {
            let mut set = self.ended.write().unwrap_or_else(PoisonError::into_inner);
            set.retain(|_, until| *until > now);
            self.len.store(set.len(), Ordering::Release);
        }
    }

    /// Loads what the feed holds now (the whole window): what an instance
    /// does before it serves. Returns the cursor for the first poll.
    pub async fn reload(&self, store: &Store) -> Result<i64, projects_store::StoreError> {
        let feed = store.sessions().ended_since(0, self.window).await?;
        self.note(&feed.ended, Source::Local);
        Ok(feed.next_cursor)
    }

    /// Starts following the other instances: the feed poll, and Redis
    /// pub/sub when `redis_url` is set (also used to publish this
    /// instance's endings). `cursor` comes from [`Revocations::reload`]
    /// (0 to load everything on the first poll); `poll_interval` is
    /// [`POLL_INTERVAL`] in production. The tasks run until aborted.
    pub fn follow(
        self: &Arc<Self>,
        store: Store,
        redis_url: Option<&SecretString>,
        cursor: i64,
        poll_interval: Duration,
    ) -> Result<Vec<JoinHandle<()>>, redis::RedisError> {
        let mut tasks = vec![tokio::spawn(Arc::clone(self).poll(
            store,
            cursor,
            poll_interval,
        ))];
        if let Some(url) = redis_url {
            let client = redis::Client::open(url.expose_secret())?;
            let _ = self.publisher.set(Publisher {
                client: client.clone(),
                connection: Arc::new(tokio::sync::Mutex::new(None)),
            });
            tasks.push(tokio::spawn(Arc::clone(self).subscribe(client)));
        }
        Ok(tasks)
    }

    async fn poll(self: Arc<Self>, store: Store, mut cursor: i64, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticker.tick().await;
            match store.sessions().ended_since(cursor, self.window).await {
                Ok(feed) => {
                    self.note(&feed.ended, Source::Remote);
                    cursor = feed.next_cursor;
                    if failing {
                        tracing::info!("the ended-sessions feed answers again");
                        failing = false;
                    }
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(error = ?error, "cannot poll the ended-sessions feed; retrying");
                        failing = true;
                    }
                }
            }
            self.purge();
        }
    }

    async fn subscribe(self: Arc<Self>, client: redis::Client) {
        let mut failing = false;
        loop {
            let subscribed = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(CHANNEL).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(REDIS_TIMEOUT, subscribed).await {
                Ok(Ok(mut pubsub)) => {
                    if failing {
                        tracing::info!("subscribed to ended sessions on Redis again");
                        failing = false;
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let ended = parse_message(message.get_payload_bytes());
                        self.note(&ended, Source::Remote);
                    }
                    tracing::warn!(
                        "the Redis subscription to ended sessions closed; the feed poll covers the gap"
                    );
                }
                Ok(Err(error)) => {
                    if !failing {
                        tracing::warn!(error = ?error, "cannot subscribe to ended sessions on Redis; the feed poll covers them");
                        failing = true;
                    }
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!(
                            "Redis did not answer the subscription in time; the feed poll covers it"
                        );
                        failing = true;
                    }
                }
            }
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        }
    }
}

/// Publishes this instance's endings on Redis, off the request: a slow or
/// broken Redis costs the request nothing (the feed poll covers it).
struct Publisher {
    client: redis::Client,
    connection: Arc<tokio::sync::Mutex<Option<ConnectionManager>>>,
}

impl Publisher {
    fn publish(&self, ended: &[(SessionId, time::OffsetDateTime)]) {
        let Some(ended_at) = ended.iter().map(|(_, at)| *at).max() else {
            return;
        };
        let millis = ended_at.unix_timestamp_nanos() / 1_000_000;
        let mut payload = millis.to_string();
        for (session, _) in ended {
            payload.push(' ');
            payload.push_str(&session.to_string());
        }
        let client = self.client.clone();
        let connection = Arc::clone(&self.connection);
        tokio::spawn(async move {
            let sent = tokio::time::timeout(REDIS_TIMEOUT, async {
                let mut slot = connection.lock().await;
                if slot.is_none() {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(REDIS_TIMEOUT)
                        .set_response_timeout(REDIS_TIMEOUT)
                        .set_number_of_retries(1);
                    *slot = Some(ConnectionManager::new_with_config(client, config).await?);
                }
                let Some(manager) = slot.as_mut() else {
                    unreachable!("set just above");
                };
                redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(payload)
                    .query_async::<i64>(manager)
                    .await
            })
            .await;
            match sent {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(error = ?error, "cannot publish ended sessions on Redis; the feed poll covers them");
                }
                Err(_) => {
                    tracing::warn!(
                        "Redis did not take ended sessions in time; the feed poll covers them"
                    );
                }
            }
        });
    }
}

/// `<unix ms> <uuid> <uuid>…`; anything malformed is skipped.
fn parse_message(payload: &[u8]) -> Vec<(SessionId, time::OffsetDateTime)> {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Vec::new();
    };
    let mut parts = text.split(' ');
    let Some(ended_at) = parts
        .next()
        .and_then(|millis| millis.parse::<i64>().ok())
        .and_then(|millis| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
        })
    else {
        return Vec::new();
    };
    parts
        .take(MAX_IDS_PER_MESSAGE)
        .filter_map(|id| id.parse::<SessionId>().ok())
        .map(|id| (id, ended_at))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_last_the_window_and_old_endings_are_ignored() {
        let set = Revocations::new(Duration::from_secs(900));
        let fresh = SessionId::new();
        let old = SessionId::new();
        let now = time::OffsetDateTime::now_utc();
        assert!(!set.is_ended(&fresh));
        let added = set.note(
            &[(fresh, now), (old, now - time::Duration::hours(2))],
            Source::Local,
        );
        assert_eq!(added, 1);
        assert!(set.is_ended(&fresh));
        assert!(
            !set.is_ended(&old),
            "ended before any live token was signed"
        );
        assert_eq!(set.note(&[(fresh, now)], Source::Remote), 0, "seen already");
        set.purge();
        assert!(set.is_ended(&fresh), "not expired yet");
    }

    #[test]
    fn purge_drops_expired_entries() {
        let set = Revocations::new(Duration::from_secs(1));
        let session = SessionId::new();
        // Ended just under the window ago: its entry expires almost at once.
        let ended_at = time::OffsetDateTime::now_utc() - (set.window() - Duration::from_millis(5));
        set.note(&[(session, ended_at)], Source::Local);
        assert!(set.is_ended(&session));
        std::thread::sleep(Duration::from_millis(20));
        set.purge();
        assert!(!set.is_ended(&session));
        assert!(set.is_empty());
    }

    #[test]
    fn messages_parse_and_garbage_is_skipped() {
        let a = SessionId::new();
        let b = SessionId::new();
        let parsed = parse_message(format!("1767225600000 {a} nonsense {b}").as_bytes());
        assert_eq!(parsed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [a, b]);
        assert_eq!(parsed[0].1.unix_timestamp(), 1_767_225_600);
        assert!(parse_message(b"").is_empty());
        assert!(parse_message(b"not-a-time abc").is_empty());
        assert!(parse_message(&[0xff, 0xfe]).is_empty());
        let many = format!("0{}", format!(" {a}").repeat(MAX_IDS_PER_MESSAGE + 5));
        assert_eq!(parse_message(many.as_bytes()).len(), MAX_IDS_PER_MESSAGE);
    }
}
