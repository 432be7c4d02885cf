//! `ValidatedJson<T>`: a JSON body checked against the contract before the
//! handler sees it.
//!
//! In order: the body limit (`HttpConfig::body_limit`, 413), the media type
//! (`application/json`, any parameters, else 415), well-formed JSON (400),
//! a JSON object (422). Then every problem of the body is collected and
//! reported together as one 422: one `unknown_field` per key not in
//! `T::FIELDS`, a `control_character` per text with a NUL or other control
//! character, a type error per field whose value has the wrong JSON type,
//! and every `garde` rule violation. Last, each new password
//! ([`Input::new_passwords`]) is estimated for strength on the bounded
//! blocking pool, never on the request worker (zxcvbn can take hundreds of
//! milliseconds for a hostile password), and a `weak_password` joins the
//! other violations; a full pool or an estimate past its deadline is a 503,
//! never a pass.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use futures_util::StreamExt as _;
use projects_domain::inputs::{Input, violations};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::marker::PhantomData;

use crate::{ApiError, AppState, FieldError};

/// A request body of type `T`, deserialised and validated. Use it as a
/// handler argument: `body: ValidatedJson<Registration>`, then `body.0` or
/// `body.into_inner()`.
#[derive(Debug)]
pub struct ValidatedJson<T>(pub T);

impl<T> ValidatedJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ValidatedJson<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Input + 'static> FromRequest for ValidatedJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let limit = state
            .as_ref()
            .map_or(crate::HttpConfig::default().body_limit, |state| {
                state.config.body_limit
            });
        let media_type_ok = is_json(req);
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let body_deadline = crate::client_deadline::BodyDeadline::of(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if declared_length.is_some_and(|length| length > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            if !media_type_ok {
                return Err(ApiError::UnsupportedMediaType);
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::BadRequest("the request body could not be read".into())
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            // Read in time: the handler may now take as long as it needs.
            if let Some(deadline) = &body_deadline {
                deadline.body_read();
            }
            let Checked { input, mut errors } = check::<T>(&body)?;
            if let Some(input) = &input {
                let state =
                    state.ok_or_else(|| ApiError::Internal("AppState is not registered".into()))?;
                for (field, password) in input.new_passwords() {
                    if let Some(feedback) = state.passwords.weakness(password).await? {
                        errors.push(FieldError::new(field, "weak_password", feedback));
                    }
                }
            }
            match input {
                Some(input) if errors.is_empty() => Ok(ValidatedJson(input)),
                _ => Err(ApiError::Validation(errors)),
            }
        })
    }
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(req: &HttpRequest) -> bool {
    // The usual header needs no parsing.
    if req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/json")
    {
        return true;
    }
    match req.mime_type() {
        Ok(Some(mime)) => mime.type_() == "application" && mime.subtype() == "json",
        _ => false,
    }
}

/// A body that is a JSON object, with every violation found so far, and the
/// input when it could be built (to estimate its new passwords).
struct Checked<T> {
    input: Option<T>,
    errors: Vec<FieldError>,
}

/// Parses and validates a body: an error for what stops everything (not
/// JSON, not an object); every other violation collected.
fn check<T: Input>(body: &[u8]) -> Result<Checked<T>, ApiError> {
    match plain_body::<T>(body) {
        Some(input) => Ok(validated(input, Vec::new())),
        None => check_value(body),
    }
}

/// The usual body, read straight into `T` without a `Value` tree first
/// (its map, keys and strings were most of the extractor's cost): `Some`
/// only for a JSON object whose keys are known, each once, whose strings
/// cannot hold a control character (one needs an escape `\`, DEL 0x7f or
/// a C1 control, whose UTF-8 starts with 0xc2), and that `T` reads. The full
/// path ([`check_value`]) would report nothing for such a body before the
/// rules and build the same `T`; every other body takes it.
fn plain_body<T: Input>(body: &[u8]) -> Option<T> {
    if body.iter().any(|&byte| matches!(byte, b'\\' | 0x7f | 0xc2)) {
        return None;
    }
    let KnownKeys(known, _) = serde_json::from_slice::<KnownKeys<T>>(body).ok()?;
    if !known {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// Whether a JSON object's keys are all in `T::FIELDS`, each at most once
/// (a JSON array, which a derived `Deserialize` would also read, is
/// refused: it is not an object).
struct KnownKeys<T>(bool, PhantomData<T>);

impl<'de, T: Input> Deserialize<'de> for KnownKeys<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(KnownKeys(true, PhantomData))
    }
}

impl<'de, T: Input> Visitor<'de> for KnownKeys<T> {
    type Value = Self;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = 0u64;
        // Keys without escapes are borrowed from the body.
        while let Some(key) = map.next_key::<&'de str>()? {
            map.next_value::<IgnoredAny>()?;
            match T::FIELDS.iter().position(|field| *field == key) {
                Some(index) if index < 64 && seen & (1 << index) == 0 => seen |= 1 << index,
                _ => self.0 = false,
            }
        }
        Ok(self)
    }
}

/// [`check`] through a `Value`: every problem of the body found and
/// reported together.
fn check_value<T: Input>(body: &[u8]) -> Result<Checked<T>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::BadRequest(format!(
            "the request body is not valid JSON: {} (line {}, column {})",
            json_problem(&error),
            error.line(),
            error.column()
        ))
    })?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::invalid_field(
            "body",
            "type",
            "the request body must be a JSON object",
        ));
    };
    let mut errors = Vec::new();

    let unknown: Vec<String> = object
        .keys()
        .filter(|key| !T::FIELDS.contains(&key.as_str()))
        .cloned()
        .collect();
    for key in unknown {
        object.remove(&key);
        errors.push(FieldError::new(
            key,
            "unknown_field",
            "is not a field of this resource",
        ));
    }

    for (key, value) in &object {
        let multiline = T::MULTILINE_FIELDS.contains(&key.as_str());
        if let Some(path) = control_character(key, value, multiline) {
            errors.push(FieldError::new(
                path,
                "control_character",
                "must not contain control characters",
            ));
        }
    }

    // The common case first: nothing wrong so far, and the whole object
    // deserialises (read in place, nothing cloned). Then no field on its
    // own can fail either, so the per-field probes below are skipped.
    if errors.is_empty() {
        let whole = Value::Object(object);
        if let Ok(input) = T::deserialize(&whole) {
            return Ok(validated(input, errors));
        }
        let Value::Object(back) = whole else {
            unreachable!("built as an object just above");
        };
        object = back;
    }

    // Each field on its own, so that one field's wrong type does not hide
    // the others' problems. Fields are optional in input types, so a body
    // with one field deserialises unless that field is wrong.
    let keys: Vec<String> = object.keys().cloned().collect();
    for key in keys {
        let mut probe = Map::new();
        if let Some(value) = object.get(&key) {
            probe.insert(key.clone(), value.clone());
        }
        if let Err(error) = serde_json::from_value::<T>(Value::Object(probe)) {
            let message = error.to_string();
            if message.starts_with("missing field") {
                continue;
            }
            errors.push(FieldError::new(key.clone(), "type", type_message(&message)));
            object.remove(&key);
        }
    }

    let input = match serde_json::from_value::<T>(Value::Object(object)) {
        Ok(input) => input,
        Err(error) => {
            let message = error.to_string();
            match missing_field(&message) {
                Some(field) => errors.push(FieldError::new(field, "required", "is required")),
                None if errors.is_empty() => {
                    errors.push(FieldError::new("body", "type", type_message(&message)));
                }
                None => {}
            }
            return Ok(Checked {
                input: None,
                errors,
            });
        }
    };
    Ok(validated(input, errors))
}

/// The input with the violations of its rules added to `errors`.
fn validated<T: Input>(input: T, mut errors: Vec<FieldError>) -> Checked<T> {
    if let Err(report) = input.validate() {
        errors.extend(
            violations(&report).into_iter().map(|violation| {
                FieldError::new(violation.field, violation.code, violation.message)
            }),
        );
    }
    Checked {
        input: Some(input),
        errors,
    }
}

/// The path of the first string under `value` holding a control character
/// (line breaks and tabs are allowed in multi-line fields).
fn control_character(path: &str, value: &Value, multiline: bool) -> Option<String> {
    match value {
        Value::String(text) => text
            .chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
            .then(|| path.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            control_character(&format!("{path}[{index}]"), item, multiline)
        }),
        Value::Object(fields) => fields
            .iter()
            .find_map(|(key, item)| control_character(&format!("{path}.{key}"), item, multiline)),
        _ => None,
    }
}

/// serde's messages quote the offending value (`invalid type: string
/// "hunter2", expected …`); only the expectation is shown, so that a
/// password sent with the wrong type is never echoed.
fn type_message(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    match message.rsplit_once("expected ") {
        Some((_, expected)) => format!("must be {expected}"),
        None => "has the wrong type".to_owned(),
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// What is wrong with malformed JSON, without quoting the body.
fn json_problem(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Io => "it could not be read",
        serde_json::error::Category::Data => "unexpected data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projects_domain::inputs::{NewProject, ProjectPatch, Registration, UserPatch};

    /// The checks of the extractor short of the strength estimate.
    fn parse<T: Input>(body: &[u8]) -> Result<T, ApiError> {
        match check::<T>(body)? {
            Checked {
                input: Some(input),
                errors,
            } if errors.is_empty() => Ok(input),
            Checked { errors, .. } => Err(ApiError::Validation(errors)),
        }
    }

    fn errors_of<T: Input + std::fmt::Debug>(body: &str) -> Vec<(String, String)> {
        match parse::<T>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => {
                errors.into_iter().map(|e| (e.field, e.code)).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let found = errors_of::<Registration>(
            r#"{"email":"nope","name":7,"password":"x","role":"admin","id":1}"#,
        );
        for expected in [
            ("role", "unknown_field"),
            ("id", "unknown_field"),
            ("name", "type"),
            ("email", "email"),
            ("password", "length"),
        ] {
            assert!(
                found.contains(&(expected.0.into(), expected.1.into())),
                "{expected:?} missing from {found:?}"
            );
        }
    }

    #[test]
    fn missing_fields_are_required() {
        let found = errors_of::<Registration>("{}");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().all(|(_, code)| code == "required"));
    }

    #[test]
    fn control_characters_are_refused() {
        let found = errors_of::<UserPatch>(r#"{"name":"Ada\u0000"}"#);
        assert_eq!(found, vec![("name".into(), "control_character".into())]);
        let found = errors_of::<UserPatch>(r#"{"name":"Ada\nLovelace"}"#);
        assert_eq!(found, vec![("name".into(), "control_character".into())]);
    }

    #[test]
    fn type_errors_do_not_echo_values() {
        let error = parse::<Registration>(
            br#"{"email":"a@b.example","name":"A","password":["hunter2hunter2"]}"#,
        )
        .expect_err("invalid");
        let ApiError::Validation(errors) = error else {
            panic!("validation")
        };
        assert!(!format!("{errors:?}").contains("hunter2"));
        let found = errors_of::<UserPatch>(r#"{"role":"root"}"#);
        assert_eq!(found, vec![("role".into(), "type".into())]);
    }

    #[test]
    fn malformed_json_and_non_objects() {
        assert!(matches!(
            parse::<UserPatch>(b"{"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<UserPatch>(b"[]"),
            Err(ApiError::Validation(_))
        ));
    }

    fn any_json_leaf() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,40}".prop_map(Value::from),
            proptest::collection::vec("\\PC{0,8}", 0..3).prop_map(Value::from),
        ]
    }

    /// Every invariant of the extractor's checks for one input type.
    fn holds_for<T: Input>(body: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            proptest::prop_assert!(matches!(check::<T>(body), Err(ApiError::BadRequest(_))));
            return Ok(());
        };
        match (value, check::<T>(body)) {
            (Value::Object(object), Ok(Checked { input, errors })) => {
                for key in object
                    .keys()
                    .filter(|key| !T::FIELDS.contains(&key.as_str()))
                {
                    let reported = errors
                        .iter()
                        .filter(|e| &e.field == key && e.code == "unknown_field")
                        .count();
                    proptest::prop_assert_eq!(reported, 1, "{} in {:?}", key, errors);
                }
                proptest::prop_assert!(input.is_some() || !errors.is_empty());
            }
            (Value::Object(_), Err(error)) => {
                proptest::prop_assert!(false, "an object must be checked, not refused: {error:?}");
            }
            (_, result) => {
                proptest::prop_assert!(matches!(result, Err(ApiError::Validation(_))));
            }
        }
        Ok(())
    }

    /// A body read the short way ([`plain_body`]) is read the same way
    /// the full way, with nothing reported before the rules; and the
    /// bodies the short way must leave to the full one are left to it.
    fn same_either_way<T: Input + std::fmt::Debug>(
        body: &[u8],
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        if let Some(short) = plain_body::<T>(body) {
            let read = format!("{short:?}");
            let rules = format!("{:?}", validated(short, Vec::new()).errors);
            match check_value::<T>(body) {
                Ok(Checked {
                    input: Some(full),
                    errors,
                }) => {
                    proptest::prop_assert_eq!(format!("{full:?}"), read);
                    proptest::prop_assert_eq!(format!("{errors:?}"), rules);
                }
                other => proptest::prop_assert!(
                    false,
                    "the full path refused what the short one read: {:?}",
                    other.err()
                ),
            }
        }
        Ok(())
    }

    #[test]
    fn the_short_way_leaves_what_it_cannot_judge_to_the_full_one() {
        for body in [
            &br#"{"name":"Apollo","name":"Gemini"}"#[..],
            br#"{"name":"Apollo","role":"admin"}"#,
            br#"["Apollo",null,"active"]"#,
            br#"{"name":"Apo\u006clo"}"#,
            br#"{"n\u0061me":"Apollo"}"#,
            "{\"name\":\"Apollo\u{7f}\"}".as_bytes(),
            "{\"name\":\"Apollo\u{85}\"}".as_bytes(),
            br#"{"name":"Apollo"} x"#,
            br#"{"name":7}"#,
        ] {
            assert!(
                plain_body::<NewProject>(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let read = plain_body::<NewProject>(br#" {"name":" Apollo ","status":"archived"} "#)
            .expect("a plain body");
        assert_eq!(read.name.as_deref(), Some("Apollo"));
        assert_eq!(read.status, projects_domain::ProjectStatus::Archived);
        let patch = plain_body::<ProjectPatch>(br#"{"description":null}"#).expect("a plain body");
        assert_eq!(patch.description, Some(None));
        // Duplicates and unknown keys are still reported by the full path.
        assert_eq!(
            errors_of::<NewProject>(r#"{"name":"Apollo","id":1}"#),
            vec![("id".to_owned(), "unknown_field".to_owned())]
        );
    }

    proptest::proptest! {
        /// Objects of known and unknown keys with values of any type, as
        /// JSON text: the short way agrees with the full way.
        #[test]
        fn fuzz_the_short_way_reads_what_the_full_way_reads(
            fields in proptest::collection::vec(
                ("name|description|status|email|password|role|[a-z_]{1,10}", any_json_leaf()),
                0..5,
            ),
            status in "active|archived|completed|other",
        ) {
            let mut object: Map<String, Value> = fields.into_iter().collect();
            if object.contains_key("status") {
                object.insert("status".into(), Value::from(status));
            }
            let body = serde_json::to_vec(&Value::Object(object)).expect("serialises");
            same_either_way::<NewProject>(&body)?;
            same_either_way::<ProjectPatch>(&body)?;
            same_either_way::<Registration>(&body)?;
            same_either_way::<UserPatch>(&body)?;
        }

        /// Any bytes as a body: the short way never disagrees.
        #[test]
        fn fuzz_any_body_reads_the_same_either_way(body in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            same_either_way::<NewProject>(&body)?;
            same_either_way::<ProjectPatch>(&body)?;
        }

        /// Any bytes as a body: a decision (400 or the collected
        /// violations), never a panic, for every input type.
        #[test]
        fn fuzz_any_body_gets_a_decision(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            holds_for::<Registration>(&body)?;
            holds_for::<UserPatch>(&body)?;
            holds_for::<projects_domain::inputs::NewProject>(&body)?;
            holds_for::<projects_domain::inputs::ProjectPatch>(&body)?;
        }

        /// JSON objects with known and unknown keys of any type: each
        /// unknown key is reported once, and a body without violations
        /// always yields its input.
        #[test]
        fn fuzz_objects_report_every_unknown_field(
            fields in proptest::collection::vec(
                ("name|description|status|email|password|role|[a-z_]{1,10}|\\PC{0,6}", any_json_leaf()),
                0..7,
            )
        ) {
            let object: Map<String, Value> = fields.into_iter().collect();
            let body = serde_json::to_vec(&Value::Object(object)).expect("serialises");
            holds_for::<Registration>(&body)?;
            holds_for::<UserPatch>(&body)?;
            holds_for::<projects_domain::inputs::NewProject>(&body)?;
            holds_for::<projects_domain::inputs::ProjectPatch>(&body)?;
        }
    }
}
