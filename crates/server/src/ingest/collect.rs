//! The first-party snippet `/t.js` and its endpoint `/collect`.
//!
//! The owner embeds `<script src="https://TRIBUTE/t.js" data-key="WRITE_KEY" async>`.
//! The script asks `GET /collect/config?key=…` for the program's consent and
//! cookie settings, then posts batches of events to `POST /collect` as
//! `text/plain` JSON (`{"key": …, "events": [...]}`), which is a CORS simple
//! request: no preflight. Both answer CORS only to origins whose host is on
//! the program's allowed domains; any other origin gets a 403 without CORS
//! headers, so its page cannot read the answer either.
//!
//! The write key is an `ingest` key: it can only send events, so it is safe
//! to publish in a page. Because anyone can copy it, conversions reported by
//! the browser are recorded `pending`: the owner's backend or a review
//! approves them, never the visitor's browser.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, ORIGIN, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tribute_core::attribution::TouchKind;
use tribute_core::coupon::CouponCode;
use tribute_core::money::Currency;
use tribute_core::program::Program;
use tribute_core::tracking::{
    parse_decimal_minor, ConsentMode, Event, Product, TrackMeaning, TrackingSettings,
};
use tribute_core::FieldError;
use tribute_store::Principal;

use super::conversions::{record, ConversionInput};
use super::{ingest_program, EventInput, UnknownVia};
use crate::error::{ApiError, ApiResult};
use crate::extract::field_of;
use crate::AppState;

/// The snippet as written (readable, commented).
const SOURCE: &str = include_str!("../../assets/t.js");

/// Largest `/collect` body: a batch of the snippet is a few kilobytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Most events one `/collect` request may carry (the snippet sends ≤ 50).
pub const MAX_EVENTS: usize = 100;
/// Oldest an event may be when it arrives (the snippet sends its age).
const MAX_AGE_MS: u64 = 24 * 3600 * 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t.js", get(script))
        .route("/collect", axum::routing::post(collect).options(preflight))
        .route("/collect/config", get(config).options(preflight))
}

/// The snippet as served: comment lines, blank lines and indentation removed,
/// with its ETag (a hash of exactly those bytes).
pub struct Served {
    pub body: String,
    pub etag: String,
}

pub fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let body = compact(SOURCE);
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Served { body, etag }
    })
}

/// Strip what only a reader needs. Line breaks stay, so automatic semicolon
/// insertion reads the code exactly as written; the source keeps every
/// comment on a line of its own and no multi-line string.
pub fn compact(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, as
/// RFC 9110 asks for `If-None-Match`).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header.trim() == "*" || header.split(',').any(|t| bare(t) == bare(etag))
}

/// `GET /t.js`: the snippet, cached an hour, revalidated by ETag.
#[tracing::instrument(skip_all)]
async fn script(headers: HeaderMap) -> Response {
    let s = served();
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &s.etag));
    let common = [
        (ETAG, s.etag.clone()),
        (CACHE_CONTROL, "public, max-age=3600".to_owned()),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [
            (CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        s.body.clone(),
    )
        .into_response()
}

/// The program a write key sends to. Only ingest keys: an admin key must
/// never sit in a public page, so it is refused here even though it could write.
async fn program_of_key(state: &AppState, token: &str) -> ApiResult<Program> {
    let principal = state
        .principal(token.trim())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    match principal {
        Principal::Ingest { .. } => ingest_program(state, &principal, None).await,
        _ => Err(ApiError::Forbidden),
    }
}

/// The CORS decision for a request's `Origin`.
enum Origin {
    /// No `Origin` header: not a cross-origin browser request (a server, curl).
    Absent,
    /// An origin on the program's allowed domains: echoed back.
    Allowed(HeaderValue),
}

/// Check `Origin` against the program's allowed domains; `None`: refused
/// (answer [`origin_refused`]).
fn check_origin(headers: &HeaderMap, program: &Program) -> Option<Origin> {
    let Some(value) = headers.get(ORIGIN) else {
        return Some(Origin::Absent);
    };
    let host = value
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|u| u.scheme() == "http" || u.scheme() == "https")
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
    match host {
        Some(h) if program.settings.allows_host(&h) => Some(Origin::Allowed(value.clone())),
        _ => None,
    }
}

fn origin_refused() -> Response {
    let body = json!({"error": {
        "code": "forbidden_origin",
        "message": "this origin is not on the program's allowed domains",
        "field": null,
    }});
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// Add the CORS headers for an allowed origin (all answers vary by origin).
fn with_cors(mut response: Response, origin: &Origin) -> Response {
    let h = response.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if let Origin::Allowed(o) = origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
    }
    response
}

#[derive(Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

fn key_from_query(raw: Option<&str>) -> ApiResult<Option<String>> {
    let q: KeyQuery = crate::api::serde_urlencoded_query(raw)?;
    Ok(q.key.filter(|k| !k.trim().is_empty()))
}

/// What the snippet needs of the program's settings.
#[derive(Serialize)]
struct SnippetConfig {
    consent: ConsentMode,
    honor_dnt: bool,
    honor_gpc: bool,
    cookie_domain: Option<String>,
    cookie_days: i64,
}

/// `GET /collect/config?key=…`: the consent and cookie settings of the
/// key's program. Cached five minutes by the browser: a settings change
/// reaches visitors within that time.
#[tracing::instrument(skip_all)]
async fn config(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> Response {
    let Some(key) = q.key.filter(|k| !k.trim().is_empty()) else {
        return ApiError::bad_request(Some("key".into()), "is required").into_response();
    };
    let program = match program_of_key(&state, &key).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(origin) = check_origin(&headers, &program) else {
        return origin_refused();
    };
    let answer = match tracking(&state, &program).await {
        Ok(t) => {
            let body = SnippetConfig {
                consent: t.consent,
                honor_dnt: t.honor_dnt,
                honor_gpc: t.honor_gpc,
                cookie_domain: t.cookie_domain,
                cookie_days: program.settings.cookie_days,
            };
            ([(CACHE_CONTROL, "private, max-age=300")], Json(body)).into_response()
        }
        Err(e) => e.into_response(),
    };
    with_cors(answer, &origin)
}

async fn tracking(state: &AppState, program: &Program) -> ApiResult<TrackingSettings> {
    Ok(state.tracking(&program.id).await?.0.clone())
}

/// `OPTIONS /collect`: the snippet never needs a preflight (it posts
/// `text/plain`), but a page posting `application/json` with `?key=` does.
/// Without a key the origin cannot be checked: no CORS headers.
#[tracing::instrument(skip_all)]
async fn preflight(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let program = match key_from_query(raw.as_deref()) {
        Ok(Some(key)) => program_of_key(&state, &key).await.ok(),
        _ => None,
    };
    let Some(program) = program else {
        return StatusCode::NO_CONTENT.into_response();
    };
    match check_origin(&headers, &program) {
        Some(origin @ Origin::Allowed(_)) => {
            let mut r = with_cors(StatusCode::NO_CONTENT.into_response(), &origin);
            let h = r.headers_mut();
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type"),
            );
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            r
        }
        Some(Origin::Absent) => StatusCode::NO_CONTENT.into_response(),
        None => origin_refused(),
    }
}

/// One event as the snippet sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnippetEvent {
    #[serde(rename = "type")]
    event_type: String,
    event_id: Option<String>,
    name: Option<String>,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    email: Option<String>,
    click_id: Option<String>,
    via: Option<String>,
    coupon: Option<String>,
    /// Milliseconds since the event happened: an age, not a time, because
    /// the visitor's clock may be wrong.
    ago: Option<u64>,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnippetBatch {
    #[allow(dead_code)]
    key: Option<String>,
    events: Vec<Value>,
}

#[derive(Serialize)]
struct Collected {
    /// Events stored by this request.
    accepted: usize,
    /// Events already stored (a retried batch): ignored.
    duplicates: usize,
    /// Conversions recorded (or found again, for a retry).
    conversions: usize,
}

/// Deserialize `value` as `T`, naming the field at fault under `prefix`.
fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = field_of(&path, &message).map(|f| format!("{prefix}{f}"));
        let field = field.or_else(|| Some(prefix.trim_end_matches('.').to_owned()));
        ApiError::bad_request(field.filter(|f| !f.is_empty()), message)
    })
}

/// The same error, its field under `prefix` (e.g. `events[2].`).
fn prefixed(e: ApiError, prefix: &str) -> ApiError {
    match e {
        ApiError::Invalid(f) => {
            let field = format!("{prefix}{}", f.field);
            ApiError::Invalid(f.at(field))
        }
        ApiError::BadRequest {
            field: Some(f),
            message,
        } => ApiError::bad_request(Some(format!("{prefix}{f}")), message),
        other => other,
    }
}

/// `POST /collect`: a batch from the snippet. Every event is checked before
/// anything is written; events go through the group-commit writer, then
/// conversions are recorded (after the events, so a lead or identify in the
/// same batch already links the person).
#[tracing::instrument(skip_all)]
async fn collect(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    if body.len() > MAX_BODY {
        return ApiError::TooLarge {
            message: format!("a batch may be at most {MAX_BODY} bytes"),
        }
        .into_response();
    }
    // The key (query or body) decides the program, which decides CORS; only
    // then are the events read, so an allowed page can read its errors.
    let value: Value = match crate::extract::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let key = match key_from_query(raw.as_deref()) {
        Ok(Some(k)) => Some(k),
        Ok(None) => value
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.trim().is_empty())
            .map(str::to_owned),
        Err(e) => return e.into_response(),
    };
    let Some(key) = key else {
        return ApiError::bad_request(Some("key".into()), "the write key is required")
            .into_response();
    };
    let program = match program_of_key(&state, &key).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(origin) = check_origin(&headers, &program) else {
        return origin_refused();
    };
    let answer = match ingest(&state, &program, value).await {
        Ok(c) => (StatusCode::OK, Json(c)).into_response(),
        Err(e) => e.into_response(),
    };
    with_cors(answer, &origin)
}

/// What one snippet event becomes.
enum Item {
    Event(Box<Event>),
    Conversion(Box<ConversionInput>, String),
}

async fn ingest(state: &AppState, program: &Program, value: Value) -> ApiResult<Collected> {
    let batch: SnippetBatch = from_value(value, "")?;
    if batch.events.is_empty() {
        return Err(ApiError::bad_request(Some("events".into()), "is empty"));
    }
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::TooLarge {
            message: format!("at most {MAX_EVENTS} events per request"),
        });
    }
    let settings = tracking(state, program).await?;
    let now = Utc::now();
    let mut items = Vec::with_capacity(batch.events.len());
    for (i, raw) in batch.events.into_iter().enumerate() {
        let prefix = format!("events[{i}].");
        let e: SnippetEvent = from_value(raw, &prefix)?;
        items.push(
            item(state, program, &settings, e, now)
                .await
                .map_err(|err| prefixed(err, &prefix))?,
        );
    }
    let mut events = Vec::new();
    let mut conversions = Vec::new();
    for item in items {
        match item {
            Item::Event(e) => events.push(*e),
            Item::Conversion(c, key) => conversions.push((*c, key)),
        }
    }
    let total = events.len();
    let accepted = if events.is_empty() {
        0
    } else {
        state.events.write(events).await?.len()
    };
    let recorded = conversions.len();
    for (input, key) in conversions {
        record(state, program, input, Some(key)).await?;
    }
    Ok(Collected {
        accepted,
        duplicates: total - accepted,
        conversions: recorded,
    })
}

async fn item(
    state: &AppState,
    program: &Program,
    settings: &TrackingSettings,
    e: SnippetEvent,
    now: DateTime<Utc>,
) -> ApiResult<Item> {
    let ago = e.ago.unwrap_or(0);
    if ago > MAX_AGE_MS {
        return Err(FieldError::new("ago", "must be at most one day (86400000 ms)").into());
    }
    let occurred_at = now - Duration::milliseconds(ago as i64);
    let meaning = match (e.event_type.as_str(), e.name.as_deref()) {
        ("conversion", _) => TrackMeaning::Conversion,
        ("custom", Some(name)) => settings.meaning(name),
        _ => TrackMeaning::Custom,
    };
    let mut properties = e.properties;
    // Kept in clear only when the owner asked for it; the hash always is.
    properties.remove("email");
    if settings.store_email {
        if let Some(email) = e.email.as_deref().filter(|m| !m.trim().is_empty()) {
            properties.insert("email".into(), Value::String(email.trim().to_owned()));
        }
    }
    if meaning == TrackMeaning::Conversion {
        let event_id = e.event_id.as_deref().map(str::trim).unwrap_or("");
        if event_id.is_empty() || event_id.len() > 180 {
            return Err(FieldError::new(
                "event_id",
                "a conversion needs an event_id of 1 to 180 characters",
            )
            .into());
        }
        let input = conversion_input(program, &properties, e.coupon.clone())?;
        let input = ConversionInput {
            anonymous_id: e.anonymous_id,
            user_id: e.user_id,
            email: e.email,
            click_id: e.click_id,
            occurred_at: Some(occurred_at.to_rfc3339()),
            ..input
        };
        check_conversion(&input, program)?;
        // A retried batch must find the first conversion, not make a second.
        let key = format!("snippet:{event_id}");
        return Ok(Item::Conversion(Box::new(input), key));
    }
    let event_type = match meaning {
        TrackMeaning::Lead => "lead".to_owned(),
        _ => e.event_type,
    };
    let coupon = match e.coupon.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(c) => Some(CouponCode::parse(c).map_err(|err| err.at("coupon"))?),
        None => None,
    };
    if let Some(c) = &coupon {
        properties.insert("coupon".into(), Value::String(c.as_str().to_owned()));
    }
    let input = EventInput {
        event_type,
        event_id: e.event_id,
        name: e.name,
        anonymous_id: e.anonymous_id,
        user_id: e.user_id,
        email: e.email,
        email_hash: None,
        customer_id: None,
        phone: None,
        phone_hash: None,
        click_id: e.click_id,
        via: e.via,
        partner_id: None,
        occurred_at: Some(occurred_at.to_rfc3339()),
        properties,
        program_id: None,
    };
    let mut event = input
        .into_event(state, program, now, "", UnknownVia::Ignore)
        .await?;
    // A coupon in the landing URL is a touch of its partner, like `via`.
    if let (None, Some(code)) = (&event.partner, &coupon) {
        if let Some(c) = state.store.coupon_by_code(&program.id, code).await? {
            event.partner = Some((c.partner_id, TouchKind::Coupon));
        }
    }
    Ok(Item::Event(Box::new(event)))
}

/// A conversion's value, currency, order id, products and coupon, from the
/// properties of `tribute.conversion(props)` or a mapped track event.
fn conversion_input(
    program: &Program,
    p: &Map<String, Value>,
    coupon: Option<String>,
) -> ApiResult<ConversionInput> {
    let currency = match p.get("currency") {
        None | Some(Value::Null) => program.settings.currency,
        Some(Value::String(s)) => Currency::parse(s).map_err(|e| e.at("properties.currency"))?,
        Some(_) => {
            return Err(FieldError::new("properties.currency", "must be a currency code").into())
        }
    };
    let value = match (p.get("value"), p.get("revenue").or_else(|| p.get("total"))) {
        (Some(Value::Number(n)), _) => n.as_i64().ok_or_else(|| {
            FieldError::new("properties.value", "must be an integer in minor units")
        })?,
        (Some(_), _) => {
            return Err(
                FieldError::new("properties.value", "must be an integer in minor units").into(),
            )
        }
        (None, Some(v @ (Value::Number(_) | Value::String(_)))) => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parse_decimal_minor("properties.revenue", &text, currency.exponent())?
        }
        (None, Some(_)) => {
            return Err(FieldError::new("properties.revenue", "must be an amount").into())
        }
        (None, None) => {
            return Err(FieldError::new(
                "properties.value",
                "is required (minor units), or revenue in major units",
            )
            .into())
        }
    };
    // Namespaced: anyone holding the public write key could otherwise
    // claim an order id first and make the owner's backend report of that
    // order look like a replay.
    let external_id = match p.get("order_id").or_else(|| p.get("external_id")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(format!("snippet:{s}")),
        Some(Value::Number(n)) => Some(format!("snippet:{n}")),
        Some(_) => return Err(FieldError::new("properties.order_id", "must be a string").into()),
    };
    let products: Vec<Product> = match p.get("products") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => from_value(v.clone(), "properties.products")?,
    };
    let coupon = coupon.or_else(|| p.get("coupon").and_then(Value::as_str).map(str::to_owned));
    Ok(ConversionInput {
        external_id,
        value,
        currency: currency.as_str().to_owned(),
        // Anyone can send with a public key: the owner approves.
        status: Some("pending".into()),
        products,
        coupon,
        ..ConversionInput::default()
    })
}

/// The checks `record` makes, made before any event of the batch is written.
fn check_conversion(input: &ConversionInput, program: &Program) -> ApiResult<()> {
    // The snippet sends amounts and products inside `properties`.
    input.check(program).map_err(|e| {
        let f = e.field.as_str();
        if f == "currency" || f == "value" || f.starts_with("products[") {
            FieldError::new(format!("properties.{f}"), e.message).into()
        } else {
            e.into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_drops_comments_blank_lines_and_indentation_only() {
        let src = "// header\n(function () {\n  // why\n  var a = 1; // kept: not a line comment\n\n  return a;\n})();\n";
        assert_eq!(
            compact(src),
            "(function () {\nvar a = 1; // kept: not a line comment\nreturn a;\n})();\n"
        );
    }

    #[test]
    fn the_served_snippet_is_under_five_kilobytes_and_keeps_its_api() {
        let s = served();
        assert!(s.body.len() < 5_000, "t.js is {} bytes", s.body.len());
        for needle in [
            "track:",
            "identify:",
            "lead:",
            "conversion:",
            "consent:",
            "/collect",
        ] {
            assert!(s.body.contains(needle), "served t.js lost {needle}");
        }
        assert!(!s.body.contains("\n//"), "a comment line was served");
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "\"abc\"";
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("W/\"abc\"", tag));
        assert!(etag_matches("\"x\", \"abc\"", tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("\"abd\"", tag));
        assert!(!etag_matches("", tag));
    }
}
