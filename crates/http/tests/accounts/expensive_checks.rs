//! The expensive checks of passwords (the strength estimate, hashing) run
//! on a bounded pool with a bounded queue: a full queue is a 503 with
//! `Retry-After`, an estimate past its deadline a 503 that stores nothing,
//! and a weak password is still reported with every other violation.

use actix_web::http::StatusCode;
use futures_util::future::join_all;
use projects_auth::PasswordHasher;
use projects_http::AppState;
use projects_testkit::ForTests as _;
use projects_testkit::{TEST_PASSWORD, TestApp, TestDb, unique_email};
use serde_json::json;

/// 128 characters, every one a look-alike of zxcvbn's l33t table: the most
/// expensive input of its matcher (about 0.9 s before the cap).
pub fn hostile_password() -> String {
    "4@8({[<369!|70$5+%2".chars().cycle().take(128).collect()
}

async fn app_with(hasher: PasswordHasher) -> TestApp {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.store().clone());
    state.passwords = hasher;
    TestApp::with_state(db, state).await
}

#[actix_web::test]
async fn a_weak_password_is_reported_together_with_the_other_violations() {
    let app = TestApp::new().await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": "not an address", "name": "", "password": "password1", "role": "admin" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let codes: Vec<(&str, &str)> = response.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or_default(),
                e["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for expected in [
        ("email", "email"),
        ("name", "length"),
        ("password", "weak_password"),
        ("role", "unknown_field"),
    ] {
        assert!(codes.contains(&expected), "{expected:?} missing: {codes:?}");
    }
    assert!(!response.text.contains("password1"));
}

#[actix_web::test]
async fn a_full_hashing_queue_is_503_with_retry_after_never_a_500_or_a_wait() {
    // One slot and no queue: while one login hashes, the others are refused
    // (some may meet the per-account throttle of password checks first: 429).
    let app = app_with(PasswordHasher::new(1).with_queue_limit(0)).await;
    let user = app.user().await;
    let body = json!({ "email": user.email, "password": TEST_PASSWORD });
    let logins = (0..6).map(|_| app.post_json("/api/v1/auth/login", None, &body));
    let responses = join_all(logins).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429, 503].contains(s)),
        "{statuses:?}"
    );
    for busy in responses.iter().filter(|r| r.status == 503) {
        assert!(busy.header("retry-after").is_some());
        assert_eq!(
            busy.header("content-type"),
            Some("application/problem+json")
        );
        assert!(
            busy.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("busy")),
            "{}",
            busy.text
        );
    }
}

#[actix_web::test]
async fn an_estimate_past_its_deadline_is_503_and_stores_nothing() {
    let app =
        app_with(PasswordHasher::default().with_strength_deadline(std::time::Duration::ZERO)).await;
    let email = unique_email("deadline");
    for password in [hostile_password(), "password1".to_owned()] {
        let response = app
            .post_json(
                "/api/v1/auth/register",
                None,
                &json!({ "email": email, "name": "Ada", "password": password }),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            response.text
        );
        assert!(response.header("retry-after").is_some());
    }
    // Nothing was registered: the password was never accepted unchecked.
    let login = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": email, "password": hostile_password() }),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_hostile_password_is_estimated_and_judged_like_any_other() {
    let app = TestApp::new().await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": unique_email("hostile"), "name": "Ada", "password": hostile_password() }),
        )
        .await;
    // A decision either way, in bounded time; never a 500.
    assert!(
        [201, 422].contains(&response.status.as_u16()),
        "{}",
        response.text
    );
}
