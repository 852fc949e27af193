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

mod convert;
mod message;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};
use tribute_core::apikey::Principal;
use tribute_core::conversion::Reporter;
use tribute_core::identity::Claim;
use tribute_core::program::Program;

use self::convert::Ctx;
use self::message::{split, Endpoint, Kind};
use super::ingest_program;
use crate::http::error::{ApiError, ApiResult};
use crate::services::conversions::record;
use crate::AppState;

/// Largest message Segment accepts (one call, or one message of a batch).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest `/v1/batch` request Segment accepts.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

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
            ApiError::TooLarge {
                message: format!("request too large: {limit}"),
            }
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
            "only gzip and deflate bodies are supported",
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
    let (program, reporter, claim) = write_key_program(&state, &key).await?;
    let value = parsed?;
    let settings = state.tracking(&program.id).await?.settings.clone();
    let now = Utc::now();
    let messages = split(value, endpoint)?;
    let mut ctx = Ctx {
        state: &state,
        program: &program,
        settings: &settings,
        now,
        reporter,
        claim,
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
    for new in conversions {
        record(&state, program.clone(), new).await?;
    }
    Ok(Json(json!({"success": true})))
}

fn parse_value(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(None, "the body is empty"));
    }
    crate::http::body::check_unique_keys(body)?;
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

/// The program a write key writes to, who it says is reporting, and how
/// far its identifiers are believed: a publishable key is a browser's
/// (analytics.js, unverified), a secret key the owner's own backend. Only
/// ingest keys bound to a program qualify: a Segment message has nowhere to
/// name a program, and an admin key must not be pasted into front-end code.
async fn write_key_program(state: &AppState, key: &str) -> ApiResult<(Program, Reporter, Claim)> {
    let principal = state.principal(key).await?.ok_or(ApiError::Unauthorized)?;
    let reporter = if principal.is_publishable() {
        Reporter::Segment
    } else {
        Reporter::Server
    };
    match principal {
        Principal::Ingest {
            program_id: Some(_),
            ..
        } => Ok((
            ingest_program(state, &principal, None).await?,
            reporter,
            Claim::of(&principal),
        )),
        _ => Err(ApiError::Forbidden),
    }
}
