//! `GET|POST /postback`: server-to-server conversion tracking, the
//! convention of affiliate networks. The program's secret `token` replaces
//! an API key (it is stored hashed, made and rotated with
//! `POST /api/v1/programs/{id}/postback-token`); `order_id` makes it idempotent.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tribute_core::conversion::{
    conversion_value, parse_external_id, reported_currency, reported_status, NewConversion,
    Reporter, MAX_EXTERNAL_ID,
};
use tribute_core::coupon::CouponCode;
use tribute_core::identity::{email_domain, Claim, RawIdentifiers};
use tribute_core::ids::ProgramId;
use tribute_core::postback::token_matches;
use tribute_core::program::Program;
use tribute_core::tracking::{parse_click_id, parse_decimal_minor};
use tribute_core::FieldError;

use crate::http::body::RawBody;
use crate::http::conversion::{ConversionView, Viewer};
use crate::http::query::parse_query;
use crate::http::{ApiError, ApiResult};
use crate::services::conversions::record;
use crate::AppState;

/// Largest form body: a postback is a handful of short parameters.
const MAX_FORM: usize = 16 * 1024;

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
    RawBody(body): RawBody<MAX_FORM>,
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
    let q: PostbackQuery = parse_query(q)?;
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
    // Only the token's hash is stored; a program without a token yet
    // refuses every postback.
    let tracking = state.tracking(&program.id).await?;
    let stored = tracking.postback.as_ref().ok_or(ApiError::Unauthorized)?;
    if !token_matches(token, &stored.hash) {
        return Err(ApiError::Unauthorized);
    }
    let new = q.parse(&program, Utc::now())?;
    let recorded = record(state, program.as_ref().clone(), new).await?;
    let view = ConversionView::load_with(
        &state.store,
        recorded.conversion,
        recorded.fresh,
        &Viewer::Owner,
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("the server sees every conversion"))?;
    Ok((StatusCode::OK, Json(view)))
}

impl PostbackQuery {
    /// Parse into a conversion of `program`, naming the postback's own
    /// parameters (`amount`, `order_id`) in errors.
    fn parse(self, program: &Program, now: DateTime<Utc>) -> Result<NewConversion, FieldError> {
        let currency = match self.currency.as_deref() {
            None => program.settings.currency,
            // Another currency than the program's is converted when recorded.
            Some(c) => reported_currency("currency", c)?,
        };
        let amount = self
            .amount
            .as_deref()
            .ok_or_else(|| FieldError::new("amount", "is required"))?;
        let value = conversion_value(
            "amount",
            parse_decimal_minor("amount", amount, currency.exponent())?,
            currency,
        )?;
        let coupon = match self.coupon.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(c) => Some(CouponCode::parse(c).map_err(|e| e.at("coupon"))?),
            None => None,
        };
        Ok(NewConversion {
            program_id: program.id.clone(),
            reporter: Reporter::Server,
            order_id: parse_external_id("order_id", self.order_id.as_deref(), MAX_EXTERNAL_ID)?,
            idempotency_key: None,
            value,
            status: reported_status("status", Reporter::Server, self.status.as_deref())?,
            email_domain: email_domain(self.email.as_deref()),
            ids: RawIdentifiers {
                email: self.email,
                ..RawIdentifiers::default()
            }
            .parse()?,
            // The program's secret postback token vouches for the sender.
            claim: Claim::Verified,
            click_id: parse_click_id("click_id", self.click_id.as_deref())?,
            coupon,
            products: Vec::new(),
            occurred_at: now,
            fingerprint: None,
            metadata: Default::default(),
        })
    }
}
