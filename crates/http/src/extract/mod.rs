//! Extractors: validated JSON bodies, the authenticated caller, and the
//! admin guard. Each turns a bad request into the contract's problem
//! response before a handler runs.

mod current_user;
mod json;
mod list_query;

pub use current_user::{AdminUser, CurrentUser};
pub use json::ValidatedJson;
pub use list_query::{PageParams, ProjectListParams};
