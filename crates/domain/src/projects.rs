//! Projects and their statuses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::users::UnknownVariant;
use crate::{ProjectId, Timestamp, UserId};

/// Where a project stands; new projects are `active`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(example = "active")]
pub enum ProjectStatus {
    #[default]
    Active,
    Archived,
    Completed,
}

impl ProjectStatus {
    pub const ALL: [ProjectStatus; 3] = [
        ProjectStatus::Active,
        ProjectStatus::Archived,
        ProjectStatus::Completed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Active => "active",
            ProjectStatus::Archived => "archived",
            ProjectStatus::Completed => "completed",
        }
    }
}

impl fmt::Display for ProjectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProjectStatus {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProjectStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownVariant(s.to_owned()))
    }
}

/// A project as every response shows it. `version` starts at 1 and grows by
/// one on every update; it is the project's `ETag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": "01936f4f-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
    "owner_id": "01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f",
    "name": "Apollo",
    "description": "Land on the Moon and return safely.",
    "status": "active",
    "version": 1,
    "created_at": "2026-01-02T03:04:05.123456Z",
    "updated_at": "2026-01-02T03:04:05.123456Z"
}))]
pub struct Project {
    pub id: ProjectId,
    pub owner_id: UserId,
    /// 1 to 200 characters after trimming.
    #[schema(min_length = 1, max_length = 200, example = "Apollo")]
    pub name: String,
    /// At most 5,000 characters, or null.
    #[schema(max_length = 5000, required = true)]
    pub description: Option<String>,
    pub status: ProjectStatus,
    /// Starts at 1 and grows by one on every update; the `ETag` is this
    /// number in quotes.
    #[schema(minimum = 1, example = 1)]
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_default_to_active() {
        for status in ProjectStatus::ALL {
            assert_eq!(status.as_str().parse::<ProjectStatus>(), Ok(status));
        }
        assert_eq!(ProjectStatus::default(), ProjectStatus::Active);
        assert!("deleted".parse::<ProjectStatus>().is_err());
    }

    #[test]
    fn a_null_description_is_serialised_as_null() {
        let project = Project {
            id: ProjectId::new(),
            owner_id: UserId::new(),
            name: "Apollo".into(),
            description: None,
            status: ProjectStatus::Archived,
            version: 1,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let json = serde_json::to_value(&project).expect("serialises");
        assert!(json["description"].is_null());
        assert_eq!(json["status"], "archived");
        assert_eq!(json["created_at"], "1970-01-01T00:00:00Z");
    }
}
