//! Limits and per-route headers are decided on the route a request reaches:
//! no spelling of a path reaches a handler without them.

use actix_web::http::{Method, StatusCode};
use projects_testkit::unique_email;
use serde_json::json;

use super::support::{app_with, limits, random_ip, send};

/// Spellings of `POST /api/v1/auth/login` that a router might take for it.
const LOGIN_SPELLINGS: [&str; 10] = [
    "/api/v1/auth/login",
    "/api/v1/%61uth/login",
    "/api/v1/auth/%6Cogin",
    "/api/v1/%61%75%74%68/login",
    "/%61pi/v1/auth/login",
    "/api/%76%31/auth/login",
    "/api/v1/auth/./login",
    "/api/v1/auth/../auth/login",
    "/api/v1//auth/login",
    "/api/v1/auth//login",
];

#[actix_web::test]
async fn every_spelling_of_an_auth_route_gets_the_auth_limit_or_no_handler() {
    let app = app_with(limits(1000, 3, "", None)).await;
    for uri in LOGIN_SPELLINGS {
        let body = json!({ "email": unique_email("spelling"), "password": "not the password" });
        let response = send(&app, Method::POST, uri, random_ip(), &[], Some(&body)).await;
        match response.status {
            // Reached the login handler: under the auth limit of 3.
            StatusCode::UNAUTHORIZED => {
                assert_eq!(
                    response.header("ratelimit-limit"),
                    Some("3"),
                    "{uri} reached login without the auth limit"
                );
                assert_eq!(response.header("cache-control"), Some("no-store"), "{uri}");
            }
            // Reached no handler at all.
            StatusCode::NOT_FOUND => {}
            other => panic!("{uri}: unexpected {other}: {}", response.text),
        }
    }
}

#[actix_web::test]
async fn brute_force_through_an_escaped_path_is_blocked() {
    let app = app_with(limits(1000, 3, "", None)).await;
    let client = random_ip();
    let mut statuses = Vec::new();
    for attempt in 0..6 {
        // A new address each time, so that only the client limit counts.
        let body = json!({ "email": unique_email("brute"), "password": "guess" });
        let uri = if attempt % 2 == 0 {
            "/api/v1/%61uth/login"
        } else {
            "/api/v1/auth/login"
        };
        let response = send(&app, Method::POST, uri, client, &[], Some(&body)).await;
        statuses.push(response.status.as_u16());
        if response.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.header("retry-after").is_some());
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
}

#[actix_web::test]
async fn every_auth_route_has_the_auth_limit() {
    // From the OpenAPI document, so that a route added later is covered.
    let app = app_with(limits(1000, 1, "", None)).await;
    let document = projects_http::openapi::openapi_json();
    let document: serde_json::Value = serde_json::from_str(&document).expect("JSON");
    let paths = document["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, item) in paths {
        if !path.starts_with("/api/v1/auth/") {
            continue;
        }
        for method in item.as_object().expect("an item").keys() {
            let method: Method = method.to_uppercase().parse().expect("a method");
            let uri = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            let escaped = uri.replacen("/auth/", "/%61uth/", 1);
            let client = random_ip();
            let body = json!({});
            let first = send(&app, method.clone(), &escaped, client, &[], Some(&body)).await;
            assert_eq!(
                first.header("ratelimit-limit"),
                Some("1"),
                "{method} {escaped}"
            );
            let second = send(&app, method.clone(), &uri, client, &[], Some(&body)).await;
            assert_eq!(
                second.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{method} {uri} after {escaped}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} auth operations documented");
}

#[actix_web::test]
async fn escaped_api_paths_keep_cache_control_no_store() {
    let app = app_with(limits(0, 0, "", None)).await;
    let user = app.user().await;
    let bearer = user.bearer();
    for uri in [
        "/api/v1/users/me",
        "/%61pi/v1/users/me",
        "/api/v1/users/%6De",
        "/api/%76%31/users/me",
    ] {
        let response = send(
            &app,
            Method::GET,
            uri,
            random_ip(),
            &[("authorization", &bearer)],
            None,
        )
        .await;
        assert_eq!(response.status, StatusCode::OK, "{uri}: {}", response.text);
        assert_eq!(response.body["id"], user.id.to_string(), "{uri}");
        assert_eq!(response.header("cache-control"), Some("no-store"), "{uri}");
    }
    // Errors are never cached either; the public routes may be.
    let unknown = send(&app, Method::GET, "/%61pi/nope", random_ip(), &[], None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.header("cache-control"), Some("no-store"));
    let live = send(&app, Method::GET, "/health/live", random_ip(), &[], None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.header("cache-control"), None);
}
