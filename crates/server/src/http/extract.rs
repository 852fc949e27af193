//! Extractors for cross-cutting work: the authenticated principal, and JSON
//! bodies whose errors name the field at fault.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tribute_core::apikey::Principal;
use tribute_core::ids::{ApiKeyId, PartnerId, ProgramId};

use super::body::{RawBody, API_MAX_BODY};
use super::conversion::Viewer;
use super::error::ApiError;
use crate::AppState;

/// A JSON body. Malformed JSON, a wrong type, a missing or unknown field is a
/// 400 naming the field (`serde_path_to_error` tracks where parsing failed).
pub struct ApiJson<T>(pub T);

/// Name the field a serde error is about: its path, or the field named in
/// a "missing field `x`" / "unknown field `x`" message.
pub fn field_of(path: &str, message: &str) -> Option<String> {
    let quoted = || message.split('`').nth(1).map(str::to_owned);
    if path.contains('?') {
        // serde_path_to_error could not tell where: a syntax error.
        return None;
    }
    if message.starts_with("unknown field") {
        // The path already ends at the unknown field.
        return if path == "." {
            quoted()
        } else {
            Some(path.to_owned())
        };
    }
    if message.starts_with("missing field") {
        // The path is the object missing it.
        return quoted().map(|q| {
            if path == "." {
                q
            } else {
                format!("{path}.{q}")
            }
        });
    }
    (path != ".").then(|| path.to_owned())
}

/// Parse `bytes` as JSON into `T`, with errors naming the field (a key
/// repeated in an object is one: see `body.rs`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    super::body::check_unique_keys(bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(path_error)
}

/// Read an already parsed JSON value into `T`, with errors naming the field.
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let message = e.into_inner().to_string();
    // Strip serde's " at line 1 column 12" suffix: the field says where.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    ApiError::bad_request(field_of(&path, &message), message)
}

/// Read a request body into `T`: it must be a JSON object (serde would
/// also fill a struct from an array), and a whole number written with a
/// fraction (`3.0`) is the integer it equals, as JSON Schema counts it.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: Value = parse_json(bytes)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            None,
            "the body must be a JSON object",
        ));
    }
    whole_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        ApiError::bad_request(field_of(&path, &message), message)
    })
}

/// Largest integer an `f64` holds exactly: past it `3.0`-style numbers are
/// left as they are (and an integer field refuses them).
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// Rewrite every whole float (`42.0`, `4.2e1`) of `value` as an integer.
fn whole_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() <= EXACT_F64 {
                    // In range and whole: the conversion is exact.
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(whole_floats_to_integers),
        _ => {}
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::<API_MAX_BODY>::from_request(req, state).await?;
        parse_body(&bytes).map(ApiJson)
    }
}

/// The caller, authenticated by `Authorization: Bearer <key>`: who it
/// is, and the key's id.
pub struct Auth(pub Principal, pub ApiKeyId);

impl Auth {
    /// Admin-only operations: any other key gets 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::Admin => Ok(()),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// The partner a partner key is bound to; `None` for admins. Ingest keys
    /// may not read anything: 403.
    pub fn partner_scope(&self) -> Result<Option<(&PartnerId, &ProgramId)>, ApiError> {
        match &self.0 {
            Principal::Admin => Ok(None),
            Principal::Partner {
                partner_id,
                program_id,
            } => Ok(Some((partner_id, program_id))),
            Principal::Ingest { .. } => Err(ApiError::Forbidden),
        }
    }

    /// Who may write conversions through the API: admins and the owner's
    /// backend (an ingest key). Partner keys get 403.
    pub fn conversion_writer(&self) -> Result<Viewer, ApiError> {
        match &self.0 {
            Principal::Admin | Principal::Ingest { .. } => Ok(Viewer::Owner),
            Principal::Partner { .. } => Err(ApiError::Forbidden),
        }
    }

    /// Who reads conversions: admins all, a partner its own part; ingest
    /// keys may not read (403).
    pub fn conversion_reader(&self) -> Result<Viewer, ApiError> {
        Ok(match self.partner_scope()? {
            None => Viewer::Owner,
            Some((own, _)) => Viewer::Partner(own.clone()),
        })
    }

    /// A record looked up for this caller: missing, or another partner's,
    /// is the same 404 (`what not found`), so existence does not leak.
    pub fn own<T>(
        &self,
        what: &'static str,
        found: Option<T>,
        partner: impl Fn(&T) -> &PartnerId,
    ) -> Result<T, ApiError> {
        match found {
            Some(t) if self.can_see(partner(&t))? => Ok(t),
            _ => Err(ApiError::NotFound(what)),
        }
    }

    /// Whether this caller may see records of `partner`. Another partner's
    /// records are answered 404, never 403, so their existence does not leak.
    pub fn can_see(&self, partner: &PartnerId) -> Result<bool, ApiError> {
        Ok(match self.partner_scope()? {
            None => true,
            Some((own, _)) => own == partner,
        })
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let (principal, key) = state.caller(token).await?.ok_or(ApiError::Unauthorized)?;
        // A publishable key is readable by anyone from a web page: it may
        // only send events and pending conversions through `/collect` and
        // `/v1/*`, never use the API.
        if principal.is_publishable() {
            return Err(ApiError::Forbidden);
        }
        Ok(Auth(principal, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        nested: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        amount: i64,
    }

    fn field(json: &str) -> Option<String> {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::BadRequest { field, .. }) => field,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_missing_unknown_or_mistyped_field() {
        assert_eq!(field("{}").as_deref(), Some("name"));
        assert_eq!(field(r#"{"name": 3}"#).as_deref(), Some("name"));
        assert_eq!(
            field(r#"{"name": "a", "nmae": 1}"#).as_deref(),
            Some("nmae")
        );
        assert_eq!(
            field(r#"{"name": "a", "nested": {"amount": "x"}}"#).as_deref(),
            Some("nested.amount")
        );
        assert_eq!(field("{not json"), None);
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Counts {
        days: Option<i64>,
        ratio: Option<f64>,
    }

    #[test]
    fn a_body_reads_whole_floats_as_integers_and_keeps_fractions() {
        let read = |json: &str| parse_body::<Counts>(json.as_bytes());
        assert_eq!(
            read(r#"{"days": 30.0, "ratio": 2.0}"#).unwrap(),
            Counts {
                days: Some(30),
                ratio: Some(2.0)
            }
        );
        assert_eq!(read(r#"{"days": 3e1}"#).unwrap().days, Some(30));
        for (json, case) in [
            (r#"{"days": 30.5}"#, "a fraction"),
            (r#"{"days": 1e300}"#, "too large to be exact"),
        ] {
            match read(json) {
                Err(ApiError::BadRequest { field, .. }) => {
                    assert_eq!(field.as_deref(), Some("days"), "{case}")
                }
                other => panic!("{case}: expected a bad request, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_even_when_serde_could_fill_a_struct() {
        for json in ["[null, null]", "[]", "3", "null", "\"x\""] {
            match parse_body::<Counts>(json.as_bytes()) {
                Err(ApiError::BadRequest {
                    field: None,
                    message,
                }) => {
                    assert!(message.contains("object"), "{json}: {message}")
                }
                other => panic!("{json}: expected a bad request, got {other:?}"),
            }
        }
    }
}
