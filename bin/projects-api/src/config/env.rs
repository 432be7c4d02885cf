//! Reading variables: what counts as unset, how a value is parsed, and how
//! a bad one is named in the error.

use std::str::FromStr;

/// A variable that is missing or unusable; the message names it.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables through a lookup, so that tests need not touch the
/// process environment. A variable set to blanks counts as unset.
pub struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self(lookup)
    }

    /// The value as it is, blank or not (for the few variables where set
    /// but empty means something).
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    pub fn get(&self, name: &'static str) -> Option<String> {
        self.raw(name).filter(|value| !value.trim().is_empty())
    }

    pub fn or(&self, name: &'static str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError {
            variable: name,
            problem: "is required but not set".into(),
        })
    }

    pub fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError {
                variable: name,
                problem: format!("has an invalid value {raw:?}"),
            }),
        }
    }

    /// A whole number above 0.
    pub fn positive(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.parsed(name, default)? {
            0 => Err(ConfigError {
                variable: name,
                problem: "must be greater than 0".into(),
            }),
            value => Ok(value),
        }
    }

    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|raw| raw.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(raw) => match raw.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError {
                    variable: name,
                    problem: format!("must be true or false, not {raw:?}"),
                }),
            },
        }
    }
}
