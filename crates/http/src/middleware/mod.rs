//! The middleware around every route, outermost first (outside them all,
//! `request_metrics` counts and times every response, and the client
//! deadline of `client_deadline` follows the connection):
//!
//! 1. request id: so every response, even a refused one, carries
//!    `X-Request-Id`, and every log line of the request its id;
//! 2. security headers: on every response, problems included;
//! 3. problem finaliser: every error response becomes problem+json with
//!    the request id, and a panicking handler a 500;
//! 4. CORS;
//! 5. rate limits.

pub mod cors;
pub mod problems;
pub mod rate_limit;
pub mod request_id;
pub mod request_metrics;
pub mod security_headers;
