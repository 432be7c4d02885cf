//! The security headers of the contract, on every response (errors too),
//! set by the outer layer (`middleware::outer`).
//!
//! The per-route ones are decided on the route the request matched, never
//! on the raw path (which may spell a route with percent-escapes): the
//! relaxed Content-Security-Policy only on the docs routes, and
//! `Cache-Control: no-store` on everything except the routes outside
//! `/api/v1` (health, the OpenAPI document, the docs). A response that
//! matched no route (404, 405, a refusal) is an error: never cached.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::web;

use crate::AppState;
use crate::docs::DOCS_PATH;

const CSP_API: &str = "default-src 'none'; frame-ancestors 'none'";

/// What the per-route headers depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteKind {
    /// The interactive docs: their own scripts, styles and images.
    Docs,
    /// A route outside `/api/v1` (health, the OpenAPI document): cacheable.
    Public,
    /// An `/api/v1` route, or no route at all: `no-store`.
    Api,
}

impl RouteKind {
    /// From the matched route's pattern (`None`: no route matched).
    pub(crate) fn of(pattern: Option<&str>) -> Self {
        match pattern {
            Some(pattern) if pattern == DOCS_PATH || pattern.starts_with("/docs/") => Self::Docs,
            Some(pattern) if !(pattern == "/api/v1" || pattern.starts_with("/api/v1/")) => {
                Self::Public
            }
            _ => Self::Api,
        }
    }
}

pub(crate) fn hsts_seconds(state: Option<&web::Data<AppState>>) -> u64 {
    state.map_or(0, |state| state.config.hsts_seconds)
}

// The values as constants: made and checked once, at compile time (a
// `from_static` at run time checks every byte of every value, every
// request); each use is a copy of a static reference.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const DENY: HeaderValue = HeaderValue::from_static("DENY");
const NO_REFERRER: HeaderValue = HeaderValue::from_static("no-referrer");
const CSP_API_VALUE: HeaderValue = HeaderValue::from_static(CSP_API);
const CSP_DOCS_VALUE: HeaderValue = HeaderValue::from_static(crate::docs::DOCS_CSP);
const CROSS_ORIGIN_RESOURCE_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-resource-policy");
const SAME_ORIGIN: HeaderValue = HeaderValue::from_static("same-origin");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Sets the headers for a response to a `route` of that kind.
pub(crate) fn apply(headers: &mut HeaderMap, route: RouteKind, hsts_seconds: u64) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers.insert(header::X_FRAME_OPTIONS, DENY);
    headers.insert(header::REFERRER_POLICY, NO_REFERRER);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        if route == RouteKind::Docs {
            // The interactive docs load their own scripts, styles and images.
            CSP_DOCS_VALUE
        } else {
            CSP_API_VALUE
        },
    );
    headers.insert(CROSS_ORIGIN_RESOURCE_POLICY, SAME_ORIGIN);
    if route == RouteKind::Api {
        headers.insert(header::CACHE_CONTROL, NO_STORE);
    }
    if hsts_seconds > 0
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={hsts_seconds}"))
    {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
    headers.remove(header::SERVER);
}
