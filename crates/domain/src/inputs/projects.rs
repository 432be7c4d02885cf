//! Inputs of the projects endpoints. Names are trimmed while they are read,
//! so that the rules and the database see the same text. A client can never
//! set `id`, `owner_id`, `version` or the timestamps: those fields do not
//! exist here, so the JSON extractor reports them as `unknown_field`.
//! Control characters are refused by the extractor (`description` is the one
//! multi-line field); the rules below hold the lengths.

use garde::Validate;
use serde::{Deserialize, Deserializer};

use super::{Input, rule_error, trimmed};
use crate::ProjectStatus;

pub const MAX_PROJECT_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;

/// `POST /api/v1/projects`. `name` is an `Option` only so that a missing
/// name is reported with every other violation; once validated it is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate, utoipa::ToSchema)]
#[schema(
    description = "A new project, owned by the caller. Unknown fields are refused (422).",
    example = json!({
        "name": "Apollo",
        "description": "Land on the Moon and return safely.",
        "status": "active"
    })
)]
pub struct NewProject {
    /// 1 to 200 characters after trimming; no control characters.
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(required, length(chars, min = 1, max = MAX_PROJECT_NAME_CHARS))]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$", example = "Apollo")]
    pub name: Option<String>,
    /// At most 5,000 characters, or `null`; line breaks and tabs allowed.
    #[serde(default)]
    #[garde(length(chars, max = MAX_DESCRIPTION_CHARS))]
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$",
        example = "Land on the Moon and return safely."
    )]
    pub description: Option<String>,
    // The default is said in the description, not as the schema's
    // `default`, which openapi-typescript reads as "always present" and so
    // makes the field required.
    /// Default `active`.
    #[serde(default)]
    #[garde(skip)]
    pub status: ProjectStatus,
}

impl Input for NewProject {
    const FIELDS: &'static [&'static str] = &["name", "description", "status"];
    const MULTILINE_FIELDS: &'static [&'static str] = &["description"];
}

/// `PATCH /api/v1/projects/{id}`: only the fields sent change.
/// `description: null` clears the description; `name: null` and
/// `status: null` are not values and are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Validate, utoipa::ToSchema)]
#[schema(
    example = json!({ "name": "Apollo 11", "status": "completed" })
)]
pub struct ProjectPatch {
    /// 1 to 200 characters after trimming; absent: unchanged.
    #[serde(default, deserialize_with = "some_trimmed")]
    #[garde(length(chars, min = 1, max = MAX_PROJECT_NAME_CHARS))]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$", example = "Apollo 11")]
    pub name: Option<String>,
    /// Absent: unchanged; `null`: cleared; a string: replaced.
    #[serde(default, deserialize_with = "present")]
    #[garde(custom(description_length))]
    #[schema(value_type = Option<String>, required = false, max_length = 5000, pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$", example = "Landed.")]
    pub description: Option<Option<String>>,
    /// Absent: unchanged.
    #[serde(default, deserialize_with = "some_status")]
    #[garde(skip)]
    #[schema(value_type = ProjectStatus, required = false)]
    pub status: Option<ProjectStatus>,
}

impl Input for ProjectPatch {
    const FIELDS: &'static [&'static str] = NewProject::FIELDS;
    const MULTILINE_FIELDS: &'static [&'static str] = NewProject::MULTILINE_FIELDS;
}

impl ProjectPatch {
    /// A patch that changes nothing (`{}`).
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.status.is_none()
    }
}

/// A present name must be a string (`null` is refused), trimmed.
fn some_trimmed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Some(String::deserialize(deserializer)?.trim().to_owned()))
}

fn some_status<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ProjectStatus>, D::Error> {
    ProjectStatus::deserialize(deserializer).map(Some)
}

/// A field that is present, whether `null` or a value.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

fn description_length(description: &Option<Option<String>>, _: &()) -> garde::Result {
    match description {
        Some(Some(text)) if text.chars().count() > MAX_DESCRIPTION_CHARS => Err(rule_error(
            "length",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_project(value: serde_json::Value) -> NewProject {
        serde_json::from_value(value).expect("deserialises")
    }

    fn failing_fields(report: garde::Report) -> Vec<String> {
        let mut fields: Vec<_> = report.iter().map(|(path, _)| path.to_string()).collect();
        fields.sort();
        fields
    }

    #[test]
    fn names_are_trimmed_and_status_defaults_to_active() {
        let project = new_project(json!({ "name": "  Apollo \n" }));
        assert_eq!(project.name.as_deref(), Some("Apollo"));
        assert_eq!(project.status, ProjectStatus::Active);
        assert_eq!(project.description, None);
        assert!(project.validate().is_ok());
    }

    #[test]
    fn every_violation_is_reported_together() {
        let project = new_project(json!({
            "name": "   ",
            "description": "x".repeat(MAX_DESCRIPTION_CHARS + 1),
        }));
        let report = project.validate().expect_err("invalid");
        assert_eq!(failing_fields(report), ["description", "name"]);
        let missing = new_project(json!({}));
        assert_eq!(
            failing_fields(missing.validate().expect_err("invalid")),
            ["name"]
        );
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let project = new_project(json!({
            "name": "é".repeat(MAX_PROJECT_NAME_CHARS),
            "description": "ü".repeat(MAX_DESCRIPTION_CHARS),
        }));
        assert!(project.validate().is_ok());
        let too_long = new_project(json!({ "name": "é".repeat(MAX_PROJECT_NAME_CHARS + 1) }));
        assert!(too_long.validate().is_err());
    }

    #[test]
    fn a_patch_tells_absent_from_null() {
        let absent: ProjectPatch = serde_json::from_value(json!({})).expect("deserialises");
        assert!(absent.is_empty());
        let cleared: ProjectPatch =
            serde_json::from_value(json!({ "description": null })).expect("deserialises");
        assert_eq!(cleared.description, Some(None));
        assert!(!cleared.is_empty());
        let set: ProjectPatch =
            serde_json::from_value(json!({ "description": "d", "name": " N " }))
                .expect("deserialises");
        assert_eq!(set.description, Some(Some("d".into())));
        assert_eq!(set.name.as_deref(), Some("N"));
    }

    #[test]
    fn a_patch_refuses_null_names_and_statuses() {
        assert!(serde_json::from_value::<ProjectPatch>(json!({ "name": null })).is_err());
        assert!(serde_json::from_value::<ProjectPatch>(json!({ "status": null })).is_err());
        assert!(serde_json::from_value::<ProjectPatch>(json!({ "status": "deleted" })).is_err());
    }

    #[test]
    fn a_patch_validates_only_what_it_carries() {
        let patch: ProjectPatch = serde_json::from_value(json!({
            "name": "",
            "description": "x".repeat(MAX_DESCRIPTION_CHARS + 1),
        }))
        .expect("deserialises");
        let report = patch.validate().expect_err("invalid");
        assert_eq!(failing_fields(report), ["description", "name"]);
        let status_only: ProjectPatch =
            serde_json::from_value(json!({ "status": "archived" })).expect("deserialises");
        assert!(status_only.validate().is_ok());
    }
}
