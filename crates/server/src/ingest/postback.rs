//! `GET|POST /postback`: server-to-server conversion tracking, the
//! convention of affiliate networks. The program's secret `token` replaces
//! an API key; `order_id` makes it idempotent.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tribute_core::ids::ProgramId;
use tribute_core::tracking::parse_decimal_minor;
use tribute_core::FieldError;

use super::conversions::{record, ConversionInput, ConversionView};
use crate::api::serde_urlencoded_query;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/postback", get(postback).post(postback_post))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostbackQuery {
    program_id: Option<String>,
    token: Option<String>,
    click_id: Option<String>,
    /// A decimal amount in the currency's major unit (`49.99`).
    amount: Option<String>,
    currency: Option<String>,
    order_id: Option<String>,
    status: Option<String>,
    coupon: Option<String>,
    email: Option<String>,
}

async fn postback(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<(StatusCode, Json<ConversionView>)> {
    handle(&state, q.as_deref()).await
}

/// POST takes the same parameters, as a query string or a form body.
async fn postback_post(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ConversionView>)> {
    let form = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request(None, "the body is not UTF-8"))?;
    let merged = match (q.as_deref().filter(|s| !s.is_empty()), form.trim()) {
        (Some(q), "") => q.to_owned(),
        (None, f) => f.to_owned(),
        (Some(q), f) => format!("{q}&{f}"),
    };
    handle(&state, Some(&merged)).await
}

async fn handle(
    state: &AppState,
    q: Option<&str>,
) -> ApiResult<(StatusCode, Json<ConversionView>)> {
    let q: PostbackQuery = serde_urlencoded_query(q)?;
    let program_id = q
        .program_id
        .as_deref()
        .ok_or_else(|| FieldError::new("program_id", "is required"))?;
    let program_id = ProgramId::parse(program_id).map_err(|e| e.at("program_id"))?;
    let token = q.token.as_deref().ok_or(ApiError::Unauthorized)?;
    let program = state
        .program(&program_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let tracking = state.tracking(&program.id).await?;
    if !constant_time_eq(token.as_bytes(), tracking.1.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    let currency = q
        .currency
        .unwrap_or_else(|| program.settings.currency.to_string());
    let exponent = tribute_core::money::Currency::parse(&currency)?.exponent();
    let amount = q
        .amount
        .as_deref()
        .ok_or_else(|| FieldError::new("amount", "is required"))?;
    let value = parse_decimal_minor("amount", amount, exponent)?;
    let input = ConversionInput {
        external_id: q.order_id,
        value,
        currency,
        status: q.status,
        click_id: q.click_id,
        coupon: q.coupon,
        email: q.email,
        ..ConversionInput::default()
    };
    // Errors name the postback's own parameters, not the conversion's fields.
    let (view, _) = record(state, &program, input, None)
        .await
        .map_err(|e| match e {
            ApiError::Invalid(f) if f.field == "value" => {
                FieldError::new("amount", f.message).into()
            }
            ApiError::Invalid(f) if f.field == "external_id" => {
                FieldError::new("order_id", f.message).into()
            }
            other => other,
        })?;
    Ok((StatusCode::OK, Json(view)))
}

/// Compare secrets without leaking their common prefix through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
