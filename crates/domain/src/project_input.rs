//! What a client may send to create or change a project, with the contract's
//! rules. Names are trimmed while they are read, so that the rules and the
//! database see the same text. A client can never set `id`, `owner_id`,
//! `version` or the timestamps: those fields do not exist here.

use garde::Validate;
use serde::{Deserialize, Deserializer};

use crate::ProjectStatus;

pub const MAX_PROJECT_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;

/// The body of `POST /api/v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
pub struct NewProject {
    #[serde(deserialize_with = "trimmed")]
    #[garde(length(chars, min = 1, max = MAX_PROJECT_NAME_CHARS), custom(no_control_in_name))]
    pub name: String,
    #[serde(default)]
    #[garde(custom(valid_description))]
    pub description: Option<String>,
    #[serde(default)]
    #[garde(skip)]
    pub status: ProjectStatus,
}

impl NewProject {
    /// Every field the body may carry.
    pub const FIELDS: &'static [&'static str] = &["name", "description", "status"];
}

/// The body of `PATCH /api/v1/projects/{id}`: only the fields sent change.
/// `description: null` clears the description; `name: null` and
/// `status: null` are not values and are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Validate)]
pub struct ProjectPatch {
    #[serde(default, deserialize_with = "some_trimmed")]
    #[garde(length(chars, min = 1, max = MAX_PROJECT_NAME_CHARS), inner(custom(no_control_in_name)))]
    pub name: Option<String>,
    /// Absent: unchanged; `null`: cleared; a string: replaced.
    #[serde(default, deserialize_with = "present")]
    #[garde(custom(valid_patch_description))]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_status")]
    #[garde(skip)]
    pub status: Option<ProjectStatus>,
}

impl ProjectPatch {
    /// Every field the body may carry.
    pub const FIELDS: &'static [&'static str] = NewProject::FIELDS;

    /// A patch that changes nothing (`{}`).
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.status.is_none()
    }
}

fn trimmed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let raw = String::deserialize(deserializer)?;
    Ok(trim_owned(raw))
}

fn some_trimmed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    trimmed(deserializer).map(Some)
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

fn trim_owned(raw: String) -> String {
    let trimmed = raw.trim();
    if trimmed.len() == raw.len() {
        raw
    } else {
        trimmed.to_owned()
    }
}

/// Names are one line of visible text: no control characters at all.
fn no_control_in_name(name: &str, _: &()) -> garde::Result {
    if name.chars().any(char::is_control) {
        return Err(garde::Error::new("must not contain control characters"));
    }
    Ok(())
}

/// Descriptions may span lines and hold tabs, but no other control
/// characters (NUL cannot even be stored).
fn description_rules(description: &str) -> garde::Result {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(garde::Error::new(format!(
            "length is greater than {MAX_DESCRIPTION_CHARS}"
        )));
    }
    if description
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(garde::Error::new(
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(())
}

fn valid_description(description: &Option<String>, _: &()) -> garde::Result {
    description.as_deref().map_or(Ok(()), description_rules)
}

fn valid_patch_description(description: &Option<Option<String>>, _: &()) -> garde::Result {
    description
        .as_ref()
        .and_then(Option::as_deref)
        .map_or(Ok(()), description_rules)
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
        assert_eq!(project.name, "Apollo");
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
    fn control_characters_are_refused() {
        let project = new_project(json!({ "name": "Apo\u{0}llo", "description": "a\u{0}b" }));
        let report = project.validate().expect_err("invalid");
        assert_eq!(failing_fields(report), ["description", "name"]);
        let multiline = new_project(json!({ "name": "Apollo", "description": "a\nb\tc" }));
        assert!(multiline.validate().is_ok());
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
        let patch: ProjectPatch =
            serde_json::from_value(json!({ "name": "", "description": "\u{1}" }))
                .expect("deserialises");
        let report = patch.validate().expect_err("invalid");
        assert_eq!(failing_fields(report), ["description", "name"]);
        let status_only: ProjectPatch =
            serde_json::from_value(json!({ "status": "archived" })).expect("deserialises");
        assert!(status_only.validate().is_ok());
    }
}
