//! The HTTP face of projects-api: every route of the contract, thin handlers,
//! the extractors (current user, validated JSON, pagination), the middleware
//! (request ids, security headers, rate limits, CORS), and the one mapping
//! from errors to RFC 9457 problem responses.
//!
//! Handlers read like the contract's rows: they call the store and the auth
//! crate and never hold SQL strings, hashing or JWT internals.
//!
//! One module per resource (`auth`, `accounts`, `sessions`, `users`,
//! `projects`, `health`) holds its routes, handlers and OpenAPI annotations.
//! Below them: the state, the extractors, the shared error responses
//! (`problem_responses`), the audit log and the account mail. Above them:
//! `routes` (every resource's routes, in one list), `openapi` (the document,
//! its paths collected from that list), the route table read from it, the
//! middleware and `app`. No two modules import each other
//! (`tests/module_cycles.rs` checks).

pub mod account_mail;
pub mod accounts;
mod app;
mod audit;
mod auth;
pub mod client_deadline;
pub mod client_ip;
mod cursor;
pub mod docs;
mod drain;
mod error;
pub mod extract;
mod health;
pub mod metrics;
pub mod middleware;
pub mod openapi;
mod openapi_links;
mod paging;
mod problem_responses;
mod projects;
pub mod rate_limit;
mod request_id;
pub mod revocations;
mod route_table;
mod routes;
mod sessions;
mod state;
mod users;

pub use app::{app, configure};
pub use auth::Tokens;
pub use cursor::{CursorCodec, ListCursors};
pub use drain::Drain;
pub use error::{ApiError, FieldError, Problem};
pub use state::{AccountsConfig, AppState, HttpConfig};
