//! Every error is problem+json with the request id, whoever produced it.

use actix_web::http::StatusCode;
use actix_web::test;
use projects_http::HttpConfig;

use super::support::{app, call, header};

/// Sends a request and checks the problem contract; returns the body.
async fn problem(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    request: test::TestRequest,
    status: StatusCode,
) -> serde_json::Value {
    let request = request.to_request();
    let path = request.path().to_owned();
    let (actual, headers, text) = call(app, request).await;
    assert_eq!(actual, status, "{text}");
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();
    for leak in [
        "serde", "actix", "::", "panicked", "line ", "Error(", "SELECT", "Json",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked into {text}");
    }
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://"))
    );
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["request_id"], request_id.as_str());
    assert_eq!(body["instance"], path.as_str());
    body
}

#[actix_web::test]
async fn malformed_json_is_a_400_problem() {
    let app = app(HttpConfig::default()).await;
    let request = test::TestRequest::post()
        .uri("/test/json")
        .insert_header(("content-type", "application/json"))
        .set_payload("{\"name\": ");
    problem(&app, request, StatusCode::BAD_REQUEST).await;
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_a_problem() {
    // actix's own Json extractor answers 400 here (the project's extractor
    // answers 415); either way, a problem.
    let app = app(HttpConfig::default()).await;
    let request = test::TestRequest::post()
        .uri("/test/json")
        .insert_header(("content-type", "text/plain"))
        .set_payload("hello");
    problem(&app, request, StatusCode::BAD_REQUEST).await;
}

#[actix_web::test]
async fn plain_text_error_responses_become_problems() {
    let app = app(HttpConfig::default()).await;
    for code in [
        400u16, 401, 403, 404, 405, 409, 413, 415, 418, 429, 500, 502, 503,
    ] {
        let status = StatusCode::from_u16(code).expect("a status");
        let request = test::TestRequest::get().uri(&format!("/test/status/{code}"));
        let body = problem(&app, request, status).await;
        assert!(!body.to_string().contains("src/main.rs"));
    }
}

#[actix_web::test]
async fn a_body_over_the_limit_is_a_413_problem() {
    let config = HttpConfig {
        body_limit: 64,
        ..HttpConfig::default()
    };
    let app = app(config).await;
    let request = test::TestRequest::post()
        .uri("/test/json")
        .insert_header(("content-type", "application/json"))
        .set_payload(format!("{{\"a\":\"{}\"}}", "x".repeat(100)));
    let body = problem(&app, request, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("64")));
}

#[actix_web::test]
async fn a_bad_query_parameter_is_a_400_problem() {
    let app = app(HttpConfig::default()).await;
    let request = test::TestRequest::get().uri("/test/query?n=minus-one");
    problem(&app, request, StatusCode::BAD_REQUEST).await;
}

#[actix_web::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = app(HttpConfig::default()).await;
    let request = test::TestRequest::get().uri("/no/such/thing");
    let body = problem(&app, request, StatusCode::NOT_FOUND).await;
    assert_eq!(body["title"], "Not found");
}

#[actix_web::test]
async fn a_method_the_path_lacks_is_a_405_problem_with_allow() {
    let app = app(HttpConfig::default()).await;
    let response = test::call_service(
        &app,
        test::TestRequest::delete().uri("/health/live").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&response, "allow").as_deref(), Some("GET"));
    let request = test::TestRequest::post().uri("/health/ready");
    let body = problem(&app, request, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(body["title"], "Method not allowed");

    // actix's own 405, from a resource with method routes, gets the
    // problem body and an `Allow` header too.
    let request = test::TestRequest::put().uri("/health/live-too");
    problem(&app, request, StatusCode::METHOD_NOT_ALLOWED).await;
    let response = test::call_service(
        &app,
        test::TestRequest::put()
            .uri("/health/live-too")
            .to_request(),
    )
    .await;
    assert!(response.headers().contains_key("allow"));
}

#[actix_web::test]
async fn a_panicking_handler_is_a_500_problem_and_the_app_keeps_serving() {
    let app = app(HttpConfig::default()).await;
    for _ in 0..3 {
        let request = test::TestRequest::get().uri("/test/panic");
        let body = problem(&app, request, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert_eq!(body["detail"], "an unexpected error occurred");
    }
    let again = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/live").to_request(),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_database_being_down_is_a_503_problem_with_retry_after() {
    let app = app(HttpConfig::default()).await;
    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/ready").to_request(),
    )
    .await;
    assert!(header(&response, "retry-after").is_some());
    let request = test::TestRequest::get().uri("/health/ready");
    problem(&app, request, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[actix_web::test]
async fn a_sane_client_request_id_is_echoed_and_put_in_the_problem() {
    let app = app(HttpConfig::default()).await;
    let request = test::TestRequest::get()
        .uri("/nope")
        .insert_header(("x-request-id", "client-chosen.id_42"));
    let body = problem(&app, request, StatusCode::NOT_FOUND).await;
    assert_eq!(body["request_id"], "client-chosen.id_42");
}

#[actix_web::test]
async fn an_insane_request_id_is_replaced_by_a_uuid() {
    let app = app(HttpConfig::default()).await;
    for bad in ["has spaces in it".to_owned(), "x".repeat(129)] {
        let response = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/health/live")
                .insert_header(("x-request-id", bad.as_str()))
                .to_request(),
        )
        .await;
        let id = header(&response, "x-request-id").expect("a request id");
        assert_ne!(id, bad);
        uuid::Uuid::parse_str(&id).expect("a UUID");
    }
    // No id at all: a fresh one per request.
    let first = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/live").to_request(),
    )
    .await;
    let second = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/live").to_request(),
    )
    .await;
    let (first, second) = (
        header(&first, "x-request-id"),
        header(&second, "x-request-id"),
    );
    assert!(first.is_some() && second.is_some());
    assert_ne!(first, second);
}
