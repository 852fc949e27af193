//! Segment-compatible ingestion: `POST /v1/track`, `/v1/identify`,
//! `/v1/page`, `/v1/screen`, `/v1/alias`, `/v1/group` and `/v1/batch`, as
//! Segment's HTTP Tracking API defines them, so existing Segment and
//! RudderStack SDKs send to Tribute by changing only their host.
//!
//! The write key is a Tribute `ingest` key bound to a program, sent as the
//! HTTP Basic username (password empty), as the SDKs do; `writeKey` in the
//! body is accepted when no `Authorization` header is sent.
//!
//! Every message of a request is checked before anything is written, so a
//! bad message refuses the whole request and changes nothing. Then the
//! events are written in one group commit (identities stitched, leads
//! counted), and only then the conversions are recorded: an `identify` in
//! the same batch as the `Order Completed` it explains is already known when
//! the conversion looks for its person. `messageId` is the events' external
//! id and the order id (else the `messageId`) the conversion's, so a batch
//! sent twice writes nothing the second time.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tribute_core::attribution::TouchKind;
use tribute_core::coupon::CouponCode;
use tribute_core::identity::{Identifiers, RawIdentifiers};
use tribute_core::ids::{random_base62, EventId, PartnerId};
use tribute_core::link::CLICK_ID_PARAM;
use tribute_core::money::Currency;
use tribute_core::program::Program;
use tribute_core::tracking::{
    parse_decimal_minor, Event, EventType, Product, TrackMeaning, TrackingSettings,
};
use tribute_core::FieldError;
use tribute_store::Principal;
use url::Url;

use super::conversions::{record, ConversionInput};
use super::{ingest_program, parse_click_id, parse_occurred_at, resolve_via};
use crate::error::{ApiError, ApiResult};
use crate::extract::field_of;
use crate::AppState;

/// Largest message Segment accepts (one call, or one message of a batch).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest `/v1/batch` request Segment accepts.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

/// Longest `messageId` kept: derived external ids add a short suffix and
/// must stay within the store's 200 characters.
const MAX_MESSAGE_ID: usize = 180;

/// The query parameter naming a partner on a landing URL.
const VIA_PARAM: &str = "via";

pub fn router() -> Router<AppState> {
    let single = DefaultBodyLimit::max(MAX_MESSAGE_BYTES);
    Router::new()
        .route("/v1/track", post(track).layer(single))
        .route("/v1/identify", post(identify).layer(single))
        .route("/v1/page", post(page).layer(single))
        .route("/v1/screen", post(screen).layer(single))
        .route("/v1/alias", post(alias).layer(single))
        .route("/v1/group", post(group).layer(single))
        .route(
            "/v1/batch",
            post(batch).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)),
        )
}

/// The kinds of message Segment defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Track,
    Identify,
    Page,
    Screen,
    Alias,
    Group,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
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

    fn as_str(self) -> &'static str {
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
enum Endpoint {
    Single(Kind),
    Batch,
}

type Body = Result<Bytes, BytesRejection>;
type Success = Json<Value>;

async fn track(s: State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Success> {
    receive(s, h, b, Endpoint::Single(Kind::Track)).await
}

async fn identify(s: State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Success> {
    receive(s, h, b, Endpoint::Single(Kind::Identify)).await
}

async fn page(s: State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Success> {
    receive(s, h, b, Endpoint::Single(Kind::Page)).await
}

async fn screen(s: State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Success> {
    receive(s, h, b, Endpoint::Single(Kind::Screen)).await
}

async fn alias(s: State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Success> {
    receive(s, h, b, Endpoint::Single(Kind::Alias)).await
}

async fn group(s: State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Success> {
    receive(s, h, b, Endpoint::Single(Kind::Group)).await
}

async fn batch(s: State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Success> {
    receive(s, h, b, Endpoint::Batch).await
}

/// Authenticate, check every message, write events, then record conversions.
#[tracing::instrument(skip_all, fields(endpoint = ?endpoint))]
async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
    endpoint: Endpoint,
) -> ApiResult<Success> {
    let limit = match endpoint {
        Endpoint::Single(_) => "a message may be at most 32 KB",
        Endpoint::Batch => "a batch request may be at most 500 KB",
    };
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::bad_request(None, format!("request too large: {limit}"))
        } else {
            ApiError::bad_request(None, e.body_text())
        }
    })?;
    if headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(ApiError::bad_request(
            Some("Content-Encoding".to_owned()),
            "compressed bodies are not supported: send plain JSON (gzip off)",
        ));
    }
    let header_key = write_key_from_headers(&headers)?;
    let parsed: Result<Value, ApiError> = parse_value(&body);
    let key = match header_key {
        Some(k) => k,
        // No header: the key may be in the body, as some SDKs also send it.
        None => parsed
            .as_ref()
            .ok()
            .and_then(|v| v.get("writeKey"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .ok_or(ApiError::Unauthorized)?,
    };
    let program = write_key_program(&state, &key).await?;
    let value = parsed?;
    let (settings, _) = state
        .store
        .program_tracking(&program.id, || random_base62(32))
        .await?;
    let now = Utc::now();
    let messages = split(value, endpoint)?;
    let mut ctx = Ctx {
        state: &state,
        program: &program,
        settings: &settings,
        now,
        events: Vec::new(),
        conversions: Vec::new(),
    };
    for m in messages {
        ctx.message(m).await?;
    }
    let Ctx {
        events,
        conversions,
        ..
    } = ctx;
    let total = events.len();
    let inserted = state.events.write(events).await?;
    tracing::debug!(
        program = %program.id,
        events = total,
        inserted = inserted.len(),
        conversions = conversions.len(),
        "segment messages accepted"
    );
    for input in conversions {
        record(&state, &program, input, None).await?;
    }
    Ok(Json(json!({"success": true})))
}

fn parse_value(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(None, "the body is empty"));
    }
    serde_json::from_slice(body).map_err(|e| {
        let message = e.to_string();
        ApiError::bad_request(None, format!("malformed JSON: {message}"))
    })
}

/// The write key of `Authorization: Basic base64(key:)` (or a Bearer key).
fn write_key_from_headers(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
    let rest = rest.trim();
    let key = if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| ApiError::Unauthorized)?;
        let decoded = String::from_utf8(decoded).map_err(|_| ApiError::Unauthorized)?;
        // The username is the write key; Segment leaves the password empty.
        decoded
            .split_once(':')
            .map_or(decoded.as_str(), |(user, _)| user)
            .to_owned()
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else {
        return Err(ApiError::Unauthorized);
    };
    if key.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    Ok(Some(key))
}

/// The program a write key sends to. Only ingest keys bound to a program
/// qualify: a Segment message has nowhere to name a program, and an admin
/// key must not be pasted into front-end code.
async fn write_key_program(state: &AppState, key: &str) -> ApiResult<Program> {
    let principal = state.principal(key).await?.ok_or(ApiError::Unauthorized)?;
    match principal {
        Principal::Ingest {
            program_id: Some(_),
        } => ingest_program(state, &principal, None).await,
        _ => Err(ApiError::Forbidden),
    }
}

/// One message with where it sits (`batch[2].`) and its kind.
struct Located {
    prefix: String,
    kind: Kind,
    message: Message,
    /// The batch's `sentAt`, for messages without their own.
    batch_sent_at: Option<DateTime<Utc>>,
}

/// The messages of a request, each checked for size and shape.
fn split(value: Value, endpoint: Endpoint) -> ApiResult<Vec<Located>> {
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
fn bad(e: FieldError) -> ApiError {
    ApiError::bad_request(Some(e.field), e.message)
}

/// Deserialize `value`, naming the failing field under `prefix`.
fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> ApiResult<T> {
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
enum Id {
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

fn id_text(id: Option<Id>) -> Option<String> {
    id.map(Id::text)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The parts of a Segment message Tribute uses; anything else (`integrations`,
/// `context.library`, …) is accepted and ignored, as Segment does.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    message_id: Option<Id>,
    anonymous_id: Option<Id>,
    user_id: Option<Id>,
    previous_id: Option<Id>,
    group_id: Option<Id>,
    event: Option<String>,
    name: Option<String>,
    properties: Option<Map<String, Value>>,
    traits: Option<Map<String, Value>>,
    context: Option<Context>,
    timestamp: Option<String>,
    original_timestamp: Option<String>,
    sent_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Context {
    traits: Option<Map<String, Value>>,
    page: Option<PageContext>,
}

#[derive(Debug, Default, Deserialize)]
struct PageContext {
    url: Option<String>,
    search: Option<String>,
}

/// A request being turned into events and conversions.
struct Ctx<'a> {
    state: &'a AppState,
    program: &'a Program,
    settings: &'a TrackingSettings,
    now: DateTime<Utc>,
    events: Vec<Event>,
    conversions: Vec<ConversionInput>,
}

/// A value and the field of the message (Segment naming) it came from.
type Sourced = Option<(String, String)>;

/// Identity fields of a message, each with the field it came from.
#[derive(Default)]
struct RawIds {
    anonymous_id: Sourced,
    user_id: Sourced,
    email: Sourced,
    phone: Sourced,
}

impl RawIds {
    fn parse(&self) -> Result<Identifiers, FieldError> {
        let value = |s: &Sourced| s.as_ref().map(|(_, v)| v.clone());
        let field = |s: &Sourced, default: &str| {
            s.as_ref()
                .map_or_else(|| default.to_owned(), |(f, _)| f.clone())
        };
        RawIdentifiers {
            anonymous_id: value(&self.anonymous_id),
            user_id: value(&self.user_id),
            email: value(&self.email),
            phone: value(&self.phone),
            ..Default::default()
        }
        .parse()
        .map_err(|e| {
            let at = match e.field.as_str() {
                "anonymous_id" => field(&self.anonymous_id, "anonymousId"),
                "user_id" => field(&self.user_id, "userId"),
                "email" => field(&self.email, "email"),
                "phone" => field(&self.phone, "phone"),
                other => other.to_owned(),
            };
            e.at(at)
        })
    }
}

/// A string value of `map[key]`: strings as they are, numbers in their
/// textual form, null as absent; anything else names `field`.
fn text_of(
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
fn query_param(url_or_query: &str, name: &str) -> Option<String> {
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
fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| FieldError::new(field, "must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z"))
}

/// A track event or page name: trimmed, at most 200 characters.
fn event_name(v: Option<String>, field: &str) -> Result<Option<String>, FieldError> {
    match v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(n) if n.len() > 200 => Err(FieldError::new(field, "must be at most 200 characters")),
        other => Ok(other),
    }
}

/// Copy `map` without contact details in clear (unless the program keeps them).
fn scrub(map: Option<Map<String, Value>>, keep_email: bool) -> Map<String, Value> {
    let mut map = map.unwrap_or_default();
    if !keep_email {
        map.remove("email");
    }
    map.remove("phone");
    map
}

impl Ctx<'_> {
    /// Check one message and add what it means to the plan.
    async fn message(&mut self, located: Located) -> ApiResult<()> {
        let Located {
            prefix,
            kind,
            message: m,
            batch_sent_at,
        } = located;
        // Every field is named from the message; the prefix says which one.
        let at = |e: FieldError| bad(FieldError::new(format!("{prefix}{}", e.field), e.message));

        let message_id = id_text(m.message_id);
        if message_id
            .as_ref()
            .is_some_and(|id| id.len() > MAX_MESSAGE_ID)
        {
            return Err(at(FieldError::new(
                "messageId",
                format!("must be at most {MAX_MESSAGE_ID} characters"),
            )));
        }
        let occurred_at = self
            .occurred_at(
                m.timestamp.as_deref(),
                m.original_timestamp.as_deref(),
                m.sent_at.as_deref(),
                batch_sent_at,
            )
            .map_err(at)?;

        let context = m.context.unwrap_or_default();
        let page = context.page.unwrap_or_default();
        let traits_of = |key: &str| -> Result<Sourced, FieldError> {
            if kind == Kind::Identify {
                let field = format!("traits.{key}");
                if let Some(v) = text_of(m.traits.as_ref(), key, &field)? {
                    return Ok(Some((field, v)));
                }
            }
            let field = format!("context.traits.{key}");
            Ok(text_of(context.traits.as_ref(), key, &field)?.map(|v| (field, v)))
        };
        let mut email = traits_of("email").map_err(at)?;
        let phone = traits_of("phone").map_err(at)?;
        if email.is_none() && kind == Kind::Track {
            email = text_of(m.properties.as_ref(), "email", "properties.email")
                .map_err(at)?
                .map(|v| ("properties.email".to_owned(), v));
        }
        let ids = RawIds {
            anonymous_id: id_text(m.anonymous_id).map(|v| ("anonymousId".to_owned(), v)),
            user_id: id_text(m.user_id).map(|v| ("userId".to_owned(), v)),
            email,
            phone,
        };

        // Landing URLs: the page's own (`properties.url` of a page call),
        // then the context's. A malformed `tid` in a URL is ignored (visitors
        // edit URLs); an explicit `properties.tid` must be well formed.
        let mut urls: Vec<String> = Vec::new();
        if matches!(kind, Kind::Page | Kind::Screen) {
            if let Some(u) = text_of(m.properties.as_ref(), "url", "properties.url").map_err(at)? {
                urls.push(u);
            }
        }
        urls.extend(page.url);
        urls.extend(page.search);
        let click_id =
            match text_of(m.properties.as_ref(), CLICK_ID_PARAM, "properties.tid").map_err(at)? {
                Some(tid) => parse_click_id("properties.tid", Some(&tid)).map_err(at)?,
                None => urls
                    .iter()
                    .filter_map(|u| query_param(u, CLICK_ID_PARAM))
                    .find_map(|tid| parse_click_id("tid", Some(&tid)).ok().flatten()),
            };
        let mut partner: Option<(PartnerId, TouchKind)> = None;
        if let Some(via) = urls.iter().find_map(|u| query_param(u, VIA_PARAM)) {
            // A `via` naming nobody is ignored, as the snippet does.
            if let Some(pid) = resolve_via(self.state, &self.program.id, &via).await? {
                partner = Some((pid, TouchKind::Via));
            }
        }

        let keep_email = self.settings.store_email;
        let base = Event {
            id: EventId::generate(),
            program_id: self.program.id.clone(),
            external_id: message_id.clone(),
            event_type: EventType::Custom,
            name: None,
            ids: Identifiers::default(),
            click_id: click_id.clone(),
            partner,
            occurred_at,
            received_at: self.now,
            properties: Value::Object(Map::new()),
        };
        // Every call but alias names its person by userId or anonymousId.
        let person = |ids: &RawIds| -> Result<Identifiers, FieldError> {
            if ids.user_id.is_none() && ids.anonymous_id.is_none() {
                return Err(FieldError::new(
                    "userId",
                    "userId or anonymousId is required",
                ));
            }
            ids.parse()
        };

        match kind {
            Kind::Alias => {
                let user = ids
                    .user_id
                    .clone()
                    .ok_or_else(|| at(FieldError::new("userId", "is required on an alias")))?;
                let previous = id_text(m.previous_id)
                    .map(|v| ("previousId".to_owned(), v))
                    .ok_or_else(|| at(FieldError::new("previousId", "is required on an alias")))?;
                // `previousId` is an anonymous id or an earlier user id; which
                // one, the message does not say. It is linked under both, so a
                // later message carrying it either way finds the same person.
                let mut links = vec![
                    (None, Some(previous.clone()), Some(user.clone())),
                    (
                        Some("previousId"),
                        Some(previous.clone()),
                        Some(previous.clone()),
                    ),
                ];
                if let Some(anon) = ids.anonymous_id.clone().filter(|a| a.1 != previous.1) {
                    links.push((Some("anonymousId"), Some(anon), Some(user.clone())));
                }
                for (suffix, anonymous_id, user_id) in links {
                    let parsed = RawIds {
                        anonymous_id,
                        user_id,
                        ..Default::default()
                    }
                    .parse()
                    .map_err(at)?;
                    self.events.push(Event {
                        id: EventId::generate(),
                        event_type: EventType::Identify,
                        name: Some("alias".into()),
                        // Each link of one alias is its own event, each
                        // idempotent by the messageId.
                        external_id: match suffix {
                            None => message_id.clone(),
                            Some(s) => message_id.as_ref().map(|id| format!("{id}:{s}")),
                        },
                        ids: parsed,
                        ..base.clone()
                    });
                }
            }
            Kind::Identify => {
                self.events.push(Event {
                    event_type: EventType::Identify,
                    name: Some("identify".into()),
                    ids: person(&ids).map_err(at)?,
                    properties: Value::Object(scrub(m.traits, keep_email)),
                    ..base
                });
            }
            Kind::Group => {
                self.events.push(Event {
                    event_type: EventType::Identify,
                    name: Some("group".into()),
                    ids: person(&ids).map_err(at)?,
                    properties: json!({
                        "groupId": id_text(m.group_id),
                        "traits": scrub(m.traits, keep_email),
                    }),
                    ..base
                });
            }
            Kind::Page | Kind::Screen => {
                let mut props = scrub(m.properties, keep_email);
                if kind == Kind::Screen {
                    props.insert("screen".into(), Value::Bool(true));
                }
                self.events.push(Event {
                    event_type: EventType::PageView,
                    name: event_name(m.name, "name").map_err(at)?,
                    ids: person(&ids).map_err(at)?,
                    properties: Value::Object(props),
                    ..base
                });
            }
            Kind::Track => {
                let event = event_name(m.event, "event")
                    .map_err(at)?
                    .ok_or_else(|| at(FieldError::new("event", "is required on a track")))?;
                let parsed = person(&ids).map_err(at)?;
                let meaning = self.settings.meaning(&event);
                if meaning == TrackMeaning::Conversion {
                    let input = self
                        .conversion(
                            m.properties.as_ref(),
                            &ids,
                            click_id,
                            occurred_at,
                            message_id,
                        )
                        .map_err(at)?;
                    self.conversions.push(input);
                }
                self.events.push(Event {
                    event_type: match meaning {
                        TrackMeaning::Lead => EventType::Lead,
                        // The conversion itself is recorded apart; the track
                        // stays visible as an event.
                        TrackMeaning::Conversion | TrackMeaning::Custom => EventType::Custom,
                    },
                    name: Some(event),
                    ids: parsed,
                    properties: Value::Object(scrub(m.properties, keep_email)),
                    ..base
                });
            }
        }
        Ok(())
    }

    /// When the message happened, corrected for the client's clock as
    /// Segment does: `receivedAt - (sentAt - timestamp)`. Without `sentAt`
    /// the time is taken as given (at most five minutes ahead).
    fn occurred_at(
        &self,
        timestamp: Option<&str>,
        original_timestamp: Option<&str>,
        sent_at: Option<&str>,
        batch_sent_at: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, FieldError> {
        let (field, base) = match (timestamp, original_timestamp) {
            (Some(t), _) => ("timestamp", t),
            (None, Some(t)) => ("originalTimestamp", t),
            (None, None) => return Ok(self.now),
        };
        let sent = match sent_at {
            Some(s) => Some(parse_time("sentAt", s)?),
            None => batch_sent_at,
        };
        // "In the future" is judged by the client's own clock when the
        // client said what that clock read when it sent.
        let at = parse_occurred_at(field, Some(base), sent.unwrap_or(self.now))?;
        Ok(match sent {
            Some(sent) => at + (self.now - sent),
            None => at,
        })
    }

    /// The conversion an `Order Completed` (or any mapped) track records.
    fn conversion(
        &self,
        props: Option<&Map<String, Value>>,
        ids: &RawIds,
        click_id: Option<String>,
        occurred_at: DateTime<Utc>,
        message_id: Option<String>,
    ) -> Result<ConversionInput, FieldError> {
        let currency = match text_of(props, "currency", "properties.currency")? {
            None => self.program.settings.currency,
            Some(c) => {
                let c = Currency::parse(&c.to_ascii_uppercase())
                    .map_err(|e| e.at("properties.currency"))?;
                if c != self.program.settings.currency {
                    return Err(FieldError::new(
                        "properties.currency",
                        format!(
                            "is {c} but the program is in {} and no exchange rate is configured",
                            self.program.settings.currency
                        ),
                    ));
                }
                c
            }
        };
        let exponent = currency.exponent();
        let products = self.products(props, exponent)?;
        let value = match (
            text_of(props, "revenue", "properties.revenue")?,
            text_of(props, "total", "properties.total")?,
        ) {
            (Some(v), _) => parse_decimal_minor("properties.revenue", &v, exponent)?,
            (None, Some(v)) => parse_decimal_minor("properties.total", &v, exponent)?,
            // Neither: what the lines add up to.
            (None, None) => products
                .iter()
                .try_fold(0i64, |sum, p| sum.checked_add(p.amount))
                .ok_or_else(|| FieldError::new("properties.products", "amounts overflow"))?,
        };
        if value < 0 {
            let field = if props.is_some_and(|p| p.contains_key("revenue")) {
                "properties.revenue"
            } else {
                "properties.total"
            };
            return Err(FieldError::new(
                field,
                "must not be negative (refunds reverse a conversion)",
            ));
        }
        let external_id = match text_of(props, "order_id", "properties.order_id")? {
            Some(o) if o.len() > 200 => {
                return Err(FieldError::new(
                    "properties.order_id",
                    "must be at most 200 characters",
                ))
            }
            Some(o) => Some(o),
            None => message_id,
        };
        let coupon = match props.and_then(|p| p.get("coupon")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(
                CouponCode::parse(s)
                    .map_err(|e| e.at("properties.coupon"))?
                    .as_str()
                    .to_owned(),
            ),
            Some(_) => return Err(FieldError::new("properties.coupon", "must be a string")),
        };
        let value_of = |s: &Sourced| s.as_ref().map(|(_, v)| v.clone());
        Ok(ConversionInput {
            external_id,
            value,
            currency: currency.to_string(),
            products,
            anonymous_id: value_of(&ids.anonymous_id),
            user_id: value_of(&ids.user_id),
            email: value_of(&ids.email),
            phone: value_of(&ids.phone),
            click_id,
            coupon,
            occurred_at: Some(occurred_at.to_rfc3339()),
            ..Default::default()
        })
    }

    /// `properties.products[]` (Segment's e-commerce spec) as conversion lines.
    fn products(
        &self,
        props: Option<&Map<String, Value>>,
        exponent: u8,
    ) -> Result<Vec<Product>, FieldError> {
        let items = match props.and_then(|p| p.get("products")) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(FieldError::new("properties.products", "must be an array")),
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = |f: &str| format!("properties.products[{i}].{f}");
            let Value::Object(line) = item else {
                return Err(FieldError::new(
                    format!("properties.products[{i}]"),
                    "must be an object",
                ));
            };
            let line = Some(line);
            let sku = match text_of(line, "sku", &at("sku"))? {
                Some(s) => s,
                None => text_of(line, "product_id", &at("product_id"))?.ok_or_else(|| {
                    FieldError::new(at("sku"), "a product needs a sku or product_id")
                })?,
            };
            let quantity = match line.and_then(|l| l.get("quantity")) {
                None | Some(Value::Null) => 1,
                Some(Value::Number(n)) => n
                    .as_i64()
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                            .map(|f| f as i64)
                    })
                    .ok_or_else(|| FieldError::new(at("quantity"), "must be a whole number"))?,
                Some(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map_err(|_| FieldError::new(at("quantity"), "must be a whole number"))?,
                Some(_) => return Err(FieldError::new(at("quantity"), "must be a whole number")),
            };
            let price = match text_of(line, "price", &at("price"))? {
                None => 0,
                Some(p) => parse_decimal_minor(&at("price"), &p, exponent)?,
            };
            let amount = price
                .checked_mul(quantity)
                .ok_or_else(|| FieldError::new(at("price"), "price × quantity is too large"))?;
            let product = Product {
                sku,
                quantity,
                amount,
            };
            product
                .validate(i)
                .map_err(|e| FieldError::new(format!("properties.{}", e.field), e.message))?;
            out.push(product);
        }
        Ok(out)
    }
}
