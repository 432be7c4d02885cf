//! Abuse resistance, driven in-process through the real `App` over a real
//! PostgreSQL (and a real Redis where a test says so): limits decided on the
//! matched route, the per-account throttle of password checks, the client
//! address behind trusted proxies, IPv6 clients per /64.

mod abuse {
    pub mod client_address;
    pub mod password_checks;
    pub mod redis_outage;
    pub mod routes;
    pub mod support;
}
