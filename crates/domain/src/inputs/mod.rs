//! Request bodies as the domain accepts them, each with its `garde` rules,
//! and the translation of a `garde` report into per-field violations.
//!
//! Every input type implements [`Input`], which the HTTP layer's validated
//! JSON extractor relies on: `FIELDS` lists the keys a body may carry (any
//! other key is an `unknown_field` violation), so a client can never slip in
//! `role`, `id` or `owner_id`.
//!
//! Fields of input types are `Option<…>` with garde's `required` rule where
//! the contract requires them: a missing field then becomes a `required`
//! violation reported together with every other one, instead of stopping
//! deserialisation at the first problem.

mod accounts;
mod projects;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};

pub use accounts::{
    Login, MAX_ESTIMATED_CHARS, PasswordChange, RefreshRequest, Registration, UserPatch,
    UserSelfPatch, password_weakness,
};
pub use projects::{MAX_DESCRIPTION_CHARS, MAX_PROJECT_NAME_CHARS, NewProject, ProjectPatch};

/// A request body type: deserialisable, validated by `garde`, with a known
/// set of fields.
pub trait Input: DeserializeOwned + garde::Validate<Context = ()> {
    /// Every key the body may contain.
    const FIELDS: &'static [&'static str];
    /// Text fields where line breaks and tabs are allowed (e.g. a
    /// description); every other text field rejects all control characters.
    const MULTILINE_FIELDS: &'static [&'static str] = &[];

    /// The new passwords of this body, by field, that must pass the strength
    /// estimate ([`password_weakness`]). The estimate is not a `garde` rule
    /// because it is CPU-heavy for hostile input: the HTTP layer runs it off
    /// its request workers and adds a `weak_password` violation to the
    /// others. Every input that sets a password must list it here.
    fn new_passwords(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }
}

/// One broken rule of one field, ready to show to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field's name as the client sent it (a path such as `tags[2]` for
    /// nested values).
    pub field: String,
    /// A stable machine-readable code: the rule's name (`required`,
    /// `length`, `email`, `pattern`, `range`, `weak_password`, …).
    pub code: String,
    /// A readable sentence; it never repeats the offending value.
    pub message: String,
}

/// A custom rule's error, carrying its code so that [`violations`] can
/// report it. Custom rules of input types should build errors with this.
pub fn rule_error(code: &str, message: impl std::fmt::Display) -> garde::Error {
    garde::Error::new(format!("[{code}] {message}"))
}

/// Translates a `garde` report into violations, giving each the name of
/// the rule that failed and a readable message.
pub fn violations(report: &garde::Report) -> Vec<Violation> {
    report
        .iter()
        .map(|(path, error)| {
            let (code, message) = describe(error.message());
            Violation {
                field: path.to_string(),
                code,
                message,
            }
        })
        .collect()
}

/// garde's errors are messages only; its built-in rules have fixed wording
/// that tells the rule apart, and our custom rules prefix `[code]`.
fn describe(message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix('[')
        && let Some((code, text)) = rest.split_once("] ")
    {
        return (code.to_owned(), text.to_owned());
    }
    if message == "not set" {
        return ("required".into(), "is required".into());
    }
    if let Some(min) = message.strip_prefix("length is lower than ") {
        return (
            "length".into(),
            format!("must be at least {min} characters"),
        );
    }
    if let Some(max) = message.strip_prefix("length is greater than ") {
        return ("length".into(), format!("must be at most {max} characters"));
    }
    if message.starts_with("not a valid email") {
        return ("email".into(), "must be a valid e-mail address".into());
    }
    if message.starts_with("does not match pattern") {
        return ("pattern".into(), "has a form that is not allowed".into());
    }
    if let Some(min) = message.strip_prefix("lower than ") {
        return ("range".into(), format!("must be at least {min}"));
    }
    if let Some(max) = message.strip_prefix("greater than ") {
        return ("range".into(), format!("must be at most {max}"));
    }
    ("invalid".into(), message.to_owned())
}

/// For `#[serde(default, deserialize_with = "trimmed")]` on an
/// `Option<String>`: names are compared and limited after trimming.
pub fn trimmed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(|value| value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_messages_get_their_rule_names() {
        assert_eq!(describe("not set").0, "required");
        assert_eq!(
            describe("length is lower than 8"),
            ("length".into(), "must be at least 8 characters".into())
        );
        assert_eq!(describe("not a valid email: x").0, "email");
        assert_eq!(
            describe("[weak_password] too common"),
            ("weak_password".into(), "too common".into())
        );
    }
}
