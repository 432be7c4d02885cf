//! Rule violations that the domain itself detects.

/// A domain rule said no. `Display` is safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The resource does not exist, or the caller may not see it.
    #[error("not found")]
    NotFound,
    /// The caller's role does not allow the action.
    #[error("your role does not allow this action")]
    Forbidden,
    /// The action would leave the system without an administrator.
    #[error("the last admin cannot be demoted or deleted")]
    LastAdmin,
}
