//! register, login, refresh, logout.

use actix_web::http::StatusCode;
use projects_testkit::{TEST_PASSWORD, TestApp, unique_email};
use serde_json::json;

#[actix_web::test]
async fn register_creates_a_user_with_tokens() {
    let app = TestApp::new().await;
    let email = unique_email("Ada");
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": format!("  {}  ", email.to_uppercase()), "name": "  Ada Lovelace ", "password": TEST_PASSWORD }),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let user = &response.body["user"];
    assert_eq!(user["email"], email.to_lowercase());
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["role"], "user");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user.as_object().map(|o| o.len()), Some(7), "{user}");
    assert!(
        user["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let tokens = &response.body["tokens"];
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    assert_eq!(tokens["refresh_token"].as_str().map(str::len), Some(43));
    assert_eq!(
        response.header("location"),
        Some(format!("/api/v1/users/{}", user["id"].as_str().unwrap_or_default()).as_str())
    );
    assert!(!response.text.contains(TEST_PASSWORD));
    assert!(!response.text.contains("argon2"));

    // The token works, and the database holds an argon2id hash only.
    let me = app
        .get("/api/v1/users/me", tokens["access_token"].as_str())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, *user);
    let row = app
        .db
        .client()
        .await
        .query_one("SELECT password_hash FROM users", &[])
        .await
        .expect("one user");
    let hash: String = row.get(0);
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}

#[actix_web::test]
async fn register_refuses_a_taken_email_in_any_letter_case() {
    let app = TestApp::new().await;
    let email = unique_email("taken");
    app.register(&email, "First", TEST_PASSWORD).await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": email.to_uppercase(), "name": "Second", "password": TEST_PASSWORD }),
        )
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT, "{}", response.text);
    assert_eq!(response.body["status"], 409);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
}

#[actix_web::test]
async fn concurrent_registrations_of_one_email_give_one_201_and_one_409() {
    let app = TestApp::new().await;
    let email = unique_email("race");
    let body = json!({ "email": email, "name": "Racer", "password": TEST_PASSWORD });
    let (first, second) = tokio::join!(
        app.post_json("/api/v1/auth/register", None, &body),
        app.post_json("/api/v1/auth/register", None, &body),
    );
    let mut statuses = [first.status.as_u16(), second.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
}

#[actix_web::test]
async fn login_returns_the_user_and_new_tokens() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let response = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": user.email.to_uppercase(), "password": TEST_PASSWORD }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["user"], user.json);
    assert_eq!(response.body["tokens"]["token_type"], "Bearer");
    assert_ne!(
        response.body["tokens"]["refresh_token"],
        user.refresh_token.as_str()
    );
}

#[actix_web::test]
async fn login_failures_look_the_same_for_unknown_emails_and_wrong_passwords() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let wrong_password = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": user.email, "password": "correct horse battery stapler" }),
        )
        .await;
    let unknown_email = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": unique_email("nobody"), "password": "correct horse battery stapler" }),
        )
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password.body_without_request_id(),
        unknown_email.body_without_request_id()
    );
    assert_eq!(
        wrong_password.header("content-type"),
        unknown_email.header("content-type")
    );
    // A case-changed password is a different password.
    let case_changed = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": user.email, "password": TEST_PASSWORD.to_uppercase() }),
        )
        .await;
    assert_eq!(case_changed.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn login_upgrades_a_hash_with_older_parameters() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let old = projects_auth::PasswordHasher::with_params(
        1,
        argon2::Params::new(8 * 1024, 1, 1, None).expect("params"),
    );
    let old_hash = old.hash(TEST_PASSWORD).await.expect("hashes");
    app.state
        .store
        .users()
        .rehash_password(user.id, &old_hash)
        .await
        .expect("store the old hash");
    app.login(&user.email, TEST_PASSWORD).await;
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT password_hash FROM users WHERE id = $1",
            &[user.id.as_uuid()],
        )
        .await
        .expect("the user");
    let hash: String = row.get(0);
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.login(&user.email, TEST_PASSWORD).await;
}

#[actix_web::test]
async fn login_validates_its_body() {
    let app = TestApp::new().await;
    let response = app.post_json("/api/v1/auth/login", None, &json!({})).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.body["errors"].as_array().map(Vec::len), Some(2));
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let first = app.refresh(&user.refresh_token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let tokens = &first.body["tokens"];
    assert_eq!(first.body.as_object().map(|o| o.len()), Some(1));
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let rotated = tokens["refresh_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_ne!(rotated, user.refresh_token);
    let me = app
        .get("/api/v1/users/me", tokens["access_token"].as_str())
        .await;
    assert_eq!(me.status, StatusCode::OK);

    // Presented again within the grace (a second tab, a retry), the old
    // token gets the same new refresh token, and nothing ends.
    let duplicate = app.refresh(&user.refresh_token).await;
    assert_eq!(duplicate.status, StatusCode::OK, "{}", duplicate.text);
    assert_eq!(duplicate.body["tokens"]["refresh_token"], rotated.as_str());

    // After the grace it is reuse: the session ends, the rotated token and
    // the session's access tokens die with it.
    app.db
        .client()
        .await
        .execute(
            "UPDATE refresh_tokens SET used_at = used_at - interval '11 seconds' \
             WHERE used_at IS NOT NULL",
            &[],
        )
        .await
        .expect("age the rotation");
    let reused = app.refresh(&user.refresh_token).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    let after = app.refresh(&rotated).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let me = app
        .get("/api/v1/users/me", tokens["access_token"].as_str())
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/v1/users/me", Some(&user.access_token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Another login's session is untouched.
    let (_, other) = app.login(&user.email, TEST_PASSWORD).await;
    let other = app
        .refresh(other["refresh_token"].as_str().expect("a token"))
        .await;
    assert_eq!(other.status, StatusCode::OK);
}

/// Two tabs, or a client retrying: 20 simultaneous refreshes with one
/// token end nothing, and every success carries the same new refresh token.
#[actix_web::test]
async fn twenty_simultaneous_refreshes_of_one_token_share_one_successor() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let responses =
        futures_util::future::join_all((0..20).map(|_| app.refresh(&user.refresh_token))).await;
    let mut successors = std::collections::BTreeSet::new();
    for response in &responses {
        // A 401 is allowed (it ends nothing); anything else is not.
        match response.status {
            StatusCode::OK => {
                successors.insert(
                    response.body["tokens"]["refresh_token"]
                        .as_str()
                        .expect("a token")
                        .to_owned(),
                );
            }
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    assert_eq!(
        successors.len(),
        1,
        "every success got the same refresh token"
    );
    let successor = successors.pop_first().expect("one");
    // The session lives on: the successor rotates, the access token works.
    assert_eq!(
        app.get("/api/v1/users/me", Some(&user.access_token))
            .await
            .status,
        StatusCode::OK
    );
    let next = app.refresh(&successor).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    let live: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM sessions WHERE ended_at IS NULL", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(live, 1);
}

#[actix_web::test]
async fn refresh_refuses_unknown_expired_and_missing_tokens() {
    let app = TestApp::new().await;
    let unknown = app.refresh("not-a-token").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let user = app.user().await;
    app.db
        .client()
        .await
        .execute(
            "UPDATE sessions SET idle_expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .expect("expire");
    let expired = app.refresh(&user.refresh_token).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        expired.body_without_request_id(),
        unknown.body_without_request_id()
    );
    let missing = app
        .post_json("/api/v1/auth/refresh", None, &json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let rows = app
        .db
        .client()
        .await
        .query("SELECT token_hash FROM refresh_tokens", &[])
        .await
        .expect("tokens");
    assert_eq!(rows.len(), 1);
    let stored: Vec<u8> = rows[0].get(0);
    let expected = projects_auth::RefreshToken::from_client(user.refresh_token.clone()).hash();
    assert_eq!(stored, expected.0);
}

#[actix_web::test]
async fn logout_revokes_the_family_and_is_idempotent() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let rotated = app.refresh(&user.refresh_token).await;
    let rotated = rotated.body["tokens"]["refresh_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let body = json!({ "refresh_token": user.refresh_token });
    let response = app.post_json("/api/v1/auth/logout", None, &body).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.text.is_empty());
    assert_eq!(app.refresh(&rotated).await.status, StatusCode::UNAUTHORIZED);
    let again = app.post_json("/api/v1/auth/logout", None, &body).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let unknown = app
        .post_json(
            "/api/v1/auth/logout",
            None,
            &json!({ "refresh_token": "never-issued" }),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NO_CONTENT);
    let missing = app.post_json("/api/v1/auth/logout", None, &json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
}
