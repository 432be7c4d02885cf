//! The HTTP face of projects-api: every route of the contract, thin handlers,
//! the extractors (current user, validated JSON, pagination), the middleware
//! (request ids, security headers, rate limits, CORS), and the one mapping
//! from errors to RFC 9457 problem responses.
//!
//! Handlers read like the contract's rows: they call the store and the auth
//! crate and never hold SQL strings, hashing or JWT internals.

mod app;
mod client_ip;
mod error;
mod health;
pub mod middleware;
pub mod rate_limit;
mod state;

pub use app::{app, configure};
pub use error::{ApiError, FieldError};
pub use state::{AppState, HttpConfig};
