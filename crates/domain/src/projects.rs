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
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A project borrowed from wherever it was read (a database row), so that
/// its JSON can be written without owning copies of its text: a page of 20
/// projects was 40 strings allocated, copied and freed only to be written
/// once. Its JSON is `Project`'s, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectView<'a> {
    pub id: ProjectId,
    pub owner_id: UserId,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub status: ProjectStatus,
    pub version: i32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Project {
    /// This project, borrowed.
    pub fn view(&self) -> ProjectView<'_> {
        ProjectView {
            id: self.id,
            owner_id: self.owner_id,
            name: &self.name,
            description: self.description.as_deref(),
            status: self.status,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl ProjectView<'_> {
    /// The project, owned.
    pub fn to_project(&self) -> Project {
        Project {
            id: self.id,
            owner_id: self.owner_id,
            name: self.name.to_owned(),
            description: self.description.map(str::to_owned),
            status: self.status,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl crate::json::WriteJson for ProjectView<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json;
        out.extend_from_slice(b"{\"id\":");
        json::uuid(out, self.id.as_uuid());
        out.extend_from_slice(b",\"owner_id\":");
        json::uuid(out, self.owner_id.as_uuid());
        out.extend_from_slice(b",\"name\":");
        json::string(out, self.name);
        out.extend_from_slice(b",\"description\":");
        json::optional_string(out, self.description);
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.extend_from_slice(b"\",\"version\":");
        json::integer(out, i64::from(self.version));
        out.extend_from_slice(b",\"created_at\":");
        json::timestamp(out, &self.created_at);
        out.extend_from_slice(b",\"updated_at\":");
        json::timestamp(out, &self.updated_at);
        out.push(b'}');
    }
}

impl crate::json::WriteJson for Project {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.view().write_json(out);
    }
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

    proptest::proptest! {
        /// The JSON a response writes is the JSON `Serialize` makes, for
        /// any text (quotes, controls, non-ASCII), version and instant.
        #[test]
        fn fuzz_written_json_is_the_serialized_json(
            name in "\\PC{1,30}|.*[\"\\\\\\x00-\\x1f].*",
            description in proptest::option::of("\\PC{0,80}|[\\x00-\\x7f]{0,20}"),
            version in proptest::num::i32::ANY,
            seconds in 0i64..253_402_300_799,
            micros in 0i64..1_000_000,
            next_cursor in proptest::option::of("[A-Za-z0-9_-]{1,60}"),
        ) {
            use crate::json::WriteJson as _;
            let at = time::OffsetDateTime::from_unix_timestamp(seconds).expect("in range")
                + time::Duration::microseconds(micros);
            let project = Project {
                id: ProjectId::new(),
                owner_id: UserId::new(),
                name,
                description,
                status: ProjectStatus::ALL[usize::try_from(seconds % 3).unwrap_or(0)],
                version,
                created_at: at,
                updated_at: at + time::Duration::nanoseconds(seconds % 1_000_000_007),
            };
            proptest::prop_assert_eq!(
                project.to_json(0),
                serde_json::to_vec(&project).expect("json")
            );
            let page = crate::Page { data: vec![project.clone(), project], next_cursor };
            let serialized = serde_json::to_vec(&page).expect("json");
            proptest::prop_assert_eq!(page.to_json(0), serialized.clone());
            // Borrowed (as the list writes rows), the same bytes.
            let views = crate::Page {
                data: page.data.iter().map(Project::view).collect(),
                next_cursor: page.next_cursor.clone(),
            };
            proptest::prop_assert_eq!(views.to_json(0), serialized);
            proptest::prop_assert_eq!(page.data[0].view().to_project(), page.data[0].clone());
            let empty: crate::Page<Project> = crate::Page { data: Vec::new(), next_cursor: None };
            proptest::prop_assert_eq!(empty.to_json(0), serde_json::to_vec(&empty).expect("json"));
        }
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
