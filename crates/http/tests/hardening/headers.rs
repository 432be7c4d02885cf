//! Security headers and CORS.

use actix_web::http::StatusCode;
use actix_web::test;
use projects_http::HttpConfig;

use super::support::{app, call, header};

const SECURITY: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("cross-origin-resource-policy", "same-origin"),
];

#[actix_web::test]
async fn every_response_has_the_security_headers_and_no_server_banner() {
    let app = app(HttpConfig::default()).await;
    for (uri, status) in [
        ("/health/live", StatusCode::OK),
        ("/nope", StatusCode::NOT_FOUND),
        ("/test/panic", StatusCode::INTERNAL_SERVER_ERROR),
        ("/api/v1/nope", StatusCode::NOT_FOUND),
    ] {
        let (actual, headers, _) = call(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(actual, status, "{uri}");
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        for (name, value) in SECURITY {
            assert_eq!(header(name).as_deref(), Some(value), "{uri} {name}");
        }
        assert!(header("server").is_none());
        assert!(header("strict-transport-security").is_none());
        assert!(header("x-request-id").is_some());
        let no_store = header("cache-control").as_deref() == Some("no-store");
        // Errors are never cached; only the public routes' answers may be.
        assert_eq!(no_store, uri != "/health/live", "{uri}");
    }
}

#[actix_web::test]
async fn hsts_is_sent_when_configured() {
    let app = app(HttpConfig {
        hsts_seconds: 31_536_000,
        ..HttpConfig::default()
    })
    .await;
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await;
    assert_eq!(
        header(&response, "strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
}

fn preflight(origin: &str) -> actix_http::Request {
    test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/projects")
        .insert_header(("origin", origin))
        .insert_header(("access-control-request-method", "POST"))
        .insert_header((
            "access-control-request-headers",
            "authorization, content-type",
        ))
        .to_request()
}

#[actix_web::test]
async fn cors_answers_only_the_configured_origins() {
    let app = app(HttpConfig {
        cors_origins: vec!["https://app.example".into()],
        ..HttpConfig::default()
    })
    .await;

    let response = test::call_service(&app, preflight("https://app.example")).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert!(header(&response, "access-control-allow-methods").is_some_and(|m| m.contains("POST")));

    let response = test::call_service(&app, preflight("https://evil.example")).await;
    assert!(!response.status().is_success());
    assert!(header(&response, "access-control-allow-origin").is_none());
    assert!(header(&response, "x-request-id").is_some());

    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/health/live")
            .insert_header(("origin", "https://app.example"))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    let exposed = header(&response, "access-control-expose-headers").unwrap_or_default();
    assert!(
        exposed.to_ascii_lowercase().contains("x-request-id"),
        "{exposed}"
    );

    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/health/live")
            .insert_header(("origin", "https://evil.example"))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn without_configured_origins_there_is_no_cors() {
    let app = app(HttpConfig::default()).await;
    let response = test::call_service(&app, preflight("https://app.example")).await;
    assert!(!response.status().is_success());
    assert!(header(&response, "access-control-allow-origin").is_none());
}
