//! Production hardening, driven in-process through the real `App`: one
//! error format, request ids, security headers, CORS and rate limits.

mod hardening {
    pub mod errors;
    pub mod headers;
    pub mod rate_limits;
    pub mod support;
}
