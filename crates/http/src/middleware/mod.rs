//! The middleware around every route, outermost first:
//!
//! 1. `outer`, what every request pays once: the connection's client
//!    deadline (`client_deadline`), the request metrics (every response is
//!    counted, 429s and panics too), the request id (so every response, even
//!    a refused one, carries `X-Request-Id`, and every log line of the
//!    request its id) with the access log line, the problem finaliser
//!    (`problems`: every error response becomes problem+json with the
//!    request id, and a panicking handler a 500), and the security headers
//!    (on every response, problems included);
//! 2. CORS;
//! 3. rate limits.

pub mod cors;
pub mod outer;
pub mod problems;
pub mod rate_limit;
pub mod request_metrics;
pub mod security_headers;
