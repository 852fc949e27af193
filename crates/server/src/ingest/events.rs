//! `POST /api/v1/events`: one event or `{"batch": [...]}`, idempotent by `event_id`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use tribute_core::identity::Claim;
use tribute_core::FieldError;

use super::{ingest_program, EventInput, UnknownVia};
use crate::http::body::RawBody;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{field_of, parse_json, Auth};
use crate::AppState;

/// Most events one request may carry.
pub const MAX_BATCH: usize = 1_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/events", post(create))
}

#[derive(Serialize)]
struct Accepted {
    /// Events stored by this request.
    accepted: usize,
    /// Events whose `event_id` was already stored: ignored.
    duplicates: usize,
    ids: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    auth: Auth,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let value: Value = parse_json(&body)?;
    let (items, prefix_of): (Vec<Value>, fn(usize) -> String) = match value {
        Value::Object(mut m) if m.contains_key("batch") => match m.remove("batch") {
            // A batch holds only events: a field beside it would be dropped unread.
            _ if !m.is_empty() => {
                let other = m.keys().next().cloned();
                return Err(ApiError::bad_request(
                    other,
                    "is not a field of a batch (only `batch` is)",
                ));
            }
            Some(Value::Array(items)) => (items, |i| format!("batch[{i}].")),
            _ => {
                return Err(ApiError::bad_request(
                    Some("batch".into()),
                    "must be an array of events",
                ))
            }
        },
        v @ Value::Object(_) => (vec![v], |_| String::new()),
        _ => {
            return Err(ApiError::bad_request(
                None,
                "expected an event object or {\"batch\": [...]}",
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::bad_request(Some("batch".into()), "is empty"));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::TooLarge {
            message: format!("at most {MAX_BATCH} events per request"),
        });
    }
    let now = Utc::now();
    let mut events = Vec::with_capacity(items.len());
    let mut program: Option<tribute_core::program::Program> = None;
    // Every event is checked before any is written: bad input changes nothing.
    for (i, item) in items.into_iter().enumerate() {
        let prefix = prefix_of(i);
        let input: EventInput = serde_path_to_error::deserialize(item).map_err(|e| {
            // The path names the field ("type" in `{"type": 5}`); the message
            // alone would name the offending value.
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            let field = match field_of(&path, &msg) {
                Some(f) => format!("{prefix}{f}"),
                None => prefix.trim_end_matches('.').to_owned(),
            };
            ApiError::bad_request((!field.is_empty()).then_some(field), msg)
        })?;
        let p = match &program {
            // One request writes to one program: an item naming another is
            // refused, never silently written to the first item's program.
            Some(p)
                if input
                    .program_id
                    .as_deref()
                    .is_some_and(|g| g != p.id.as_str()) =>
            {
                return Err(FieldError::new(
                    format!("{prefix}program_id"),
                    "every event of a request must be for the same program",
                )
                .into())
            }
            Some(p) => p,
            None => {
                program.insert(ingest_program(&state, &auth.0, input.program_id.as_deref()).await?)
            }
        };
        events.push(
            input
                .into_event(
                    &state,
                    p,
                    now,
                    &prefix,
                    UnknownVia::Refuse,
                    Claim::of(&auth.0),
                )
                .await?,
        );
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    let total = events.len();
    let inserted = state.events.write(events).await?;
    let accepted = inserted.len();
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted,
            duplicates: total - accepted,
            ids: ids.into_iter().filter(|id| inserted.contains(id)).collect(),
        }),
    ))
}
