//! Inputs of the auth and users endpoints.

use garde::Validate;
use serde::Deserialize;

use super::{Input, rule_error, trimmed};
use crate::{Email, InvalidEmail, Role};

/// The shortest password accepted, in characters (Unicode scalar values).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, in characters (Unicode scalar values).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The lowest zxcvbn score (0–4) a new password must reach.
pub const MIN_PASSWORD_SCORE: u8 = 2;

// The `pattern`s in the schemas below document what the JSON extractor
// refuses: control characters in one-line text, and (for names) text that
// is only white space, since names are trimmed before their length is
// checked.

/// `POST /api/v1/auth/register`. There is deliberately no `role`: new
/// users are always `user`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(
    example = json!({
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "password": "correct horse battery staple"
    })
)]
pub struct Registration {
    /// Stored and compared trimmed and lower-cased.
    #[garde(required, custom(email_address))]
    #[serde(default)]
    #[schema(value_type = String, required = true, format = Email, max_length = 254, example = "ada@example.com")]
    pub email: Option<String>,
    /// 1 to 100 characters after trimming.
    #[garde(required, length(chars, min = 1, max = 100))]
    #[serde(default, deserialize_with = "trimmed")]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$", example = "Ada Lovelace")]
    pub name: Option<String>,
    /// 8 to 128 characters, and not easily guessed (common passwords,
    /// words, repeats and sequences are refused). Never echoed.
    #[garde(required, length(chars, min = MIN_PASSWORD_CHARS, max = MAX_PASSWORD_CHARS))]
    #[serde(default)]
    #[schema(value_type = String, required = true, format = Password, min_length = 8, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", example = "correct horse battery staple")]
    pub password: Option<String>,
}

impl Input for Registration {
    const FIELDS: &'static [&'static str] = &["email", "name", "password"];

    fn new_passwords(&self) -> Vec<(&'static str, &str)> {
        estimable("password", self.password.as_deref())
    }
}

/// `POST /api/v1/auth/login`. Only the shape is checked: a weak or
/// malformed-but-stored password must still be able to log in.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(
    example = json!({ "email": "ada@example.com", "password": "correct horse battery staple" })
)]
pub struct Login {
    /// Compared case-insensitively.
    #[garde(required, length(chars, min = 1, max = 254))]
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 254, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", example = "ada@example.com")]
    pub email: Option<String>,
    #[garde(required, length(chars, min = 1, max = MAX_PASSWORD_CHARS))]
    #[serde(default)]
    #[schema(value_type = String, required = true, format = Password, min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", example = "correct horse battery staple")]
    pub password: Option<String>,
}

impl Input for Login {
    const FIELDS: &'static [&'static str] = &["email", "password"];
}

/// `POST /api/v1/auth/refresh` and `POST /api/v1/auth/logout`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(
    example = json!({ "refresh_token": "hV3tq0nJ7cY2mWlq1XbS9e4Kd8ZrPfA6uGoT5iLsNyE" })
)]
pub struct RefreshRequest {
    /// The opaque refresh token from register, login or refresh.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", example = "hV3tq0nJ7cY2mWlq1XbS9e4Kd8ZrPfA6uGoT5iLsNyE")]
    pub refresh_token: Option<String>,
}

impl Input for RefreshRequest {
    const FIELDS: &'static [&'static str] = &["refresh_token"];
}

/// `POST /api/v1/auth/password-reset`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(example = json!({ "email": "ada@example.com" }))]
pub struct PasswordResetRequest {
    /// The account's address; the answer is the same whether or not it has one.
    #[garde(required, custom(email_address))]
    #[serde(default)]
    #[schema(value_type = String, required = true, format = Email, max_length = 254, example = "ada@example.com")]
    pub email: Option<String>,
}

impl Input for PasswordResetRequest {
    const FIELDS: &'static [&'static str] = &["email"];
}

impl PasswordResetRequest {
    /// The normalised address; validation has already accepted it.
    pub fn parsed_email(&self) -> Result<Email, InvalidEmail> {
        Email::parse(self.email.as_deref().unwrap_or_default())
    }
}

/// `POST /api/v1/auth/password-reset/confirm`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(example = json!({
    "token": "q5dM8xKc1vJ0bN3rT7yW2eA9sF4gH6jL0zX8cV1bN2m",
    "password": "a new and better passphrase"
}))]
pub struct PasswordResetConfirm {
    /// The token of the mailed link.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", example = "q5dM8xKc1vJ0bN3rT7yW2eA9sF4gH6jL0zX8cV1bN2m")]
    pub token: Option<String>,
    /// The new password: 8 to 128 characters, not easily guessed.
    #[garde(required, length(chars, min = MIN_PASSWORD_CHARS, max = MAX_PASSWORD_CHARS))]
    #[serde(default)]
    #[schema(value_type = String, required = true, format = Password, min_length = 8, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", example = "a new and better passphrase")]
    pub password: Option<String>,
}

impl Input for PasswordResetConfirm {
    const FIELDS: &'static [&'static str] = &["token", "password"];

    fn new_passwords(&self) -> Vec<(&'static str, &str)> {
        estimable("password", self.password.as_deref())
    }
}

/// `POST /api/v1/auth/verify-email` and `POST /api/v1/auth/email-change/confirm`.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(example = json!({ "token": "q5dM8xKc1vJ0bN3rT7yW2eA9sF4gH6jL0zX8cV1bN2m" }))]
pub struct TokenConfirm {
    /// The token of the mailed link.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", example = "q5dM8xKc1vJ0bN3rT7yW2eA9sF4gH6jL0zX8cV1bN2m")]
    pub token: Option<String>,
}

impl Input for TokenConfirm {
    const FIELDS: &'static [&'static str] = &["token"];
}

/// `PATCH /api/v1/users/me`: a new name, and/or a new password together
/// with the current one, and/or a new address (with the current password),
/// which only starts a change confirmed by mail.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(
    example = json!({ "name": "Ada King" })
)]
pub struct UserSelfPatch {
    /// 1 to 100 characters after trimming; absent or `null`: unchanged.
    #[garde(length(chars, min = 1, max = 100))]
    #[serde(default, deserialize_with = "trimmed")]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
        example = "Ada King"
    )]
    pub name: Option<String>,
    /// A new password (8 to 128 characters, not easily guessed); needs
    /// `current_password`. Revokes every refresh token of the user.
    #[garde(length(chars, min = MIN_PASSWORD_CHARS, max = MAX_PASSWORD_CHARS))]
    #[serde(default)]
    #[schema(format = Password, min_length = 8, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub password: Option<String>,
    /// A new address: with `current_password`, a confirmation link goes to
    /// it (202); the address changes once the link is used.
    #[garde(custom(email_address), custom(needed_with_email(&self.current_password)))]
    #[serde(default)]
    #[schema(value_type = String, format = Email, max_length = 254, example = "ada@example.org")]
    pub email: Option<String>,
    /// Required with `password` and with `email`.
    #[garde(length(chars, min = 1, max = MAX_PASSWORD_CHARS), custom(needed_for_password(&self.password)))]
    #[serde(default)]
    #[schema(format = Password, min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub current_password: Option<String>,
}

impl Input for UserSelfPatch {
    const FIELDS: &'static [&'static str] = &["name", "password", "email", "current_password"];

    fn new_passwords(&self) -> Vec<(&'static str, &str)> {
        estimable("password", self.password.as_deref())
    }
}

/// A password change: the current password, checked before the new one is
/// stored.
#[derive(Debug)]
pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
}

impl UserSelfPatch {
    /// The new address this patch asks to move to, if any; validation has
    /// already accepted it.
    pub fn new_email(&self) -> Option<Email> {
        self.email.as_deref().and_then(|raw| Email::parse(raw).ok())
    }

    /// The password change this patch asks for, if any. Validation has
    /// already made sure that a new password comes with the current one.
    pub fn password_change(&self) -> Option<PasswordChange<'_>> {
        match (&self.password, &self.current_password) {
            (Some(new), Some(current)) => Some(PasswordChange { current, new }),
            _ => None,
        }
    }
}

/// `PATCH /api/v1/users/{id}` (admins): a role and/or a name.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[schema(
    example = json!({ "role": "admin", "name": "Ada Lovelace" })
)]
pub struct UserPatch {
    /// Absent or `null`: unchanged. Demoting the last admin is a 409.
    #[garde(skip)]
    #[serde(default)]
    pub role: Option<Role>,
    /// 1 to 100 characters after trimming; absent or `null`: unchanged.
    #[garde(length(chars, min = 1, max = 100))]
    #[serde(default, deserialize_with = "trimmed")]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
        example = "Ada Lovelace"
    )]
    pub name: Option<String>,
}

impl Input for UserPatch {
    const FIELDS: &'static [&'static str] = &["role", "name"];
}

impl Registration {
    /// The normalised address; validation has already accepted it.
    pub fn parsed_email(&self) -> Result<Email, InvalidEmail> {
        Email::parse(self.email.as_deref().unwrap_or_default())
    }
}

fn email_address(value: &Option<String>, _: &()) -> garde::Result {
    match value.as_deref().map(Email::parse) {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(InvalidEmail::TooLong)) => Err(rule_error("length", InvalidEmail::TooLong)),
        Some(Err(error)) => Err(rule_error("email", error)),
    }
}

/// `field` with its new password, for the strength estimate, when it is
/// within the length limits (outside them, the `length` rule reports it and
/// there is nothing to estimate).
fn estimable<'a>(field: &'static str, password: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
    password
        .filter(|password| {
            (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&password.chars().count())
        })
        .map(|password| vec![(field, password)])
        .unwrap_or_default()
}

/// How many characters of a password the strength estimator reads. zxcvbn's
/// l33t matcher is combinatorial in the look-alike characters present and
/// its dictionary matching quadratic in the length: 128 look-alike
/// characters took ~0.9 s, 64 take about half. A prefix can only be
/// estimated weaker than the whole, never stronger, so the cap never lets a
/// weak password pass.
pub const MAX_ESTIMATED_CHARS: usize = 64;

/// Why a password is too easy to guess, or `None` when it is strong enough.
/// Also used by the `create-admin` command.
///
/// CPU-heavy for hostile input (hundreds of milliseconds): the server runs
/// it on its bounded blocking pool, never on a request worker.
pub fn password_weakness(password: &str) -> Option<String> {
    let estimated: String = password.chars().take(MAX_ESTIMATED_CHARS).collect();
    let entropy = zxcvbn::zxcvbn(&estimated, &[]);
    if u8::from(entropy.score()) >= MIN_PASSWORD_SCORE {
        return None;
    }
    let mut message = String::from("is too easy to guess");
    if let Some(feedback) = entropy.feedback() {
        if let Some(warning) = feedback.warning() {
            message.push_str(&format!(": {warning}"));
        }
        let suggestions: Vec<String> = feedback
            .suggestions()
            .iter()
            .map(ToString::to_string)
            .collect();
        if !suggestions.is_empty() {
            message.push_str(&format!(". {}", suggestions.join(" ")));
        }
    }
    Some(message)
}

fn needed_with_email<'a>(
    current: &'a Option<String>,
) -> impl FnOnce(&Option<String>, &()) -> garde::Result + 'a {
    move |email, _| match (email, current) {
        (Some(_), None) => Err(rule_error(
            "current_password_required",
            "needs current_password to change the address",
        )),
        _ => Ok(()),
    }
}

fn needed_for_password<'a>(
    new_password: &'a Option<String>,
) -> impl FnOnce(&Option<String>, &()) -> garde::Result + 'a {
    move |current, _| match (new_password, current) {
        (Some(_), None) => Err(rule_error("required", "is required to change the password")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::violations;

    fn codes<T: Validate<Context = ()>>(value: &T) -> Vec<(String, String)> {
        match value.validate() {
            Ok(()) => vec![],
            Err(report) => violations(&report)
                .into_iter()
                .map(|v| (v.field, v.code))
                .collect(),
        }
    }

    fn registration(email: &str, name: &str, password: &str) -> Registration {
        Registration {
            email: Some(email.into()),
            name: Some(name.into()),
            password: Some(password.into()),
        }
    }

    #[test]
    fn a_good_registration_passes() {
        let input = registration("Ada@Example.com", "Ada", "correct horse battery staple");
        assert!(codes(&input).is_empty());
        assert_eq!(
            input.parsed_email().expect("valid").as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let input = registration("nope", "", "short");
        let found = codes(&input);
        assert!(
            found.contains(&("email".into(), "email".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("name".into(), "length".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("password".into(), "length".into())),
            "{found:?}"
        );
        let missing = Registration {
            email: None,
            name: None,
            password: None,
        };
        assert_eq!(codes(&missing).len(), 3);
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // 8 characters, 16 bytes: long enough.
        let eight = "ŵŷřţÿůïő";
        assert_eq!(eight.len(), 16);
        let found = codes(&registration("a@b.example", "A", eight));
        assert!(!found.iter().any(|(_, code)| code == "length"), "{found:?}");
        // 129 two-byte characters: too long, though a byte count of 258
        // would say the same; 100 of them (200 bytes) must pass the limit.
        let hundred: String = "ŵŷřţÿůïőąę".repeat(10);
        let found = codes(&registration("a@b.example", "A", &hundred));
        assert!(!found.iter().any(|(_, code)| code == "length"), "{found:?}");
    }

    #[test]
    fn common_passwords_are_rejected_with_feedback() {
        for weak in [
            "password",
            "password1",
            "12345678",
            "aaaaaaaa",
            "qwertyuiop",
        ] {
            let input = registration("a@b.example", "A", weak);
            assert!(
                codes(&input).is_empty(),
                "{weak}: the estimate is not a garde rule"
            );
            assert_eq!(input.new_passwords(), vec![("password", weak)]);
            assert!(password_weakness(weak).is_some(), "{weak}");
        }
        let message = password_weakness("password").expect("weak");
        assert!(message.starts_with("is too easy to guess"));
        assert!(!message.contains("password\""));
    }

    #[test]
    fn only_new_passwords_within_the_length_limits_are_estimated() {
        assert!(
            registration("a@b.example", "A", "short")
                .new_passwords()
                .is_empty()
        );
        assert!(
            registration("a@b.example", "A", &"x".repeat(129))
                .new_passwords()
                .is_empty()
        );
        let patch = UserSelfPatch {
            name: Some("A".into()),
            password: None,
            email: None,
            current_password: Some("whatever it is".into()),
        };
        assert!(patch.new_passwords().is_empty());
    }

    #[test]
    fn only_a_prefix_is_estimated_and_it_never_makes_a_password_stronger() {
        // Strong only after the cap: refused.
        let weak_prefix = format!("{}{}", "a".repeat(MAX_ESTIMATED_CHARS), "Zq8#vN2!kR5@");
        assert!(password_weakness(&weak_prefix).is_some());
        // Strong within the cap: accepted, whatever follows.
        let strong_prefix = format!("correct horse battery staple {}", "a".repeat(90));
        assert_eq!(password_weakness(&strong_prefix), None);
    }

    #[test]
    fn a_new_password_needs_the_current_one() {
        let patch = UserSelfPatch {
            name: None,
            password: Some("correct horse battery staple".into()),
            email: None,
            current_password: None,
        };
        assert_eq!(
            codes(&patch),
            vec![("current_password".into(), "required".into())]
        );
    }

    #[test]
    fn names_are_trimmed_before_their_length_is_checked() {
        let input: UserPatch = serde_json::from_str(r#"{"name":"   "}"#).expect("parses");
        assert_eq!(input.name.as_deref(), Some(""));
        assert_eq!(codes(&input), vec![("name".into(), "length".into())]);
    }
}
