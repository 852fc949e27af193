//! CORS for the snippet's endpoints: only origins whose host is on the
//! program's allowed domains get CORS headers; any other origin gets a 403
//! without them, so its page cannot read the answer either.

use axum::extract::{RawQuery, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tribute_core::program::Program;

use super::{key_from_query, program_of_key};
use crate::AppState;

/// The CORS decision for a request's `Origin`.
pub(super) enum Origin {
    /// No `Origin` header: not a cross-origin browser request (a server, curl).
    Absent,
    /// An origin on the program's allowed domains: echoed back.
    Allowed(HeaderValue),
}

/// Check `Origin` against the program's allowed domains; `None`: refused
/// (answer [`origin_refused`]).
pub(super) fn check_origin(headers: &HeaderMap, program: &Program) -> Option<Origin> {
    let Some(value) = headers.get(ORIGIN) else {
        return Some(Origin::Absent);
    };
    // The port counts: an origin on a port its entry does not list is refused.
    let url = value
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|u| u.scheme() == "http" || u.scheme() == "https");
    match url {
        Some(u) if program.settings.allows_url(&u) => Some(Origin::Allowed(value.clone())),
        _ => None,
    }
}

pub(super) fn origin_refused() -> Response {
    let body = json!({"error": {
        "code": "forbidden_origin",
        "message": "this origin is not on the program's allowed domains",
        "field": null,
    }});
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// Add the CORS headers for an allowed origin (all answers vary by origin).
pub(super) fn with_cors(mut response: Response, origin: &Origin) -> Response {
    let h = response.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if let Origin::Allowed(o) = origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
    }
    response
}

/// `OPTIONS /collect`: the snippet never needs a preflight (it posts
/// `text/plain`), but a page posting `application/json` with `?key=` does.
/// Without a key the origin cannot be checked: no CORS headers.
#[tracing::instrument(skip_all)]
pub(super) async fn preflight(
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
