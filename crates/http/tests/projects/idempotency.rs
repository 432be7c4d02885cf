//! `Idempotency-Key` on `POST /api/v1/projects`: a retry gets the first
//! response again, a different body is 422, a retry while the first runs is
//! 409, concurrent retries create one project, keys are per user, malformed
//! keys are 400, and keys expire after 24 hours.

use std::time::Duration;

use actix_web::http::Method;
use projects_testkit::{TestApp, TestResponse, TestUser};
use serde_json::{Value, json};

const PATH: &str = "/api/v1/projects";

async fn post(app: &TestApp, user: &TestUser, key: &str, body: &Value) -> TestResponse {
    app.request(
        Method::POST,
        PATH,
        Some(&user.access_token),
        Some(body),
        &[("Idempotency-Key", key)],
    )
    .await
}

async fn project_count(app: &TestApp) -> i64 {
    app.db
        .client()
        .await
        .query_one("SELECT count(*) FROM projects", &[])
        .await
        .expect("count")
        .get(0)
}

#[actix_web::test]
async fn a_retry_gets_the_first_response_again() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let first = post(&app, &ada, "retry-1", &json!({"name": "Apollo"})).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);

    // The same request, spelled differently (spacing, order, whitespace
    // that the name's trimming removes).
    let again = post(
        &app,
        &ada,
        "retry-1",
        &json!({"status": "active", "name": "  Apollo "}),
    )
    .await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text, "the same body");
    for name in ["location", "etag", "content-type"] {
        assert_eq!(again.header(name), first.header(name), "{name}");
    }
    assert_eq!(project_count(&app).await, 1);
    // Without a key, every POST creates.
    let plain = app
        .post_json(PATH, Some(&ada.access_token), &json!({"name": "Apollo"}))
        .await;
    assert_eq!(plain.status, 201);
    assert_eq!(project_count(&app).await, 2);
}

#[actix_web::test]
async fn the_same_key_with_a_different_body_is_422() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    assert_eq!(
        post(&app, &ada, "k", &json!({"name": "Apollo"}))
            .await
            .status,
        201
    );
    let other = post(&app, &ada, "k", &json!({"name": "Gemini"})).await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(other.body["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(other.body["errors"][0]["code"], "reused");
    assert_eq!(project_count(&app).await, 1);
}

#[actix_web::test]
async fn a_retry_while_the_first_runs_is_409_and_the_first_still_completes() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    // The first request's insert waits on this lock.
    let mut blocker = app.db.client().await;
    let lock = blocker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let body = json!({"name": "Apollo"});
    let first = post(&app, &ada, "slow", &body);
    let retry = async {
        let watcher = app.db.client().await;
        for _ in 0..400 {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .expect("count")
                .get(0);
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let retry = post(&app, &ada, "slow", &body).await;
        lock.commit().await.expect("unlock");
        retry
    };
    let (first, retry) = tokio::join!(first, retry);
    assert_eq!(retry.status, 409, "{}", retry.text);
    assert_eq!(first.status, 201, "{}", first.text);
    // Afterwards, the retry is a replay.
    let later = post(&app, &ada, "slow", &body).await;
    assert_eq!(later.header("idempotent-replayed"), Some("true"));
    assert_eq!(later.text, first.text);
    assert_eq!(project_count(&app).await, 1);
}

#[actix_web::test]
async fn fifty_concurrent_requests_with_one_key_create_one_project() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let body = json!({"name": "Apollo", "description": "one of fifty"});
    let responses =
        futures_util::future::join_all((0..50).map(|_| post(&app, &ada, "storm", &body))).await;
    let mut created = Vec::new();
    for response in &responses {
        match response.status.as_u16() {
            201 => created.push(response.body["id"].clone()),
            409 => {}
            other => panic!("{other}: {}", response.text),
        }
    }
    assert!(!created.is_empty());
    assert!(created.iter().all(|id| *id == created[0]), "{created:?}");
    assert_eq!(project_count(&app).await, 1);
}

#[actix_web::test]
async fn another_users_same_key_is_independent() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let bob = app.user().await;
    let body = json!({"name": "Apollo"});
    let mine = post(&app, &ada, "shared-key", &body).await;
    let theirs = post(&app, &bob, "shared-key", &body).await;
    assert_eq!((mine.status.as_u16(), theirs.status.as_u16()), (201, 201));
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(mine.body["id"], theirs.body["id"]);
    assert_eq!(theirs.body["owner_id"], json!(bob.id));
    // And a different body under Bob's key is not Ada's business either.
    let other = post(&app, &bob, "another", &json!({"name": "Gemini"})).await;
    assert_eq!(other.status, 201);
}

#[actix_web::test]
async fn malformed_keys_are_400_and_create_nothing() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let body = json!({"name": "Apollo"});
    let long = "k".repeat(256);
    for key in ["", "has space", "tab\there", "caf\u{e9}", long.as_str()] {
        let response = post(&app, &ada, key, &body).await;
        assert_eq!(response.status, 400, "{key:?}: {}", response.text);
        assert!(
            response.text.contains("Idempotency-Key"),
            "{}",
            response.text
        );
    }
    let two = app
        .request(
            Method::POST,
            PATH,
            Some(&ada.access_token),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(two.status, 201, "no key: a plain create");
    let edge = "~".repeat(255);
    assert_eq!(post(&app, &ada, &edge, &body).await.status, 201);
    assert_eq!(post(&app, &ada, "!", &body).await.status, 201);
    assert_eq!(project_count(&app).await, 3);
}

#[actix_web::test]
async fn keys_expire_after_24_hours_and_are_cleaned_up() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let body = json!({"name": "Apollo"});
    let first = post(&app, &ada, "old", &body).await;
    assert_eq!(first.status, 201);
    assert_eq!(post(&app, &ada, "fresh", &body).await.status, 201);
    let client = app.db.client().await;
    client
        .batch_execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 minute' \
             WHERE key = 'old'",
        )
        .await
        .expect("age the key");
    // Expired: the same key creates anew.
    let again = post(&app, &ada, "old", &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_ne!(again.body["id"], first.body["id"]);

    // The cleanup deletes expired rows only, in bounded batches.
    client
        .batch_execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'; \
             INSERT INTO idempotency_keys (user_id, key, request_hash, claim) \
             SELECT user_id, 'young', request_hash, gen_random_uuid() FROM idempotency_keys LIMIT 1",
        )
        .await
        .expect("age them all, add a young one");
    let deleted = app
        .state
        .store
        .idempotency_keys()
        .expire(1)
        .await
        .expect("cleanup");
    assert_eq!(deleted, 2, "batches of one until none is left");
    let left: Vec<String> = client
        .query("SELECT key FROM idempotency_keys", &[])
        .await
        .expect("keys")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, ["young"]);
}

#[actix_web::test]
async fn a_huge_key_is_400_and_stores_nothing() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let huge = "k".repeat(100 * 1024);
    let response = post(&app, &ada, &huge, &json!({"name": "Apollo"})).await;
    assert_eq!(response.status, 400, "{}", response.text);
    assert!(
        response.text.contains("Idempotency-Key"),
        "{}",
        response.text
    );
    assert_eq!(project_count(&app).await, 0);
    let keys: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM idempotency_keys", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(keys, 0);
}

#[actix_web::test]
async fn any_difference_in_the_body_is_422() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let first = json!({"name": "Apollo", "description": "Moon", "status": "active"});
    assert_eq!(post(&app, &ada, "k", &first).await.status, 201);
    for other in [
        json!({"name": "Apollo", "description": "Mars", "status": "active"}),
        json!({"name": "Apollo", "description": null, "status": "active"}),
        json!({"name": "Apollo", "description": "Moon", "status": "archived"}),
        // The fields run together must not make the same fingerprint.
        json!({"name": "ApolloM", "description": "oon", "status": "active"}),
    ] {
        let response = post(&app, &ada, "k", &other).await;
        assert_eq!(response.status, 422, "{other}: {}", response.text);
    }
    assert_eq!(project_count(&app).await, 1);
}

#[actix_web::test]
async fn a_replay_comes_from_another_instance_and_never_to_another_user() {
    let app = TestApp::new().await;
    let other_instance = app.another_instance().await;
    let ada = app.user().await;
    let mallory = app.user().await;
    let body = json!({"name": "Apollo"});
    let first = post(&app, &ada, "cross", &body).await;
    assert_eq!(first.status, 201);
    let again = post(&other_instance, &ada, "cross", &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text);
    // Mallory sends Ada's key with Ada's body: her own create, never Ada's
    // stored response.
    let theirs = post(&other_instance, &mallory, "cross", &body).await;
    assert_eq!(theirs.status, 201);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_eq!(theirs.body["owner_id"], json!(mallory.id));
    assert_ne!(theirs.body["id"], first.body["id"]);
}

#[actix_web::test]
async fn a_failed_first_request_is_not_replayed_and_its_retry_creates() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let client = app.db.client().await;
    client
        .batch_execute("ALTER TABLE projects ADD CONSTRAINT doomed CHECK (name <> 'Doomed')")
        .await
        .expect("make the create fail");
    let body = json!({"name": "Doomed"});
    let failed = post(&app, &ada, "retry-after-failure", &body).await;
    assert!(failed.status.as_u16() >= 400, "{}", failed.text);
    assert_eq!(failed.header("idempotent-replayed"), None);
    assert_eq!(project_count(&app).await, 0);
    client
        .batch_execute("ALTER TABLE projects DROP CONSTRAINT doomed")
        .await
        .expect("let it succeed");
    let retry = post(&app, &ada, "retry-after-failure", &body).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), None);
    assert_eq!(project_count(&app).await, 1);
}

#[actix_web::test]
async fn a_request_that_lost_its_claim_can_neither_complete_nor_release_it() {
    use projects_store::{Claim, IdempotencyKey, StoredResponse};

    let app = TestApp::new().await;
    let ada = app.user().await;
    let keys = app.state.store.idempotency_keys();
    let hash = [7u8; 32];
    let slow = IdempotencyKey::new(ada.id, "lease", &hash);
    assert!(matches!(
        keys.claim(slow).await.expect("claim"),
        Claim::Owned
    ));
    // The slow request outlives its lease: a retry takes the key over.
    app.db
        .client()
        .await
        .batch_execute("UPDATE idempotency_keys SET created_at = now() - interval '3 minutes'")
        .await
        .expect("age the claim");
    let retry = IdempotencyKey::new(ada.id, "lease", &hash);
    assert!(matches!(
        keys.claim(retry).await.expect("take over"),
        Claim::Owned
    ));

    let body = serde_json::from_value(json!({"name": "Apollo"})).expect("a new project");
    let render = |_: &projects_domain::Project| StoredResponse {
        status: 201,
        headers: Vec::new(),
        body: b"{}".to_vec(),
    };
    let late = app
        .state
        .store
        .projects()
        .create_idempotent(slow, &body, render)
        .await;
    assert!(late.is_err(), "the old claim completes nothing");
    keys.release(slow).await.expect("release");
    // The retry's claim is still there: a third request waits (409).
    let third = IdempotencyKey::new(ada.id, "lease", &hash);
    assert!(matches!(
        keys.claim(third).await.expect("claim"),
        Claim::InFlight
    ));
    app.state
        .store
        .projects()
        .create_idempotent(retry, &body, render)
        .await
        .expect("the retry completes");
    assert!(matches!(
        keys.claim(third).await.expect("claim"),
        Claim::Replay(_)
    ));
    assert_eq!(project_count(&app).await, 1);
}
