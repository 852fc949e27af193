//! `GET /healthz` and `GET /readyz`, and the guard that answers 503 while
//! the database cannot be used.
//!
//! - `/healthz` is liveness: 200 while the process serves requests. A
//!   balancer that restarts on failure should watch this one.
//! - `/readyz` is readiness: 200 only when the database is the one opened,
//!   at this build's schema and writable, and no click was dropped in the
//!   last minute; otherwise 503 with the reasons. A balancer takes the node
//!   out of rotation while it fails, and puts it back when it passes again.
//!
//! Neither needs a key: they say nothing a client could use, and the
//! probes that call them have none.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::http::ApiError;
use crate::AppState;

/// Longest `/readyz` waits for the database before calling it unready.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a dropped click keeps the node unready.
const DROP_WINDOW_MS: i64 = 60_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Every reason the node should not get traffic; empty when ready.
pub async fn problems(state: &AppState) -> Vec<String> {
    let mut problems = tokio::time::timeout(CHECK_TIMEOUT, state.store.readiness())
        .await
        .unwrap_or_else(|_| {
            vec![format!(
                "the database did not answer within {CHECK_TIMEOUT:?}"
            )]
        });
    let recent = state
        .counters
        .clicks_dropped_since(chrono::Utc::now().timestamp_millis() - DROP_WINDOW_MS);
    if recent {
        problems.push(
            "clicks were dropped in the last minute after the database refused them".to_owned(),
        );
    }
    problems
}

async fn readyz(State(state): State<AppState>) -> Response {
    let problems = problems(&state).await;
    let dropped = state.counters.clicks_dropped();
    if problems.is_empty() {
        return Json(json!({"status": "ready", "clicks_dropped": dropped})).into_response();
    }
    let body = json!({
        "status": "unavailable",
        "problems": problems,
        "clicks_dropped": dropped,
        "error": {"code": "unavailable", "message": problems.join("; "), "field": null},
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Middleware: 503 before a handler runs once the database file is gone
/// (one `stat`; nothing on PostgreSQL, whose errors say so themselves).
/// Without it, a request would first learn it from a failed query, after
/// part of its work.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.store.intact() {
        Ok(()) => next.run(request).await,
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}
