//! `GET /api/v1/partners/{id}/statement?from=&to=&format=json|csv`: every
//! ledger line on a partner's accounts in `[from, to)` with its
//! explanation, between its opening and closing balances. A partner key
//! reads only its own (another partner's is 404).
//!
//! The CSV is written by the `csv` crate (RFC 4180 quoting) and every text
//! cell goes through `tribute_core::payout::escape_formula`: memos are
//! typed by owners and partners, and statements are opened in spreadsheets.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tribute_core::money::{Currency, Money};
use tribute_core::payout::{escape_formula, format_decimal};
use tribute_core::FieldError;
use tribute_store::Statement;

use super::partners::visible_partner;
use super::payouts::csv_response;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::Auth;
use crate::http::{Period, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/partners/{id}/statement", get(statement))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// The columns of a statement's CSV, in order.
pub const CSV_COLUMNS: [&str; 12] = [
    "at",
    "entry_id",
    "kind",
    "account",
    "amount",
    "amount_minor",
    "currency",
    "commission_id",
    "conversion_id",
    "payout_id",
    "memo",
    "explanation",
];

#[tracing::instrument(skip_all, fields(id = %id))]
async fn statement(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<StatementQuery>,
) -> ApiResult<Response> {
    let partner = visible_partner(&state, &auth, &id).await?;
    let Period { from, to } = Period::parse(q.from.as_deref(), q.to.as_deref())?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(FieldError::new("format", "must be json or csv").into()),
    };
    let statement = state
        .store
        .statement(&partner.id, from, to)
        .await?
        .ok_or(ApiError::NotFound("partner"))?;
    if !csv {
        return Ok(Json(statement).into_response());
    }
    let filename = format!(
        "{}-statement-{}-{}.csv",
        partner.slug,
        from.format("%Y%m%d"),
        to.format("%Y%m%d")
    );
    Ok(csv_response(to_csv(&statement)?, &filename, None))
}

/// How serde names a unit enum value (`payout`, `payable`).
fn name_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// A text cell: escaped so a spreadsheet shows it rather than evaluates it.
fn text(s: &str) -> String {
    escape_formula(s).into_owned()
}

/// The statement's lines as CSV with a header row, CRLF line ends.
pub fn to_csv(s: &Statement) -> ApiResult<String> {
    let currency = Currency::parse(&s.currency)
        .map_err(|e| anyhow::anyhow!("statement currency {}: {e}", s.currency))?;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let write_error = |e: csv::Error| ApiError::Internal(anyhow::Error::new(e));
    w.write_record(CSV_COLUMNS).map_err(write_error)?;
    for l in &s.lines {
        let optional = |v: &Option<String>| text(v.as_deref().unwrap_or(""));
        w.write_record([
            l.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            text(&l.entry_id),
            name_of(&l.kind),
            name_of(&l.account),
            format_decimal(Money::new(l.amount, currency)),
            l.amount.to_string(),
            s.currency.clone(),
            optional(&l.commission_id),
            optional(&l.conversion_id),
            optional(&l.payout_id),
            text(&l.memo),
            l.explanation
                .as_ref()
                .map(|e| text(&e.to_string()))
                .unwrap_or_default(),
        ])
        .map_err(write_error)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("flushing a statement: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("statement CSV is not UTF-8: {e}")))
}
