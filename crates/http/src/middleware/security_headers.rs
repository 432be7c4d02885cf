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

/// Sets the headers for a response to a `route` of that kind.
pub(crate) fn apply(headers: &mut HeaderMap, route: RouteKind, hsts_seconds: u64) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        if route == RouteKind::Docs {
            // The interactive docs load their own scripts, styles and images.
            crate::docs::DOCS_CSP
        } else {
            CSP_API
        },
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if route == RouteKind::Api {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if hsts_seconds > 0
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={hsts_seconds}"))
    {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
    headers.remove(header::SERVER);
}
