//! This OpenAPI document at `/openapi.json`, and the interactive docs at
//! `/docs`: Swagger UI from the binary's own embedded assets, so nothing
//! loads from another host, and `DOCS_CSP` allows only what the page needs.

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;

/// Where the OpenAPI document is served (the docs page reads it there).
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the interactive docs are served.
pub const DOCS_PATH: &str = "/docs";

/// The Content-Security-Policy of `/docs`: Swagger UI's own scripts and
/// styles from this origin (our index page has no inline script), the one
/// `<style>` element Swagger UI 5.17.14 injects (allowed by its hash, not by
/// `'unsafe-inline'`; the browser test fails if an upgrade changes it), the
/// `data:` SVG icons of its stylesheet, and requests to this origin only
/// ("Try it out"). Everything else, including framing, stays forbidden.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The docs page. Our own rather than Swagger UI's, so that it works at
/// `/docs` as well as `/docs/` (absolute asset paths) and loads nothing but
/// this origin's files.
const DOCS_INDEX: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>projects-api docs</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"#;

/// The OpenAPI document as served (compact JSON), handed to the routes as
/// app data by whoever assembles the application: the document is made
/// from the routes, so this module cannot make it.
#[derive(Debug, Clone)]
pub struct ServedDocument(pub web::Bytes);

/// This OpenAPI document.
///
/// Generated from the server's code; the interactive docs at `/docs` read it.
#[utoipa::path(
    tag = "docs",
    security(()),
    responses((
        status = 200,
        description = "This document (OpenAPI 3.1)",
        content_type = "application/json",
        body = Object,
        example = json!({
            "openapi": "3.1.0",
            "info": { "title": "projects-api", "version": env!("CARGO_PKG_VERSION") },
            "paths": {}
        }),
    ))
)]
#[get("/openapi.json")]
pub async fn openapi_document(document: web::Data<ServedDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}

/// The interactive API docs.
///
/// Swagger UI, served from the server itself: read the operations, authorize
/// with an access token and try requests out.
#[utoipa::path(
    tag = "docs",
    security(()),
    responses((
        status = 200,
        description = "The interactive API docs (an HTML page)",
        content_type = "text/html",
        body = String,
    ))
)]
#[get("/docs")]
pub async fn docs_page() -> HttpResponse {
    docs_index()
}

/// The docs page's response (at `/docs` and `/docs/`).
fn docs_index() -> HttpResponse {
    // Its Content-Security-Policy (`DOCS_CSP`) is set by the security
    // headers middleware, with every other response's headers.
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_INDEX)
}

/// Swagger UI's settings: the document at `OPENAPI_PATH`, no external validator badge
/// (it would load an image from another host), "Try it out" ready.
fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    Arc::new(
        utoipa_swagger_ui::Config::new([OPENAPI_PATH])
            .validator_url("none")
            .try_it_out_enabled(true)
            .persist_authorization(false),
    )
}

/// `/docs/{file}`: the Swagger UI files embedded in the binary.
async fn docs_file(
    file: web::Path<String>,
    config: web::Data<Arc<utoipa_swagger_ui::Config<'static>>>,
) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    if file.is_empty() || file == "index.html" {
        return Ok(docs_index());
    }
    match utoipa_swagger_ui::serve(&file, Arc::clone(&config)) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .body(file.bytes.into_owned())),
        Ok(None) => Err(ApiError::NotFound),
        Err(error) => Err(ApiError::Internal(error.to_string().into())),
    }
}

/// Registers `/openapi.json`, `/docs` and the docs' files (these are not
/// operations of the document: `route_table` knows them).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(openapi_document).service(docs_page).map(|cfg| {
        cfg.service(
            // Guarded, so that other methods reach the default service
            // (405 with `Allow`) like every other route's.
            web::resource("/docs/{file:.*}")
                .guard(actix_web::guard::Get())
                .app_data(web::Data::new(swagger_config()))
                .route(web::get().to(docs_file)),
        )
    });
}
