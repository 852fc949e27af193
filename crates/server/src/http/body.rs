//! Request bodies: read within a limit (413 naming it), decompressed where
//! SDKs compress, and refused when a JSON object repeats a key.
//!
//! Limits count the bytes a handler sees: behind [`decompression`] those are
//! the *decompressed* bytes, and reading stops at the limit, so a small gzip
//! body that would inflate to gigabytes costs at most the limit in memory.
//!
//! Repeated keys are refused because parsers disagree on them (serde keeps
//! the last, others the first): `{"status": "pending", "status": "approved"}`
//! must not mean one thing to a proxy that checked it and another to us.

use std::collections::HashSet;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use tower_http::decompression::RequestDecompressionLayer;

use super::error::{ApiError, ApiResult};

/// Largest body of the JSON API (axum's default, now stated).
pub const API_MAX_BODY: usize = 2 * 1024 * 1024;

/// A request body of at most `MAX` bytes; a longer one is a 413 naming the limit.
pub struct RawBody<const MAX: usize = API_MAX_BODY>(pub Bytes);

impl<S: Send + Sync, const MAX: usize> FromRequest<S> for RawBody<MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        read(req.into_body(), MAX).await.map(RawBody)
    }
}

/// Read `body`, stopping with a 413 as soon as it passes `max` bytes.
pub async fn read(body: Body, max: usize) -> ApiResult<Bytes> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if is_length_limit(e.as_ref()) => Err(too_large(max)),
        Err(e) => Err(ApiError::bad_request(
            None,
            format!("the body could not be read: {e}"),
        )),
    }
}

/// Whether `e` (or what it wraps) is the limit being reached: axum wraps
/// body errors, so the limit error may sit anywhere in the source chain.
fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The 413 for a body over `max` bytes.
pub fn too_large(max: usize) -> ApiError {
    ApiError::TooLarge {
        message: format!("the body may be at most {}", human(max)),
    }
}

/// `65536` → `64 KiB`, for messages.
fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1024 * 1024 && b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    }
}

/// Accept `Content-Encoding: gzip` and `deflate` (what Segment and
/// RudderStack SDKs send). Other encodings pass through untouched, so the
/// handler answers them with its own JSON error rather than an empty 415.
pub fn decompression() -> RequestDecompressionLayer {
    RequestDecompressionLayer::new()
        .gzip(true)
        .deflate(true)
        .pass_through_unaccepted(true)
}

/// Refuse JSON in which an object repeats a key: a 400 naming the key
/// (`batch[1].properties.total`). Malformed JSON passes here; the parse that
/// follows reports it with its own message.
pub fn check_unique_keys(bytes: &[u8]) -> ApiResult<()> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let Err(e) = serde_path_to_error::deserialize::<_, Unique>(de) else {
        return Ok(());
    };
    let path = e.path().to_string();
    let message = e.into_inner().to_string();
    let Some(key) = message
        .strip_prefix(DUPLICATE)
        .and_then(|rest| rest.split('`').next())
    else {
        return Ok(());
    };
    let field = if path == "." {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    };
    Err(ApiError::bad_request(
        Some(field),
        format!("duplicate key `{key}`: each key may appear once in an object"),
    ))
}

const DUPLICATE: &str = "duplicate key `";

/// Any JSON value, checked for repeated keys and otherwise thrown away.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(A::Error::custom(format!("{DUPLICATE}{key}`")));
            }
            map.next_value::<Unique>()?;
            seen.insert(key);
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(json: &str) -> Option<String> {
        match check_unique_keys(json.as_bytes()) {
            Ok(()) => None,
            Err(ApiError::BadRequest { field, .. }) => field,
            Err(other) => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn repeated_keys_are_named_with_their_path() {
        assert_eq!(field(r#"{"a": 1, "a": 2}"#).as_deref(), Some("a"));
        assert_eq!(
            field(r#"{"batch": [{"x": 1}, {"p": {"t": 1, "t": 2}}]}"#).as_deref(),
            Some("batch[1].p.t")
        );
        assert_eq!(field(r#"{"a": {"b": 1}, "c": {"b": 2}}"#), None);
        assert_eq!(field(r#"[{"a": 1}, {"a": 1}]"#), None);
        assert_eq!(
            field("{not json"),
            None,
            "syntax errors are left to the parse"
        );
    }

    #[test]
    fn limits_are_named_in_readable_units() {
        assert_eq!(human(64 * 1024), "64 KiB");
        assert_eq!(human(2 * 1024 * 1024), "2 MiB");
        assert_eq!(human(1000), "1000 bytes");
    }
}
