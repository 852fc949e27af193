//! What a request that matches no route gets: never an empty body.
//!
//! A browser (it asks for `text/html`) gets the HTML 404 page; anything else
//! (an SDK, curl, a monitoring probe) gets the JSON error every API route
//! answers with. `/api/v1` has its own JSON fallback (`api::router`).

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::error::ApiError;

const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Not found</title>\
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style>\
</head><body><h1>Not found</h1><p>There is nothing at this address.</p></body></html>";

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The router's fallback: a 404 as HTML or JSON.
pub async fn not_found(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        (StatusCode::NOT_FOUND, Html(NOT_FOUND_PAGE)).into_response()
    } else {
        ApiError::NotFound("route").into_response()
    }
}

/// A known path with another method: the JSON 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
