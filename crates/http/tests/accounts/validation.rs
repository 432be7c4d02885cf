//! The validated JSON extractor, through the register route: 413, 415,
//! 400, and 422 with every violation at once.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use projects_http::{AppState, HttpConfig};
use projects_testkit::ForTests as _;
use projects_testkit::{TEST_PASSWORD, TestApp, TestDb, unique_email};
use serde_json::{Value, json};

fn codes(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn every_violation_is_reported_at_once() {
    let app = TestApp::new().await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": "not an address", "name": "", "password": "short", "role": "admin", "id": "x" }),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    assert_eq!(response.body["title"], "Validation failed");
    let found = codes(&response.body);
    for expected in [
        ("role", "unknown_field"),
        ("id", "unknown_field"),
        ("email", "email"),
        ("name", "length"),
        ("password", "length"),
    ] {
        assert!(
            found.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?}: {found:?}"
        );
    }
    assert!(
        !response.text.contains("short"),
        "the password is not echoed"
    );
    let nothing = app
        .post_json("/api/v1/auth/register", None, &json!({}))
        .await;
    assert_eq!(codes(&nothing.body).len(), 3);
}

#[actix_web::test]
async fn weak_passwords_are_refused_with_feedback() {
    let app = TestApp::new().await;
    for weak in ["password", "12345678", "qwertyuiop", "aaaaaaaaaaaa"] {
        let response = app
            .post_json(
                "/api/v1/auth/register",
                None,
                &json!({ "email": unique_email("weak"), "name": "W", "password": weak }),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
        let error = &response.body["errors"][0];
        assert_eq!(error["code"], "weak_password", "{weak}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.len() > 25),
            "{error}"
        );
    }
}

#[actix_web::test]
async fn password_length_counts_characters() {
    let app = TestApp::new().await;
    // 128 characters of 2 bytes each: allowed; 129: refused.
    let ok: String = "жщюфыъэё".repeat(16);
    assert_eq!(ok.chars().count(), 128);
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": unique_email("long"), "name": "L", "password": ok }),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let too_long = format!("{ok}ж");
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": unique_email("long"), "name": "L", "password": too_long }),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        codes(&response.body),
        [("password".to_owned(), "length".to_owned())]
    );
}

#[actix_web::test]
async fn control_characters_are_a_422_never_a_500() {
    let app = TestApp::new().await;
    for body in [
        json!({ "email": unique_email("nul"), "name": "Ada\u{0}", "password": TEST_PASSWORD }),
        json!({ "email": unique_email("nul"), "name": "Ada", "password": "correct horse\u{0}battery staple" }),
        json!({ "email": "ada\u{7}@example.com", "name": "Ada", "password": TEST_PASSWORD }),
    ] {
        let response = app.post_json("/api/v1/auth/register", None, &body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            codes(&response.body)
                .iter()
                .any(|(_, code)| code == "control_character")
        );
    }
    let login = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": "a\u{0}@b.c", "password": "x\u{0}" }),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn malformed_json_wrong_media_types_and_large_bodies() {
    let app = TestApp::new().await;
    let malformed = app
        .send(
            TestRequest::post()
                .uri("/api/v1/auth/register")
                .insert_header(("Content-Type", "application/json"))
                .set_payload("{\"email\": ")
                .to_request(),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["status"], 400);

    let text = app
        .send(
            TestRequest::post()
                .uri("/api/v1/auth/register")
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("{}")
                .to_request(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let none = app
        .send(
            TestRequest::post()
                .uri("/api/v1/auth/login")
                .set_payload("{}")
                .to_request(),
        )
        .await;
    assert_eq!(none.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let charset = app
        .send(
            TestRequest::post()
                .uri("/api/v1/auth/logout")
                .insert_header(("Content-Type", "application/json; charset=utf-8"))
                .set_payload(r#"{"refresh_token":"x"}"#)
                .to_request(),
        )
        .await;
    assert_eq!(charset.status, StatusCode::NO_CONTENT);

    let array = app
        .post_json("/api/v1/auth/login", None, &json!([1, 2]))
        .await;
    assert_eq!(array.status, StatusCode::UNPROCESSABLE_ENTITY);

    let big =
        json!({ "email": "a@b.example", "name": "x".repeat(20_000), "password": TEST_PASSWORD });
    let response = app.post_json("/api/v1/auth/register", None, &big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[actix_web::test]
async fn the_body_limit_comes_from_the_configuration() {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.store().clone());
    state.config = HttpConfig {
        body_limit: 64,
        ..HttpConfig::default()
    };
    let app = TestApp::with_state(db, state).await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({ "email": unique_email("limit"), "name": "Limit", "password": TEST_PASSWORD }),
        )
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}
