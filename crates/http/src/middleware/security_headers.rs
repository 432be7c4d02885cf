//! The security headers of the contract, on every response (errors too).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::AppState;

const CSP_API: &str = "default-src 'none'; frame-ancestors 'none'";

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let hsts_seconds = hsts_seconds(req.app_data::<web::Data<AppState>>());
    let mut response = next.call(req).await?;
    let path = response.request().path().to_owned();
    apply(response.headers_mut(), &path, hsts_seconds);
    Ok(response)
}

pub(crate) fn hsts_seconds(state: Option<&web::Data<AppState>>) -> u64 {
    state.map_or(0, |state| state.config.hsts_seconds)
}

/// Sets the headers for a response to `path`.
pub(crate) fn apply(headers: &mut HeaderMap, path: &str, hsts_seconds: u64) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        if path == "/docs" || path.starts_with("/docs/") {
            // The interactive docs load their own scripts, styles and images.
            crate::openapi::DOCS_CSP
        } else {
            CSP_API
        },
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if path.starts_with("/api/v1/") || path == "/api/v1" {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if hsts_seconds > 0
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={hsts_seconds}"))
    {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
    headers.remove(header::SERVER);
}
