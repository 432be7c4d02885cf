//! `/health/*` and the app's fallback, driven in-process.

use actix_web::http::StatusCode;
use actix_web::test;
use projects_http::AppState;
use projects_store::{Store, StoreConfig};
use projects_testkit::ForTests as _;
use projects_testkit::TestDb;

#[actix_web::test]
async fn live_is_ok_and_ready_is_ok_on_a_migrated_database() {
    let db = TestDb::new().await;
    let app = test::init_service(projects_http::app(AppState::for_tests(db.store().clone()))).await;

    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/live").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body, serde_json::json!({ "status": "ok" }));

    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/ready").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn ready_is_503_when_the_database_is_unreachable() {
    // Port 1 on loopback: nothing listens, the connect fails at once.
    let mut config = StoreConfig::new("postgres://postgres@127.0.0.1:1/none");
    config.timeout = std::time::Duration::from_millis(500);
    let store = Store::connect(&config).expect("a valid URL");
    let app = test::init_service(projects_http::app(AppState::for_tests(store))).await;

    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/ready").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
}

#[actix_web::test]
async fn ready_is_503_until_migrations_are_applied() {
    let db = TestDb::new().await;
    db.client()
        .await
        .batch_execute("DROP TABLE refinery_schema_history")
        .await
        .expect("forget the migrations");
    let app = test::init_service(projects_http::app(AppState::for_tests(db.store().clone()))).await;
    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/ready").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[actix_web::test]
async fn an_unknown_route_is_a_problem_404() {
    let db = TestDb::new().await;
    let app = test::init_service(projects_http::app(AppState::for_tests(db.store().clone()))).await;
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not found");
}
