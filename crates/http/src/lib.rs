//! The HTTP face of projects-api: every route of the contract, thin handlers,
//! the extractors (current user, validated JSON, pagination), the middleware
//! (request ids, security headers, rate limits, CORS), and the one mapping
//! from errors to RFC 9457 problem responses.
//!
//! Handlers read like the contract's rows: they call the store and the auth
//! crate and never hold SQL strings, hashing or JWT internals.

mod app;
mod auth;
pub mod client_deadline;
pub mod client_ip;
mod cursor;
mod error;
pub mod extract;
mod health;
pub mod metrics;
pub mod middleware;
pub mod openapi;
mod projects;
pub mod rate_limit;
pub mod revocations;
mod sessions;
mod state;
mod users;

pub use app::{app, configure};
pub use auth::Tokens;
pub use cursor::CursorCodec;
pub use error::{ApiError, FieldError, Problem};
pub use health::Drain;
pub use state::{AppState, HttpConfig, TEST_JWT_SECRET, test_token_config};
