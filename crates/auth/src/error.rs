//! What can go wrong with credentials. `Display` is safe for clients.

/// A failure of the auth crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The access token is unusable; the kind says why (for the log and
    /// the client's `detail`).
    #[error("{0}")]
    InvalidToken(TokenError),
    /// Hashing failed (argon2 refused its input).
    #[error("the password could not be hashed")]
    Hashing,
    /// A stored hash is not a PHC string: the database holds bad data.
    #[error("a stored password hash is malformed")]
    MalformedHash,
    /// The blocking pool went away (the runtime is shutting down).
    #[error("the password hasher is unavailable")]
    HasherClosed,
    /// Too many callers are already waiting for the hashing pool.
    #[error("too many passwords are being checked right now")]
    Busy,
    /// A password-strength estimate did not finish within its deadline.
    #[error("the password's strength could not be estimated in time")]
    TimedOut,
    /// An access token could not be signed.
    #[error("the access token could not be signed")]
    Signing,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is missing")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

impl TokenError {
    /// The message for the client (and the log).
    pub const fn message(self) -> &'static str {
        match self {
            TokenError::Missing => "the access token is missing",
            TokenError::NotBearer => "the Authorization header must be `Bearer <token>`",
            TokenError::Expired => "the access token has expired",
            TokenError::Invalid => "the access token is invalid",
        }
    }
}
