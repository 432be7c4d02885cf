//! Sessions: what one login, registration or password reset starts (one
//! chain of refresh tokens), and why a session ended.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::{SessionId, Timestamp};

/// A live session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: SessionId,
    #[serde(with = "crate::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "crate::rfc3339")]
    pub last_used_at: Timestamp,
    /// When the session ends unless refreshed before: the earlier of its
    /// absolute limit and its idle limit.
    #[serde(with = "crate::rfc3339")]
    pub expires_at: Timestamp,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

/// Why a session ended. Every kind of ending goes through one store
/// operation, which records this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEndReason {
    /// `POST /auth/logout` with one of its refresh tokens.
    Logout,
    /// Its owner ended it (`DELETE /auth/sessions…`).
    Revoked,
    /// A used refresh token was presented again after the grace period.
    Reuse,
    /// Its user changed their password (every other session ends).
    PasswordChange,
    /// Its user reset their password (every session ends).
    PasswordReset,
    /// Its user was deleted.
    UserDeleted,
}

impl SessionEndReason {
    pub const ALL: [SessionEndReason; 6] = [
        SessionEndReason::Logout,
        SessionEndReason::Revoked,
        SessionEndReason::Reuse,
        SessionEndReason::PasswordChange,
        SessionEndReason::PasswordReset,
        SessionEndReason::UserDeleted,
    ];

    /// The stored (and metric label) form.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionEndReason::Logout => "logout",
            SessionEndReason::Revoked => "revoked",
            SessionEndReason::Reuse => "reuse",
            SessionEndReason::PasswordChange => "password_change",
            SessionEndReason::PasswordReset => "password_reset",
            SessionEndReason::UserDeleted => "user_deleted",
        }
    }
}

impl fmt::Display for SessionEndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
