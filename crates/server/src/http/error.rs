//! The one HTTP error type: every failure becomes
//! `{"error": {"code", "message", "field"}}` with a fitting status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tribute_core::FieldError;
use tribute_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or query could not be read (malformed JSON, wrong type, unknown field).
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// Well-formed input whose value is refused (a currency that does not exist…).
    #[error("{0}")]
    Invalid(FieldError),
    #[error("missing or invalid API key")]
    Unauthorized,
    /// An inbound webhook whose signature is missing or does not match.
    #[error("{0}")]
    BadSignature(String),
    #[error("this key may not do that")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { field: String, message: String },
    #[error("{message}")]
    TooLarge { message: String },
    /// An `Idempotency-Key` already used by a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// Too many requests from this client or key: retry after `retry_after` seconds.
    #[error("too many requests: retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The database cannot be used (gone, replaced, unreachable): retry later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(field: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized | Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::Invalid(_) => "invalid_field",
            Self::Unauthorized => "unauthorized",
            Self::BadSignature(_) => "invalid_signature",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict { .. } => "conflict",
            Self::TooLarge { .. } => "too_large",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::BadRequest { field, .. } => field.as_deref(),
            Self::Invalid(e) => Some(&e.field),
            Self::Conflict { field, .. } => Some(field),
            Self::IdempotencyKeyReused => Some("Idempotency-Key"),
            _ => None,
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict { field, message } => Self::Conflict {
                field: field.to_owned(),
                message,
            },
            // Not a bug to hide behind "internal error": the database is
            // gone or unreachable, and a client (or balancer) should retry.
            other if other.is_unavailable() => {
                tracing::error!(error = ?other, "database unavailable");
                Self::Unavailable("the database is unavailable; retry later".to_owned())
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(e) => {
                // The cause chain goes to the log, never to the client.
                tracing::error!(error = ?e, "internal error");
                "internal error".to_owned()
            }
            Self::Invalid(e) => e.message.clone(),
            other => other.to_string(),
        };
        let body =
            json!({"error": {"code": self.code(), "message": message, "field": self.field()}});
        let mut response = (self.status_code(), Json(body)).into_response();
        if let Self::RateLimited { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}
