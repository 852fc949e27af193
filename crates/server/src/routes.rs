//! The route tree, built in one place: every way in and every resource,
//! merged around one state, with the layers each needs.

use axum::middleware::from_fn_with_state;
use axum::Router;

use crate::http::{body, fallback, ApiError};
use crate::{api, health, ingest, metrics, openapi, ratelimit, redirect, AppState};

/// Every route of the server.
pub fn app(state: AppState) -> Router {
    let api_v1 = Router::new()
        .merge(api::router())
        .merge(ingest::api_router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    // Routes that need the database answer 503 at once when it is gone.
    let mut stored = Router::new()
        .merge(openapi::router())
        .merge(ingest::postback::router())
        .merge(ingest::hooks::router())
        .merge(ingest::segment::router().route_layer(body::decompression()))
        .merge(ingest::collect::router().route_layer(body::decompression()))
        .nest("/api/v1", api_v1);
    if let Some(guard) = &state.ingest_limit {
        stored = stored.route_layer(from_fn_with_state(guard.clone(), ratelimit::enforce));
    }
    let stored = stored.route_layer(from_fn_with_state(state.clone(), health::guard));
    // The redirect has no layer unless its limit is on: it pays for nothing.
    let mut redirect = redirect::router();
    if let Some(guard) = &state.redirect_limit {
        redirect = redirect.route_layer(from_fn_with_state(guard.clone(), ratelimit::enforce));
    }
    let metrics = if state.config.metrics_separate {
        Router::new()
    } else {
        metrics::admin_router()
    };
    Router::new()
        .merge(redirect)
        .merge(stored)
        .merge(metrics)
        .merge(health::router())
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .with_state(state)
}
