//! The shape of a Segment request: which endpoint was called, the messages
//! it carries (a batch split into its messages, the batch's `context` and
//! `sentAt` passed down to each), and the small parsers for the values
//! inside them (ids, texts, times, URL parameters).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use tribute_core::FieldError;
use url::Url;

use super::MAX_MESSAGE_BYTES;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::field_of;

/// The kinds of message Segment defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Track,
    Identify,
    Page,
    Screen,
    Alias,
    Group,
}

impl Kind {
    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "track" => Self::Track,
            "identify" => Self::Identify,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "alias" => Self::Alias,
            "group" => Self::Group,
            _ => return None,
        })
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Alias => "alias",
            Self::Group => "group",
        }
    }
}

/// Which endpoint was called: one message of a known kind, or a batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Endpoint {
    Single(Kind),
    Batch,
}

/// One message with where it sits (`batch[2].`) and its kind.
pub(super) struct Located {
    pub(super) prefix: String,
    pub(super) kind: Kind,
    pub(super) message: Message,
    /// The batch's `sentAt`, for messages without their own.
    pub(super) batch_sent_at: Option<DateTime<Utc>>,
}

/// The messages of a request, each checked for size and shape.
pub(super) fn split(value: Value, endpoint: Endpoint) -> ApiResult<Vec<Located>> {
    let Value::Object(mut top) = value else {
        return Err(ApiError::bad_request(None, "expected a JSON object"));
    };
    match endpoint {
        Endpoint::Single(kind) => {
            if let Some(t) = top.get("type").filter(|t| !t.is_null()) {
                if t.as_str() != Some(kind.as_str()) {
                    return Err(ApiError::bad_request(
                        Some("type".to_owned()),
                        format!("must be `{}` on /v1/{}", kind.as_str(), kind.as_str()),
                    ));
                }
            }
            let message: Message = from_value(Value::Object(top), "")?;
            Ok(vec![Located {
                prefix: String::new(),
                kind,
                message,
                batch_sent_at: None,
            }])
        }
        Endpoint::Batch => {
            let items = match top.remove("batch") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(ApiError::bad_request(
                        Some("batch".to_owned()),
                        "must be an array of messages",
                    ))
                }
            };
            let batch_sent_at = match top.remove("sentAt") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(parse_time("sentAt", &s).map_err(bad)?),
                Some(_) => return Err(bad(FieldError::new("sentAt", "must be an ISO 8601 time"))),
            };
            let batch_context = match top.remove("context") {
                None | Some(Value::Null) => None,
                Some(Value::Object(c)) => Some(c),
                Some(_) => {
                    return Err(ApiError::bad_request(
                        Some("context".to_owned()),
                        "must be an object",
                    ))
                }
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let prefix = format!("batch[{i}].");
                let size = serde_json::to_vec(&item).map(|v| v.len()).unwrap_or(0);
                if size > MAX_MESSAGE_BYTES {
                    return Err(ApiError::bad_request(
                        Some(format!("batch[{i}]")),
                        format!("message too large: {size} bytes, a message may be at most 32 KB"),
                    ));
                }
                let Value::Object(mut m) = item else {
                    return Err(ApiError::bad_request(
                        Some(format!("batch[{i}]")),
                        "must be a message object",
                    ));
                };
                let kind = match m.get("type") {
                    Some(Value::String(t)) => Kind::parse(t),
                    _ => None,
                }
                .ok_or_else(|| {
                    ApiError::bad_request(
                        Some(format!("{prefix}type")),
                        "must be one of track, identify, page, screen, alias, group",
                    )
                })?;
                if let Some(batch_context) = &batch_context {
                    merge_context(&mut m, batch_context, &prefix)?;
                }
                let message: Message = from_value(Value::Object(m), &prefix)?;
                out.push(Located {
                    prefix,
                    kind,
                    message,
                    batch_sent_at,
                });
            }
            Ok(out)
        }
    }
}

/// Segment merges a batch's `context` into each message's (the message's
/// own keys win).
fn merge_context(
    m: &mut Map<String, Value>,
    batch: &Map<String, Value>,
    prefix: &str,
) -> ApiResult<()> {
    match m.get_mut("context") {
        None | Some(Value::Null) => {
            m.insert("context".into(), Value::Object(batch.clone()));
        }
        Some(Value::Object(own)) => {
            for (k, v) in batch {
                own.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                Some(format!("{prefix}context")),
                "must be an object",
            ))
        }
    }
    Ok(())
}

/// Segment answers every payload it cannot take with 400, whether the JSON
/// is malformed or a value is refused.
pub(super) fn bad(e: FieldError) -> ApiError {
    ApiError::bad_request(Some(e.field), e.message)
}

/// Deserialize `value`, naming the failing field under `prefix`.
pub(super) fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = field_of(&path, &message)
            .map(|f| format!("{prefix}{f}"))
            .or_else(|| (!prefix.is_empty()).then(|| prefix.trim_end_matches('.').to_owned()));
        ApiError::bad_request(field, message)
    })
}

/// A Segment id: a string, or a number some clients send for `userId`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Id {
    Text(String),
    Number(serde_json::Number),
}

impl Id {
    fn text(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Number(n) => n.to_string(),
        }
    }
}

pub(super) fn id_text(id: Option<Id>) -> Option<String> {
    id.map(Id::text)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The parts of a Segment message Tribute uses; anything else (`integrations`,
/// `context.library`, …) is accepted and ignored, as Segment does.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Message {
    pub(super) message_id: Option<Id>,
    pub(super) anonymous_id: Option<Id>,
    pub(super) user_id: Option<Id>,
    pub(super) previous_id: Option<Id>,
    pub(super) group_id: Option<Id>,
    pub(super) event: Option<String>,
    pub(super) name: Option<String>,
    pub(super) properties: Option<Map<String, Value>>,
    pub(super) traits: Option<Map<String, Value>>,
    pub(super) context: Option<Context>,
    pub(super) timestamp: Option<String>,
    pub(super) original_timestamp: Option<String>,
    pub(super) sent_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Context {
    pub(super) traits: Option<Map<String, Value>>,
    pub(super) page: Option<PageContext>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageContext {
    pub(super) url: Option<String>,
    pub(super) search: Option<String>,
}

/// A string value of `map[key]`: strings as they are, numbers in their
/// textual form, null as absent; anything else names `field`.
pub(super) fn text_of(
    map: Option<&Map<String, Value>>,
    key: &str,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match map.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FieldError::new(field, "must be a string or a number")),
    }
}

/// A parameter of a URL's query, or of a bare query string (`?a=1`).
pub(super) fn query_param(url_or_query: &str, name: &str) -> Option<String> {
    let query = match Url::parse(url_or_query) {
        Ok(u) => u.query().map(str::to_owned),
        Err(_) => Some(url_or_query.trim_start_matches('?').to_owned()),
    }?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A time in RFC 3339 (Segment's ISO 8601 timestamps are).
pub(super) fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| FieldError::new(field, "must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z"))
}
