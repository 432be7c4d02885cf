//! Failed password checks are throttled per account, whatever the client
//! address, with a growing delay and never for good; `PATCH /users/me`
//! with a password counts against the auth limit.

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use projects_testkit::{TestApp, TestResponse, TestUser};
use serde_json::json;

use super::support::{app_with, limits, random_ip, redis_url, send};
use projects_testkit::ForTests as _;

/// The peer every request comes through: a trusted proxy.
const PROXY: [u8; 4] = [127, 0, 0, 1];

async fn login_via_proxy(app: &TestApp, client: &str, email: &str, password: &str) -> TestResponse {
    send(
        app,
        Method::POST,
        "/api/v1/auth/login",
        PROXY.into(),
        &[("x-forwarded-for", client)],
        Some(&json!({ "email": email, "password": password })),
    )
    .await
}

fn retry_after(response: &TestResponse) -> u64 {
    response
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("a 429 with Retry-After: {response:?}"))
}

#[actix_web::test]
async fn spraying_one_account_from_200_addresses_gets_a_handful_of_checks() {
    // Each address is well within its own auth limit.
    let app = app_with(limits(1000, 20, "127.0.0.1/32", None)).await;
    let owner = app.user().await;
    let mut checked = 0;
    let mut throttled = Vec::new();
    for n in 0..200u32 {
        let client = format!("198.51.{}.{}", n / 250, n % 250 + 1);
        let response = login_via_proxy(&app, &client, &owner.email, "a wrong guess").await;
        match response.status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled.push(retry_after(&response)),
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    // Three at once, then one per growing delay (the first is 5 s).
    assert!(
        (3..=4).contains(&checked),
        "{checked} password checks in a burst of 200"
    );
    assert_eq!(checked + throttled.len(), 200);
    assert!(throttled.iter().all(|wait| (1..=10).contains(wait)));

    // The owner too must wait, then gets in.
    let wait = {
        let response = login_via_proxy(&app, "203.0.113.1", &owner.email, &owner.password).await;
        assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
        retry_after(&response)
    };
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let response = login_via_proxy(&app, "203.0.113.1", &owner.email, &owner.password).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
}

#[actix_web::test]
async fn the_delay_grows_with_each_check_and_a_success_clears_it() {
    let app = app_with(limits(1000, 1000, "127.0.0.1/32", None)).await;
    let owner = app.user().await;
    let mut waits = Vec::new();
    for _ in 0..2 {
        // Wrong guesses until refused (within a few); then wait as told.
        for attempt in 0.. {
            assert!(attempt < 5, "never refused: {waits:?}");
            let response = login_via_proxy(&app, "203.0.113.2", &owner.email, "wrong").await;
            if response.status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&response);
                waits.push(wait);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                break;
            }
            assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        }
    }
    assert!(waits[1] > waits[0], "{waits:?}");
    // The right password clears the record: the next mistakes are free again.
    let response = login_via_proxy(&app, "203.0.113.2", &owner.email, &owner.password).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    for _ in 0..2 {
        let response = login_via_proxy(&app, "203.0.113.2", &owner.email, "wrong").await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
}

#[actix_web::test]
async fn unknown_and_known_accounts_are_throttled_alike() {
    let app = app_with(limits(1000, 1000, "127.0.0.1/32", None)).await;
    let owner = app.user().await;
    let unknown = projects_testkit::unique_email("nobody");
    for email in [&owner.email, &unknown] {
        let statuses: Vec<u16> = {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                let response = login_via_proxy(&app, "203.0.113.3", email, "wrong").await;
                statuses.push(response.status.as_u16());
            }
            statuses
        };
        assert_eq!(statuses, [401, 401, 401, 429, 429], "{email}");
    }
}

fn password_change(current: &str) -> serde_json::Value {
    json!({ "password": "an entirely new horse battery", "current_password": current })
}

async fn patch_me(
    app: &TestApp,
    user: &TestUser,
    client: &str,
    body: &serde_json::Value,
) -> TestResponse {
    send(
        app,
        Method::PATCH,
        "/api/v1/users/me",
        PROXY.into(),
        &[
            ("x-forwarded-for", client),
            ("authorization", &user.bearer()),
        ],
        Some(body),
    )
    .await
}

#[actix_web::test]
async fn a_stolen_token_cannot_guess_the_current_password_quickly() {
    let app = app_with(limits(1000, 1000, "127.0.0.1/32", None)).await;
    let victim = app.user().await;
    // Twenty guesses at once from twenty addresses.
    let guesses = (0..20).map(|n| {
        let body = password_change(&format!("guess number {n}"));
        let client = format!("198.51.100.{}", n + 1);
        let (app, victim) = (&app, &victim);
        async move { patch_me(app, victim, &client, &body).await }
    });
    let responses = futures_util::future::join_all(guesses).await;
    let checked = responses
        .iter()
        .filter(|response| response.status == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    let throttled = responses
        .iter()
        .filter(|response| response.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked, 3, "password checks (and hashes queued) at once");
    assert_eq!(throttled, 17);
    // Login shares the account's throttle.
    let response = login_via_proxy(&app, "203.0.113.4", &victim.email, &victim.password).await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn patching_a_password_counts_against_the_auth_limit_and_a_name_does_not() {
    let app = app_with(limits(1000, 2, "", None)).await;
    let user = app.user().await;
    let client = random_ip();
    let name_only = json!({ "name": "Renamed" });
    let wrong_password = password_change("not it");
    // Five renames are not counted; of three password checks, the third is
    // over the limit of two.
    let bodies = [&name_only; 5].into_iter().chain([&wrong_password; 3]);
    let mut statuses = Vec::new();
    for body in bodies {
        let response = send(
            &app,
            Method::PATCH,
            "/api/v1/users/me",
            client,
            &[("authorization", &user.bearer())],
            Some(body),
        )
        .await;
        statuses.push(response.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 422, 422, 429]);
}

#[actix_web::test]
#[ignore = "needs Redis: REDIS_URL=redis://127.0.0.1:6379 cargo test -- --include-ignored"]
async fn instances_sharing_redis_share_the_throttle() {
    let url = redis_url();
    let first = app_with(limits(1000, 1000, "127.0.0.1/32", Some(&url))).await;
    // The second instance serves the same database.
    let state = projects_http::AppState::for_tests_with(
        first.state.store.clone(),
        limits(1000, 1000, "127.0.0.1/32", Some(&url)),
    );
    let second = TestApp::with_state(projects_testkit::TestDb::new().await, state).await;
    let owner = first.user().await;
    for n in 0..3 {
        let instance = if n % 2 == 0 { &first } else { &second };
        let response = login_via_proxy(instance, "203.0.113.5", &owner.email, "wrong").await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    for instance in [&first, &second] {
        let response = login_via_proxy(instance, "203.0.113.6", &owner.email, "wrong").await;
        assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    }
}
