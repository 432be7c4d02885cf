//! Users and their roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Email, Timestamp, UserId};

/// What a user may do: `user` owns projects, `admin` may act on everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "user")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::User, Role::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownVariant(pub String);

impl FromStr for Role {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownVariant(s.to_owned()))
    }
}

/// A user as every response shows it: never a password or a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": "01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "role": "user",
    "email_verified": true,
    "created_at": "2026-01-02T03:04:05.123456Z",
    "updated_at": "2026-01-02T03:04:05.123456Z"
}))]
pub struct User {
    pub id: UserId,
    pub email: Email,
    /// 1 to 100 characters after trimming.
    #[schema(min_length = 1, max_length = 100, example = "Ada Lovelace")]
    pub name: String,
    pub role: Role,
    /// Whether the owner confirmed the address (the link mailed at
    /// registration, or an email change).
    pub email_verified: bool,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The last-admin rule: an admin may be demoted or deleted only while
/// another admin remains. `admins` counts the admins now, the target
/// included when `target_is_admin`.
pub fn ensure_an_admin_remains(target_is_admin: bool, admins: usize) -> Result<(), DomainError> {
    if target_is_admin && admins <= 1 {
        Err(DomainError::LastAdmin)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_admin_must_remain() {
        assert_eq!(
            ensure_an_admin_remains(true, 1),
            Err(DomainError::LastAdmin)
        );
        assert_eq!(ensure_an_admin_remains(true, 2), Ok(()));
        assert_eq!(ensure_an_admin_remains(false, 1), Ok(()));
        assert_eq!(ensure_an_admin_remains(false, 0), Ok(()));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_user_serialises_as_the_contract_shows_it() {
        let user = User {
            id: UserId::new(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: "Ada Lovelace".into(),
            role: Role::Admin,
            email_verified: false,
            created_at: time::macros::datetime!(2026-01-02 03:04:05.123456 UTC),
            updated_at: time::macros::datetime!(2026-01-02 03:04:05 UTC),
        };
        let json = serde_json::to_value(&user).expect("serialises");
        assert_eq!(json["role"], "admin");
        assert_eq!(json["email_verified"], false);
        assert_eq!(json["email"], "ada@example.com");
        assert_eq!(json["created_at"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(json["updated_at"], "2026-01-02T03:04:05Z");
        let keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
        assert_eq!(keys.len(), 7, "only the contract's fields: {keys:?}");
    }
}
