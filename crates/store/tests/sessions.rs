//! Sessions and their refresh tokens against a real PostgreSQL: rotation,
//! the reuse grace, every kind of ending (and its race with rotation), the
//! ended-sessions feed, expiry and cleanup.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use projects_domain::{Email, Role, SessionEndReason, SessionId, UserId};
use projects_store::{
    CleanupBatch, EndedFeed, EndedSessions, NewSession, NewUser, Rotation, SessionPolicy,
    SessionScope, Store,
};
use projects_testkit::TestDb;
use time::OffsetDateTime;

async fn user(store: &Store) -> UserId {
    store
        .users()
        .insert(&NewUser {
            email: Email::parse(&format!("u{}@example.com", uuid::Uuid::new_v4().simple()))
                .expect("valid"),
            name: "Someone".into(),
            role: Role::User,
            password_hash: "$argon2id$stub".into(),
        })
        .await
        .expect("insert")
        .id
}

/// A random "token hash": the store never sees tokens.
fn hash() -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out
}

async fn start(store: &Store, user: UserId, first: [u8; 32], policy: &SessionPolicy) -> SessionId {
    store
        .sessions()
        .start(
            &NewSession {
                user_id: user,
                first_token_hash: first,
                user_agent: Some("test".into()),
                ip: Some("203.0.113.7".parse().expect("ip")),
            },
            policy,
        )
        .await
        .expect("start")
}

/// Presents `token` for rotation to `next`.
async fn rotate(
    store: &Store,
    token: [u8; 32],
    next: [u8; 32],
    policy: &SessionPolicy,
) -> Rotation {
    store
        .sessions()
        .rotate(token, next, policy)
        .await
        .expect("rotate")
}

/// Ends one of `user`'s sessions; what the call ended.
async fn end_one(
    store: &Store,
    user: UserId,
    session: SessionId,
    reason: SessionEndReason,
) -> EndedSessions {
    store
        .sessions()
        .end(SessionScope::One { user, session }, reason)
        .await
        .expect("end")
}

/// The session ids of an ending or a feed, in its order.
fn ids(ended: &[(SessionId, OffsetDateTime)]) -> Vec<SessionId> {
    ended.iter().map(|(s, _)| *s).collect()
}

/// The endings since `cursor`, within `window`.
async fn feed(store: &Store, cursor: i64, window: Duration) -> EndedFeed {
    store
        .sessions()
        .ended_since(cursor, window)
        .await
        .expect("feed")
}

/// One cleanup batch of at most `limit`; `None`: another instance holds
/// the lock.
async fn cleanup(store: &Store, limit: i64, window: Duration) -> Option<CleanupBatch> {
    store
        .sessions()
        .cleanup_batch(limit, window)
        .await
        .expect("cleanup")
}

/// The ids of `user`'s live sessions, newest first.
async fn live(store: &Store, user: UserId) -> Vec<SessionId> {
    store
        .sessions()
        .list(user, None, 10)
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect()
}

fn no_grace() -> SessionPolicy {
    SessionPolicy {
        reuse_grace: Duration::ZERO,
        ..SessionPolicy::default()
    }
}

#[tokio::test]
async fn rotation_moves_the_chain_and_reuse_after_the_grace_ends_the_session() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = user(store).await;
    let policy = no_grace();
    let (t0, t1, t2) = (hash(), hash(), hash());
    let session = start(store, id, t0, &policy).await;
    let rotated = rotate(store, t0, t1, &policy).await;
    assert!(
        matches!(rotated, Rotation::Rotated { user, session: s } if user.id == id && s == session)
    );
    let reused = rotate(store, t0, t1, &policy).await;
    let Rotation::Reused { user_id, ended } = reused else {
        panic!("expected reuse, got {reused:?}");
    };
    assert_eq!(user_id, id);
    assert_eq!(ids(&ended.sessions), [session]);
    let after = rotate(store, t1, t2, &policy).await;
    assert!(matches!(after, Rotation::Invalid), "the session has ended");
    let unknown = rotate(store, hash(), hash(), &policy).await;
    assert!(matches!(unknown, Rotation::Invalid));
    let reason: String = db
        .client()
        .await
        .query_one(
            "SELECT end_reason FROM sessions WHERE id = $1",
            &[session.as_uuid()],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(reason, "reuse");
}

#[tokio::test]
async fn a_duplicate_within_the_grace_gets_the_same_successor_and_ends_nothing() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = user(store).await;
    let policy = SessionPolicy::default();
    let (t0, t1, t2) = (hash(), hash(), hash());
    let session = start(store, id, t0, &policy).await;
    assert!(matches!(
        rotate(store, t0, t1, &policy).await,
        Rotation::Rotated { .. }
    ));
    for _ in 0..3 {
        let again = rotate(store, t0, t1, &policy).await;
        assert!(matches!(again, Rotation::Duplicate { session: s, .. } if s == session));
    }
    // Once the successor has moved on, a duplicate is a 401 that ends nothing.
    assert!(matches!(
        rotate(store, t1, t2, &policy).await,
        Rotation::Rotated { .. }
    ));
    assert!(matches!(
        rotate(store, t0, t1, &policy).await,
        Rotation::Invalid
    ));
    assert_eq!(live(store, id).await.len(), 1, "still live");
    // After the grace, the same presentation is reuse.
    db.client()
        .await
        .execute(
            "UPDATE refresh_tokens SET used_at = used_at - interval '11 seconds'",
            &[],
        )
        .await
        .expect("age");
    assert!(matches!(
        rotate(store, t0, t1, &policy).await,
        Rotation::Reused { .. }
    ));
    assert!(live(store, id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_presentations_of_one_token_rotate_once_and_the_rest_are_duplicates() {
    let db = TestDb::new().await;
    let store = db.store().clone();
    let id = user(&store).await;
    let policy = SessionPolicy::default();
    let (t0, t1) = (hash(), hash());
    start(&store, id, t0, &policy).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.sessions().rotate(t0, t1, &policy).await })
        })
        .collect();
    let mut rotated = 0;
    for task in tasks {
        match task.await.expect("joined").expect("rotate") {
            Rotation::Rotated { .. } => rotated += 1,
            Rotation::Duplicate { .. } => {}
            other => panic!("a duplicate within the grace got {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
    assert_eq!(live(&store, id).await.len(), 1);
}

#[tokio::test]
async fn endings_end_the_right_sessions_once() {
    let db = TestDb::new().await;
    let store = db.store();
    let policy = SessionPolicy::default();
    let ada = user(store).await;
    let bob = user(store).await;
    let a1 = start(store, ada, hash(), &policy).await;
    let a2 = start(store, ada, hash(), &policy).await;
    let a3 = start(store, ada, hash(), &policy).await;
    let b1 = start(store, bob, hash(), &policy).await;
    let sessions = store.sessions();
    // Someone else's session is not found, and stays live.
    let none = end_one(store, ada, b1, SessionEndReason::Revoked).await;
    assert!(none.is_empty());
    let one = end_one(store, ada, a1, SessionEndReason::Revoked).await;
    assert_eq!(one.len(), 1);
    let again = end_one(store, ada, a1, SessionEndReason::Revoked).await;
    assert!(again.is_empty(), "an ended session ends once");
    let others = sessions
        .end(
            SessionScope::AllBut {
                user: ada,
                keep: a3,
            },
            SessionEndReason::Revoked,
        )
        .await
        .expect("end");
    assert_eq!(ids(&others.sessions), [a2]);
    assert_eq!(live(store, ada).await, [a3]);
    assert_eq!(live(store, bob).await.len(), 1);
    // Deleting a user ends their sessions, and the feed keeps saying so.
    let ended = store.users().delete(bob).await.expect("delete");
    assert_eq!(ids(&ended.sessions), [b1]);
    let mut fed = ids(&feed(store, 0, Duration::from_secs(900)).await.ended);
    fed.sort();
    let mut expected = vec![a1, a2, b1];
    expected.sort();
    assert_eq!(fed, expected);
}

#[tokio::test]
async fn the_feed_cursor_returns_only_what_came_since_and_never_skips() {
    let db = TestDb::new().await;
    let store = db.store();
    let policy = SessionPolicy::default();
    let ada = user(store).await;
    let s1 = start(store, ada, hash(), &policy).await;
    let s2 = start(store, ada, hash(), &policy).await;
    let window = Duration::from_secs(900);
    let first = feed(store, 0, window).await;
    assert!(first.ended.is_empty());
    end_one(store, ada, s1, SessionEndReason::Logout).await;
    // A transaction that ends s2 but has not committed yet when a poll runs.
    let mut client = db.client().await;
    let tx = client.transaction().await.expect("tx");
    tx.execute(
        "UPDATE sessions SET ended_at = now(), end_reason = 'revoked' WHERE id = $1",
        &[s2.as_uuid()],
    )
    .await
    .expect("end s2");
    tx.execute(
        "INSERT INTO session_endings (session_id) VALUES ($1)",
        &[s2.as_uuid()],
    )
    .await
    .expect("feed s2");
    let second = feed(store, first.next_cursor, window).await;
    assert_eq!(ids(&second.ended), [s1]);
    tx.commit().await.expect("commit");
    let third = feed(store, second.next_cursor, window).await;
    assert!(
        third.ended.iter().any(|(s, _)| *s == s2),
        "the late commit is in the next poll"
    );
    // Entries older than the window are not reloaded.
    let old = feed(store, 0, Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(old.ended.len() <= 2);
    let none = feed(store, 0, Duration::from_millis(1)).await;
    assert!(none.ended.is_empty());
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_limit_whatever_its_refreshes() {
    let db = TestDb::new().await;
    let store = db.store();
    let ada = user(store).await;
    let policy = SessionPolicy {
        max_age: Duration::from_secs(3),
        idle_ttl: Duration::from_secs(86_400),
        reuse_grace: Duration::ZERO,
    };
    let mut token = hash();
    start(store, ada, token, &policy).await;
    let sessions = store.sessions();
    let listed = sessions.list(ada, None, 10).await.expect("list");
    assert!(listed[0].expires_at - listed[0].created_at <= time::Duration::seconds(3));
    let started = std::time::Instant::now();
    let mut refreshed = 0;
    loop {
        let next = hash();
        match rotate(store, token, next, &policy).await {
            Rotation::Rotated { .. } => {
                token = next;
                refreshed += 1;
            }
            Rotation::Invalid => break,
            other => panic!("unexpected {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refreshed >= 2, "it was refreshed before it expired");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before its limit"
    );
    assert!(live(store, ada).await.is_empty());
}

#[tokio::test]
async fn cleanup_removes_only_dead_rows_and_keeps_the_feed_the_reload_needs() {
    let db = TestDb::new().await;
    let store = db.store();
    let policy = SessionPolicy::default();
    let ada = user(store).await;
    let live = start(store, ada, hash(), &policy).await;
    let ended = start(store, ada, hash(), &policy).await;
    let expired = start(store, ada, hash(), &policy).await;
    let old_ended = start(store, ada, hash(), &policy).await;
    for session in [ended, old_ended] {
        end_one(store, ada, session, SessionEndReason::Logout).await;
    }
    let client = db.client().await;
    client
        .execute(
            "UPDATE sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1",
            &[expired.as_uuid()],
        )
        .await
        .expect("expire");
    client
        .execute(
            "UPDATE session_endings SET ended_at = now() - interval '2 hours' WHERE session_id = $1",
            &[old_ended.as_uuid()],
        )
        .await
        .expect("age");
    let window = Duration::from_secs(900 + 65);
    let batch = cleanup(store, 1_000, window)
        .await
        .expect("the lock is free");
    assert_eq!((batch.sessions, batch.feed_entries), (3, 1));
    let remaining: Vec<uuid::Uuid> = client
        .query("SELECT id FROM sessions", &[])
        .await
        .expect("rows")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(remaining, [*live.as_uuid()]);
    let tokens: i64 = client
        .query_one("SELECT count(*) FROM refresh_tokens", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(tokens, 1, "the dead sessions' tokens went with them");
    let feed: Vec<uuid::Uuid> = client
        .query("SELECT session_id FROM session_endings", &[])
        .await
        .expect("rows")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        feed,
        [*ended.as_uuid()],
        "the recent ending stays in the feed"
    );
    // Bounded: a batch of 1 removes at most one of each kind.
    for _ in 0..3 {
        let session = start(store, ada, hash(), &policy).await;
        end_one(store, ada, session, SessionEndReason::Logout).await;
    }
    let small = cleanup(store, 1, window).await.expect("free");
    assert_eq!(small.sessions, 1);
    // One instance at a time: while another holds the lock, a batch skips.
    let mut holder = db.client().await;
    let tx = holder.transaction().await.expect("tx");
    let held: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1)",
            &[&0x7365_7373_636c_6e75_i64],
        )
        .await
        .expect("lock")
        .get(0);
    assert!(held);
    assert!(cleanup(store, 1, window).await.is_none());
    tx.rollback().await.expect("release");
    assert!(cleanup(store, 1, window).await.is_some());
}

/// The kinds of ending that race a rotation.
#[derive(Debug, Clone, Copy)]
enum Ending {
    PasswordChange,
    Logout,
    Reuse,
    EndOne,
}

/// An attacker refreshes a stolen token in a loop while the owner ends the
/// session; once the ending has answered, no token of the session may work,
/// including one whose rotation was in flight. Run many times per kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_token_survives_an_ending_that_raced_a_rotation() {
    const TRIALS: usize = 40;
    let db = TestDb::new().await;
    let store = db.store().clone();
    let policy = no_grace();
    let owner = user(&store).await;
    let mut rotations_after_start = 0;
    for kind in [
        Ending::PasswordChange,
        Ending::Logout,
        Ending::Reuse,
        Ending::EndOne,
    ] {
        for trial in 0..TRIALS {
            let first = hash();
            let session = start(&store, owner, first, &policy).await;
            // The session the owner changes the password from.
            let keeper = start(&store, owner, hash(), &policy).await;
            // Let the attacker rotate a few times first; at least once when
            // the ending is the reuse of `first`: were `first` still the
            // current token, whichever of the two presented it first would
            // rightly rotate, and the other be the reuse.
            let mut current = first;
            let head_start = trial % 3 + usize::from(matches!(kind, Ending::Reuse));
            for _ in 0..head_start {
                let next = hash();
                let rotated = rotate(&store, current, next, &policy).await;
                assert!(matches!(rotated, Rotation::Rotated { .. }));
                current = next;
            }
            let answered = Arc::new(AtomicBool::new(false));
            let attacker = {
                let store = store.clone();
                let answered = Arc::clone(&answered);
                tokio::spawn(async move {
                    let mut token = current;
                    let mut rotated = 0;
                    loop {
                        let after_answer = answered.load(Ordering::SeqCst);
                        let next = hash();
                        match rotate(&store, token, next, &policy).await {
                            Rotation::Rotated { .. } => {
                                assert!(
                                    !after_answer,
                                    "a rotation started after the ending answered succeeded"
                                );
                                token = next;
                                rotated += 1;
                            }
                            Rotation::Invalid => return (token, rotated),
                            other => panic!("the attacker got {other:?}"),
                        }
                    }
                })
            };
            // Stagger the ending against the loop.
            tokio::time::sleep(Duration::from_micros(200 * (trial as u64 % 10))).await;
            let ended = match kind {
                Ending::PasswordChange => store
                    .users()
                    .change_password(owner, "$argon2id$new", keeper)
                    .await
                    .expect("change"),
                Ending::Logout => store
                    .sessions()
                    .end_by_token(first, SessionEndReason::Logout)
                    .await
                    .expect("logout"),
                Ending::Reuse => match rotate(&store, first, hash(), &policy).await {
                    Rotation::Reused { ended, .. } => ended,
                    other => panic!("{kind:?} trial {trial}: expected reuse, got {other:?}"),
                },
                Ending::EndOne => end_one(&store, owner, session, SessionEndReason::Revoked).await,
            };
            answered.store(true, Ordering::SeqCst);
            assert!(
                ended.sessions.iter().any(|(s, _)| *s == session),
                "{kind:?} trial {trial}: the session was ended by this call"
            );
            let (last, rotated) = attacker.await.expect("the attacker's invariant held");
            rotations_after_start += rotated;
            // The newest token the attacker holds, and every earlier one, is dead.
            for token in [last, current, first] {
                assert!(
                    matches!(
                        rotate(&store, token, hash(), &policy).await,
                        Rotation::Invalid
                    ),
                    "{kind:?} trial {trial}: a token of the ended session still works"
                );
            }
            // A password change ends every session but the one it came from.
            if matches!(kind, Ending::PasswordChange) {
                assert_eq!(live(&store, owner).await, [keeper]);
            }
            end_one(&store, owner, keeper, SessionEndReason::Revoked).await;
        }
    }
    // The attacker really was rotating while the endings ran.
    assert!(rotations_after_start > 0, "the race never happened");
}
