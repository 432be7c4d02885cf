//! The store behind a real PgBouncer in transaction pooling mode with its
//! default settings (Debian's 1.18): unnamed statements work, the timeouts
//! hold (a statement past them is cancelled by the server and is
//! `Unavailable`), the start-up self-check refuses a setup that drops them,
//! migrations take their lock on the direct connection, and the pooler's
//! own errors are `Unavailable`.
//!
//! `#[ignore]`d: they need the pgbouncer binary (`just test` provides it).

use std::time::{Duration, Instant};

use projects_domain::inputs::NewProject;
use projects_domain::{Email, ProjectAccess, ProjectStatus, Role, SessionEndReason, UserId};
use projects_store::{
    NewSession, NewUser, Rotation, SessionPolicy, SessionScope, Store, StoreConfig, StoreError,
};
use projects_testkit::{PgBouncer, TestDb};

const NEEDS: &str = "needs pgbouncer: `just test`, or scripts/pgbouncer bin then --run-ignored all";

fn pooled(url: String, prepared_statements: bool, timeout: Duration) -> Store {
    let mut config = StoreConfig::new(url);
    config.pool_size = 4;
    config.timeout = timeout;
    config.prepared_statements = prepared_statements;
    Store::connect(&config).expect("valid URL")
}

async fn user(store: &Store, n: usize) -> UserId {
    store
        .users()
        .insert(&NewUser {
            email: Email::parse(&format!("user{n}@example.com")).expect("valid email"),
            name: format!("User {n}"),
            role: Role::User,
            password_hash: "not-a-real-hash".into(),
        })
        .await
        .expect("insert user")
        .id
}

#[tokio::test]
#[ignore = "needs pgbouncer: `just test`, or scripts/pgbouncer bin then --run-ignored all"]
async fn unnamed_statements_work_through_transaction_pooling() {
    let db = TestDb::new().await;
    let bouncer = PgBouncer::start();
    let store = pooled(bouncer.url(db.name()), false, Duration::from_secs(5));
    assert!(
        store.timeouts_in_effect().await.expect("answers"),
        "{NEEDS}"
    );
    assert!(store.ready().await.expect("answers"));

    // Many tasks on few connections: PgBouncer hands each transaction
    // whichever server connection is free, so a statement prepared on one
    // and used on another would fail ("prepared statement does not exist").
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = user(&store, n).await;
            let access = ProjectAccess::new(owner, false);
            for round in 0..5 {
                let project = store
                    .projects()
                    .create(
                        owner,
                        &NewProject {
                            name: Some(format!("P{n}-{round}")),
                            description: None,
                            status: ProjectStatus::Active,
                        },
                    )
                    .await
                    .expect("create");
                let found = store
                    .projects()
                    .find(access, project.id)
                    .await
                    .expect("find");
                assert_eq!(found.name, project.name);
                store
                    .users()
                    .set_name(owner, "Renamed")
                    .await
                    .expect("rename");
                // Multi-statement transactions: a session's start, its
                // rotation under the session lock, a password change that
                // ends the others, and the feed poll.
                let policy = SessionPolicy::default();
                let first = [n as u8; 32];
                let mut next = first;
                next[0] = round;
                next[1] = 0xee;
                let session = store
                    .sessions()
                    .start(
                        &NewSession {
                            user_id: owner,
                            first_token_hash: {
                                let mut token = first;
                                token[2] = round;
                                token
                            },
                            user_agent: None,
                            ip: None,
                        },
                        &policy,
                    )
                    .await
                    .expect("start a session");
                let mut presented = first;
                presented[2] = round;
                assert!(matches!(
                    store
                        .sessions()
                        .rotate(presented, next, &policy)
                        .await
                        .expect("rotate"),
                    Rotation::Rotated { .. }
                ));
                store
                    .users()
                    .change_password(owner, "another-hash", session)
                    .await
                    .expect("change password");
                store
                    .sessions()
                    .end(SessionScope::AllOfUser(owner), SessionEndReason::Revoked)
                    .await
                    .expect("end sessions");
                store
                    .sessions()
                    .ended_since(0, Duration::from_secs(900))
                    .await
                    .expect("poll the feed");
                store
                    .projects()
                    .delete(access, project.id)
                    .await
                    .expect("delete");
            }
            owner
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let listed = store.users().list(None, 100).await.expect("list");
    assert_eq!(listed.len(), 16);
    // The cleanup's transaction-scoped advisory lock works through the
    // pooler too: the 80 ended sessions go.
    let cleaned = store
        .sessions()
        .cleanup_batch(1_000, Duration::from_secs(900))
        .await
        .expect("cleanup")
        .expect("the lock is free");
    assert_eq!(cleaned.sessions, 80);
    assert!(listed.iter().all(|user| user.name == "Renamed"));
    drop(bouncer);
}

#[tokio::test]
#[ignore = "needs pgbouncer: `just test`, or scripts/pgbouncer bin then --run-ignored all"]
async fn a_statement_past_the_timeout_through_pgbouncer_is_cancelled_by_the_server() {
    let db = TestDb::new().await;
    let bouncer = PgBouncer::start();
    let timeout = Duration::from_millis(500);
    let store = pooled(bouncer.url(db.name()), false, timeout);
    let owner = user(&store, 1).await;
    assert!(store.timeouts_in_effect().await.expect("answers"));

    // A direct session holds the users table; our read waits on it.
    let mut blocker = db.client().await;
    let hold = blocker.transaction().await.expect("begin");
    hold.batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let started = Instant::now();
    let error = store
        .users()
        .find_by_id(owner)
        .await
        .expect_err("the wait is bounded");
    let elapsed = started.elapsed();
    drop(hold);
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    // The server ended it (lock or statement timeout), not our own
    // deadline (the timeout plus a second): the timeouts hold through the
    // pooler.
    let cause = format!("{error:?}");
    assert!(
        cause.contains("E55P03") || cause.contains("E57014"),
        "cancelled by the server: {cause}"
    );
    assert!(
        elapsed < timeout + Duration::from_millis(900),
        "{elapsed:?}"
    );
    // The connection is fine afterwards, and so is the pooler's.
    assert!(store.users().find_by_id(owner).await.is_ok());
    drop(bouncer);
}

#[tokio::test]
#[ignore = "needs pgbouncer: `just test`, or scripts/pgbouncer bin then --run-ignored all"]
async fn the_self_check_refuses_a_pooler_that_drops_the_timeouts() {
    let db = TestDb::new().await;
    // The usual workaround for "unsupported startup parameter: options":
    // PgBouncer then connects, silently without the timeouts.
    let dropping = PgBouncer::start_with(&[("ignore_startup_parameters", "options")]);
    let named = pooled(dropping.url(db.name()), true, Duration::from_secs(5));
    assert!(
        !named.timeouts_in_effect().await.expect("answers"),
        "the timeouts are not in effect and the check must say so"
    );
    assert!(!named.ready().await.expect("answers"));
    // Unnamed statements set them in every transaction: in effect.
    let unnamed = pooled(dropping.url(db.name()), false, Duration::from_secs(5));
    assert!(unnamed.timeouts_in_effect().await.expect("answers"));

    // With its default settings PgBouncer refuses the startup options: the
    // store notices and sets the timeouts per transaction instead.
    let strict = PgBouncer::start();
    let named = pooled(strict.url(db.name()), true, Duration::from_secs(5));
    assert!(named.timeouts_in_effect().await.expect("answers"));
    assert_eq!(named.describe_session(), (true, true));

    // Directly, they travel in the startup packet.
    assert!(db.store().timeouts_in_effect().await.expect("answers"));
    assert_eq!(db.store().describe_session(), (true, false));
}

#[tokio::test]
#[ignore = "needs pgbouncer: `just test`, or scripts/pgbouncer bin then --run-ignored all"]
async fn migrations_use_the_direct_connection_while_requests_use_the_pooler() {
    let db = TestDb::empty().await;
    let bouncer = PgBouncer::start();
    let stores: Vec<Store> = (0..3)
        .map(|_| {
            let mut config = StoreConfig::new(bouncer.url(db.name()));
            config.pool_size = 2;
            config.prepared_statements = false;
            config.migration_url = Some(db.url().to_owned());
            Store::connect(&config).expect("valid URLs")
        })
        .collect();
    assert!(
        !stores[0].ready().await.expect("answers"),
        "not migrated yet"
    );
    // Three instances starting together: the lock on the direct connection
    // lets one apply everything; the others find nothing left to do.
    let runs = futures_util::future::join_all(stores.iter().map(Store::migrate)).await;
    let applied: Vec<usize> = runs
        .into_iter()
        .map(|run| run.expect("migrations apply"))
        .collect();
    assert_eq!(applied.iter().filter(|&&n| n > 0).count(), 1, "{applied:?}");
    for store in &stores {
        assert!(store.ready().await.expect("answers"));
    }
    // The migrated schema serves requests through the pooler.
    let id = user(&stores[1], 1).await;
    assert!(stores[2].users().find_by_id(id).await.is_ok());
    for store in stores {
        store.close();
    }
    drop(bouncer);
}

#[tokio::test]
#[ignore = "needs pgbouncer: `just test`, or scripts/pgbouncer bin then --run-ignored all"]
async fn the_poolers_own_errors_are_unavailable() {
    // PgBouncer up, PostgreSQL behind it gone: its errors (08P01, "server
    // login has been failing", …) mean "not now", like a lost connection.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let bouncer = PgBouncer::in_front_of("127.0.0.1", closed, &[]);
    let timeout = Duration::from_secs(2);
    let store = pooled(bouncer.url("postgres"), false, timeout);
    let started = Instant::now();
    let error = store
        .users()
        .find_by_id(UserId::from(uuid::Uuid::nil()))
        .await
        .expect_err("no server");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(started.elapsed() < timeout * 3, "{:?}", started.elapsed());
    assert!(store.ready().await.is_err() || !store.ready().await.unwrap_or(true));

    // PgBouncer's own refusal, with its SQLSTATE ("no more connections
    // allowed": with max_client_conn = 1 it has no room for a client).
    let db = TestDb::new().await;
    let full = PgBouncer::start_with(&[("max_client_conn", "1")]);
    let store = pooled(full.url(db.name()), false, timeout);
    // Four statements at once want four client connections.
    let outcomes = futures_util::future::join_all((0..4).map(|_| async {
        store
            .users()
            .find_by_id(UserId::from(uuid::Uuid::nil()))
            .await
    }))
    .await;
    let refusals: Vec<String> = outcomes
        .into_iter()
        .filter_map(|outcome| match outcome {
            Err(StoreError::NotFound) => None,
            Err(error @ StoreError::Unavailable(_)) => Some(format!("{error:?}")),
            other => panic!("a refusal must be Unavailable: {other:?}"),
        })
        .collect();
    assert!(
        refusals.iter().any(|cause| cause.contains("E08P01")),
        "PgBouncer refused a client with its own code: {refusals:?}"
    );
    drop(full);
}
