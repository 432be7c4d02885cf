//! The domain of projects-api: users, projects, roles and statuses, the input
//! types with their validation rules, pages and cursors, and the pure rules of
//! who may see or change what.
//!
//! This crate must stay pure: no I/O, no async, no SQL and no HTTP types. Every
//! other crate depends on it, so what lives here is what all of them agree on.

mod email;
mod error;
mod ids;
pub mod inputs;
pub mod json;
mod pagination;
mod project_access;
mod projects;
pub mod rfc3339;
mod sessions;
mod users;

pub use email::{Email, InvalidEmail};
pub use error::DomainError;
pub use ids::{ProjectId, SessionId, UserId};
pub use pagination::{
    InvalidLimit, InvalidSort, Limit, Page, ProjectCursor, ProjectKey, ProjectListQuery,
    ProjectScope, ProjectSort, Slice,
};
pub use project_access::ProjectAccess;
pub use projects::{Project, ProjectStatus, ProjectView};
pub use sessions::{Session, SessionEndReason};
pub use users::{Role, User, ensure_an_admin_remains};

/// Timestamps are UTC instants, shown as RFC 3339 with a `Z` suffix.
pub type Timestamp = time::OffsetDateTime;
