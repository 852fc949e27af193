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

mod cors;
mod events;
mod script;

use axum::extract::{Query, RawQuery, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tribute_core::apikey::Principal;
use tribute_core::program::Program;
use tribute_core::tracking::{ConsentMode, TrackingSettings};

use self::cors::{check_origin, origin_refused, preflight, with_cors};
use self::events::ingest;
use self::script::script;
use super::ingest_program;
use crate::http::body::RawBody;
use crate::http::query::parse_query;
use crate::http::{ApiError, ApiResult};
use crate::AppState;

/// Largest `/collect` body: a batch of the snippet is a few kilobytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Most events one `/collect` request may carry (the snippet sends ≤ 50).
pub const MAX_EVENTS: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t.js", get(script))
        .route("/collect", axum::routing::post(collect).options(preflight))
        .route("/collect/config", get(config).options(preflight))
}

/// The program a write key sends to. Only ingest keys: an admin key must
/// never sit in a public page, so it is refused here even though it could write.
pub(super) async fn program_of_key(state: &AppState, token: &str) -> ApiResult<Program> {
    let principal = state
        .principal(token.trim())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    match principal {
        Principal::Ingest { .. } => ingest_program(state, &principal, None).await,
        _ => Err(ApiError::Forbidden),
    }
}

#[derive(Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

pub(super) fn key_from_query(raw: Option<&str>) -> ApiResult<Option<String>> {
    let q: KeyQuery = parse_query(raw)?;
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

pub(super) async fn tracking(state: &AppState, program: &Program) -> ApiResult<TrackingSettings> {
    Ok(state.tracking(&program.id).await?.settings.clone())
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
    body: Result<RawBody<MAX_BODY>, ApiError>,
) -> Response {
    let body = match body {
        Ok(RawBody(b)) => b,
        Err(e) => return e.into_response(),
    };
    // The key (query or body) decides the program, which decides CORS; only
    // then are the events read, so an allowed page can read its errors.
    let value: Value = match crate::http::extract::parse_json(&body) {
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
