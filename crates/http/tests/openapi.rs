//! The OpenAPI document: committed, complete, served, and the docs page.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use actix_web::http::{Method, StatusCode};
use actix_web::test as http_test;
use projects_http::AppState;
use projects_http::docs::DOCS_CSP;
use projects_http::openapi::openapi_json;
use projects_testkit::ForTests as _;
use projects_testkit::TestDb;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn document() -> Value {
    serde_json::from_str(&openapi_json()).expect("the document is JSON")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every (method, path) the document has.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

#[test]
fn the_committed_openapi_json_is_the_generated_one() {
    let committed = std::fs::read_to_string(repo_root().join("openapi.json"))
        .unwrap_or_else(|error| panic!("cannot read openapi.json at the repository root: {error}"));
    let generated = openapi_json();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "openapi.json differs from the document the code generates (first at line {line}); \
             regenerate it with: cargo run -p projects-api -- openapi > openapi.json"
        );
    }
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_auth_and_problems() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let scheme = &doc["components"]["securitySchemes"]["bearer_auth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
        "errors",
    ] {
        assert!(problem.get(field).is_some(), "Problem lacks {field}");
    }
    // Every shared error response is problem+json with an example.
    let responses = doc["components"]["responses"]
        .as_object()
        .expect("responses");
    assert!(responses.len() >= 12, "{responses:?}");
    for (name, response) in responses {
        let content = &response["content"]["application/problem+json"];
        assert_eq!(
            content["schema"]["$ref"], "#/components/schemas/Problem",
            "{name}"
        );
        assert!(
            content["example"]["status"].as_u64().is_some(),
            "{name} has no example"
        );
    }
}

#[test]
fn every_operation_is_tagged_and_every_body_has_an_example() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][&method];
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path} has no tag"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            !responses.is_empty(),
            "{method} {path} documents no response"
        );
        let bodies = responses
            .values()
            .chain(operation.get("requestBody"))
            .filter_map(|r| r.get("content"))
            .flat_map(|c| c.as_object().into_iter().flat_map(|c| c.values()));
        for media in bodies {
            let schema = &media["schema"];
            let referenced = schema["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(|name| &schemas[name]);
            let has_example = media.get("example").is_some()
                || media.get("examples").is_some()
                || schema.get("example").is_some()
                || schema.get("examples").is_some()
                || referenced.is_some_and(|s| s.get("example").is_some() || s.get("examples").is_some())
                // Free-form bodies (the document itself, the docs page).
                || schema.as_object().is_some_and(|s| s.is_empty() || s.get("type") == Some(&Value::from("string")));
            assert!(
                has_example,
                "{method} {path}: a body without an example: {media}"
            );
        }
    }
}

/// The JSON extractor rejects unknown fields in every request body (422,
/// `unknown_field`), so every body schema must say so: a generated client or
/// a conformance run would otherwise send extra properties as valid.
#[test]
fn every_request_body_is_closed_to_unknown_fields() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for (method, path) in operations(&doc) {
        let Some(body) = doc["paths"][&path][&method].get("requestBody") else {
            continue;
        };
        let schema = &body["content"]["application/json"]["schema"];
        let name = schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("{method} {path}: the body is not a named schema"));
        assert_eq!(
            schemas[name]["additionalProperties"],
            Value::Bool(false),
            "{method} {path}: {name} must be closed (add it to CLOSED_INPUTS)"
        );
    }
}

/// The route macros in this crate's sources: (method, path as written).
fn routes_in_sources() -> Vec<(String, String, PathBuf)> {
    let mut routes = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable sources") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            for line in text.lines() {
                let line = line.trim();
                for method in METHODS {
                    if let Some(rest) = line.strip_prefix(&format!("#[{method}(\"")) {
                        let route = rest.split('"').next().unwrap_or_default();
                        routes.push((method.to_owned(), route.to_owned(), path.clone()));
                    }
                }
            }
        }
    }
    routes
}

#[test]
fn a_route_added_without_documentation_fails() {
    // Handlers are registered with actix's method macros (`#[get("/…")]`,
    // possibly inside a `web::scope`): each one must be an operation of the
    // document, whose path ends with the macro's path.
    let doc = document();
    let documented = operations(&doc);
    let routes = routes_in_sources();
    assert!(
        routes.iter().any(|(_, r, _)| r == "/health/live"),
        "the scan finds routes"
    );
    for (method, route, file) in routes {
        let normalised = route.trim_end_matches('/');
        assert!(
            documented
                .iter()
                .any(|(m, p)| *m == method && p.ends_with(normalised)),
            "{} {route} (in {}) is not in the OpenAPI document: annotate its handler with \
             #[utoipa::path] and register it in its module's `routes`",
            method.to_uppercase(),
            file.display()
        );
    }
}

#[actix_web::test]
async fn every_documented_operation_is_served() {
    let db = TestDb::new().await;
    let app =
        http_test::init_service(projects_http::app(AppState::for_tests(db.store().clone()))).await;
    for (method, path) in operations(&document()) {
        // Any path parameter: a well-formed id that does not exist.
        let uri = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let request = http_test::TestRequest::default()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method"))
            .uri(&uri)
            .to_request();
        let response = http_test::call_service(&app, request).await;
        assert_eq!(
            response.request().match_pattern().as_deref(),
            Some(path.as_str()),
            "{method} {path} is documented but no route serves it"
        );
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}

#[actix_web::test]
async fn the_document_and_the_docs_page_are_served() {
    let db = TestDb::new().await;
    let app =
        http_test::init_service(projects_http::app(AppState::for_tests(db.store().clone()))).await;
    let response = http_test::call_service(
        &app,
        http_test::TestRequest::get()
            .uri("/openapi.json")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = http_test::read_body_json(response).await;
    assert_eq!(served, document());

    for uri in [
        "/docs",
        "/docs/",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response =
            http_test::call_service(&app, http_test::TestRequest::get().uri(uri).to_request())
                .await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            response
                .headers()
                .get("content-security-policy")
                .map(|v| v.as_bytes()),
            Some(DOCS_CSP.as_bytes()),
            "{uri}"
        );
        let body = http_test::read_body(response).await;
        let text = String::from_utf8_lossy(&body);
        // Nothing is loaded from another host.
        for needle in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(
                !text.contains(needle) || uri.ends_with(".js"),
                "{uri} loads {needle}"
            );
        }
        if uri == "/docs/swagger-initializer.js" {
            assert!(text.contains("\"/openapi.json\""), "{text}");
            assert!(
                text.contains("validatorUrl"),
                "no external validator badge: {text}"
            );
        }
        if uri.starts_with("/docs") && !uri.ends_with(".js") {
            assert!(!text.contains("<script>"), "no inline script on {uri}");
            assert!(!text.contains(" style="), "no inline style on {uri}");
        }
    }
    let response = http_test::call_service(
        &app,
        http_test::TestRequest::get()
            .uri("/docs/nope.js")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_method_a_documented_path_lacks_is_405_with_allow() {
    let db = TestDb::new().await;
    let app =
        http_test::init_service(projects_http::app(AppState::for_tests(db.store().clone()))).await;
    for method in [Method::POST, Method::DELETE, Method::TRACE] {
        let request = http_test::TestRequest::default()
            .method(method.clone())
            .uri("/health/live")
            .to_request();
        let response = http_test::call_service(&app, request).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(
            response.headers().get("allow").map(|v| v.as_bytes()),
            Some(&b"GET"[..]),
            "{method}"
        );
        assert_eq!(
            response.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
    }
    let response = http_test::call_service(
        &app,
        http_test::TestRequest::post()
            .uri("/health/nope")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Every object under `value` that has a `default` keyword, by its path
/// (a property or a response named "default" is not one).
fn defaults(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let named = path.ends_with("/properties") || path.ends_with("/responses");
                if key == "default" && !named {
                    found.push(path.to_owned());
                }
                defaults(child, &format!("{path}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                defaults(child, &format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// What typed-client generators need from the document (openapi-typescript,
/// openapi-python-client). `scripts/typed-clients` and `scripts/lint-openapi`
/// check it with the real tools in CI; this keeps it in `cargo test`.
#[test]
fn the_document_reads_cleanly_for_typed_client_generators() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    // Public operations have no requirement (`[]`), not one empty
    // requirement (`[{}]`), which generators read as "authenticated".
    for (method, path) in [
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/openapi.json"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"],
            serde_json::json!([]),
            "{method} {path}"
        );
    }
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][&method];
        let security = &operation["security"];
        assert!(
            security.is_null() || *security == serde_json::json!([]),
            "{method} {path}: security {security}"
        );
        // A short summary, and the rest in the description.
        let summary = operation["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n') && summary.len() <= 60,
            "{method} {path}: summary {summary:?}"
        );
        assert!(
            operation["description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty()),
            "{method} {path} has no description"
        );
    }
    // A page's items are its item schema, not a copy of it.
    for (page, item) in [
        ("Page_Project", "Project"),
        ("Page_User", "User"),
        ("Page_SessionInfo", "SessionInfo"),
    ] {
        assert_eq!(
            schemas[page]["properties"]["data"]["items"],
            serde_json::json!({ "$ref": format!("#/components/schemas/{item}") }),
            "{page}"
        );
    }
    // openapi-typescript makes a property with a `default` required.
    let mut found = Vec::new();
    defaults(&doc, "", &mut found);
    assert!(found.is_empty(), "`default` keywords at {found:?}");
    // Headers that are always sent are required.
    for (method, path, status, header) in [
        ("post", "/api/v1/projects", "201", "ETag"),
        ("post", "/api/v1/projects", "201", "Location"),
        ("get", "/api/v1/projects/{id}", "200", "ETag"),
        ("patch", "/api/v1/projects/{id}", "200", "ETag"),
        ("post", "/api/v1/auth/register", "201", "Location"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["responses"][status]["headers"][header]["required"], true,
            "{method} {path} {status} {header}"
        );
    }
    assert_eq!(
        doc["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["type"],
        "object"
    );
    assert_eq!(
        schemas["Tokens"]["properties"]["token_type"]["enum"],
        serde_json::json!(["Bearer"])
    );
    assert!(doc["info"]["contact"]["url"].is_string());
    assert!(doc["info"]["license"]["url"].is_string());
}
