//! The route tree, built in one place: every way in and every resource,
//! merged around one state.

use axum::Router;

use crate::http::ApiError;
use crate::{api, ingest, metrics, openapi, redirect, AppState};

/// Every route of the server.
pub fn app(state: AppState) -> Router {
    let api_v1 = Router::new()
        .merge(api::router())
        .merge(ingest::api_router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    Router::new()
        .merge(redirect::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .merge(ingest::postback::router())
        .merge(ingest::segment::router())
        .merge(ingest::collect::router())
        .nest("/api/v1", api_v1)
        .with_state(state)
}
