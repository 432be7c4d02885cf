//! E-mail addresses, normalised once at the edge: trimmed and lower-cased.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest address the contract accepts.
pub const MAX_EMAIL_LEN: usize = 254;

/// A syntactically valid, normalised e-mail address. One that exists is valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    #[error("must be a valid e-mail address")]
    Malformed,
    #[error("must be at most {MAX_EMAIL_LEN} characters")]
    TooLong,
}

impl Email {
    /// Parses and normalises (trims, lower-cases) an address.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let normalised = raw.trim().to_lowercase();
        if normalised.chars().count() > MAX_EMAIL_LEN {
            return Err(InvalidEmail::TooLong);
        }
        if !is_valid_address(&normalised) {
            return Err(InvalidEmail::Malformed);
        }
        Ok(Self(normalised))
    }

    /// Wraps an address read back from the database, where it was stored
    /// normalised.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A pragmatic check (garde's e-mail rule, which follows the HTML spec):
/// one `@`, a non-empty local part, a dotted or single-label domain, and no
/// spaces or control characters.
fn is_valid_address(address: &str) -> bool {
    use garde::rules::email::Email as _;
    address.validate_email().is_ok()
}

/// Documented as what it is on the wire: a string in e-mail format.
impl utoipa::PartialSchema for Email {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(MAX_EMAIL_LEN))
            .description(Some(
                "An e-mail address; stored trimmed and lower-cased, compared case-insensitively",
            ))
            .examples(["ada@example.com"])
            .into()
    }
}

impl utoipa::ToSchema for Email {}

impl TryFrom<String> for Email {
    type Error = InvalidEmail;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Ada@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "ada@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for raw in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "ada@exa\0mple.com",
        ] {
            assert_eq!(Email::parse(raw), Err(InvalidEmail::Malformed), "{raw:?}");
        }
    }

    #[test]
    fn rejects_addresses_over_254_characters() {
        let raw = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&raw), Err(InvalidEmail::TooLong));
    }

    proptest::proptest! {
        /// Client bytes of any shape: never a panic; a normalised address
        /// is a fixed point (parsing it again gives it back), trimmed,
        /// lower-cased and within the length limit.
        #[test]
        fn fuzz_email_normalisation_is_idempotent(raw in "\\PC{0,300}|[ \t]{0,3}[A-Za-z0-9._%+İK-]{1,70}@[A-Za-z0-9.İ-]{1,70}[ \t]{0,3}") {
            if let Ok(email) = Email::parse(&raw) {
                let again = Email::parse(email.as_str());
                proptest::prop_assert_eq!(again.as_ref().map(Email::as_str), Ok(email.as_str()));
                proptest::prop_assert_eq!(email.as_str().trim(), email.as_str());
                proptest::prop_assert_eq!(email.as_str().to_lowercase(), email.as_str());
                proptest::prop_assert!(email.as_str().chars().count() <= MAX_EMAIL_LEN);
            }
        }
    }
}
