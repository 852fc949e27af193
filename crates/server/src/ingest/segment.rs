//! Segment-compatible ingestion (`/v1/track`, `/v1/identify`, …).

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
