//! `/api/v1/payouts` (batches of what partners are owed, their export
//! files, marking them paid) and `/api/v1/payout-requests`.
//!
//! Admins make, export and mark batches; a partner key sees only the
//! batches that pay it, and in them only its own item. A partner key asks
//! for its own payouts; an admin names the partner.

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use tribute_core::ids::{PartnerId, PayoutId};
use tribute_core::money::{check_amount, Currency};
use tribute_core::payout::{export as export_files, ExportFormat};
use tribute_core::FieldError;
use tribute_store::{PayoutFilter, PayoutRequestFilter, StoredPayout, StoredPayoutRequest};

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::{parse_int, parse_partner_filter, parse_time, restrict_to_own};
use crate::http::{List, Paging, Query};
use crate::AppState;

/// The response header saying how many files an export is (`part` picks one).
pub const EXPORT_PARTS_HEADER: &str = "tribute-export-parts";

/// The most parts an export may be asked for (a million PayPal rows).
pub const MAX_PART: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payouts", get(list).post(create))
        .route("/payouts/{id}", get(show))
        .route("/payouts/{id}/export", get(export))
        .route("/payouts/{id}/paid", post(mark_paid))
        .route("/payout-requests", get(list_requests).post(create_request))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePayout {
    program_id: String,
    until: Option<String>,
    min_amount: Option<i64>,
}

#[derive(Deserialize)]
struct ListQuery {
    program_id: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: String,
    part: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    partner_id: Option<String>,
    amount: Option<i64>,
}

#[derive(Deserialize)]
struct RequestListQuery {
    program_id: Option<String>,
    partner_id: Option<String>,
    status: Option<String>,
}

/// A program id in a body or filter: malformed is a 422 naming `field`.
fn program_field(v: &str) -> Result<tribute_core::ids::ProgramId, FieldError> {
    tribute_core::ids::ProgramId::parse(v).map_err(|e| e.at("program_id"))
}

/// A status filter: one of `allowed`, else a 422 naming `status`.
fn status_filter(v: Option<String>, allowed: &[&str]) -> Result<Option<String>, FieldError> {
    match v {
        Some(s) if !allowed.contains(&s.as_str()) => Err(FieldError::new(
            "status",
            format!("must be one of {}", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

/// A batch this caller may see: another partner's (or a malformed id) is
/// "not found", like one that does not exist.
async fn visible_payout(state: &AppState, auth: &Auth, id: &str) -> ApiResult<StoredPayout> {
    let id = PayoutId::parse(id).map_err(|_| ApiError::NotFound("payout"))?;
    let own = auth.partner_scope()?.map(|(own, _)| own);
    state
        .store
        .payout(&id, own)
        .await?
        .ok_or(ApiError::NotFound("payout"))
}

/// `POST /payouts`: a batch of the program's payable balances as of
/// `until` (default: now), each at least `min_amount` (and the program's
/// minimum payout). Nothing to pay is a 409 naming `min_amount` or `until`.
#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreatePayout>,
) -> ApiResult<(StatusCode, Json<StoredPayout>)> {
    auth.require_admin()?;
    let program = program_field(&body.program_id)?;
    let until = body
        .until
        .as_deref()
        .map(|s| parse_time("until", s))
        .transpose()?;
    let min_amount = check_amount("min_amount", body.min_amount.unwrap_or(0))?;
    if state.store.program(&program).await?.is_none() {
        return Err(FieldError::new("program_id", "no such program").into());
    }
    let now = Utc::now();
    let payout = state
        .store
        .create_payout(&program, until.unwrap_or(now), min_amount, now)
        .await?;
    Ok((StatusCode::CREATED, Json(payout)))
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<StoredPayout>>> {
    let filter = PayoutFilter {
        program_id: q.program_id.as_deref().map(program_field).transpose()?,
        partner_id: auth.partner_scope()?.map(|(own, _)| own.clone()),
        status: status_filter(q.status, &["created", "paid"])?,
    };
    let rows = state.store.payouts(&filter, page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredPayout>> {
    Ok(Json(visible_payout(&state, &auth, &id).await?))
}

/// `POST /payouts/{id}/paid`: record the payments; again, nothing changes.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn mark_paid(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredPayout>> {
    auth.require_admin()?;
    let id = PayoutId::parse(&id).map_err(|_| ApiError::NotFound("payout"))?;
    let (payout, _already) = state.store.mark_payout_paid(&id, Utc::now()).await?;
    Ok(Json(payout))
}

/// `GET /payouts/{id}/export?format=&part=`: one file of the batch as
/// `text/csv`; `Tribute-Export-Parts` says how many files it takes (PayPal
/// takes 5,000 rows a file, Wise 1,000). What the batch cannot be written
/// as (a partner without a payout e-mail, a part past the last) is a 409
/// naming the field.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn export(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    auth.require_admin()?;
    let id = PayoutId::parse(&id).map_err(|_| ApiError::NotFound("payout"))?;
    // Exactly as documented: `PayPal` is not one of the formats here.
    let format = match q.format.as_str() {
        "paypal" | "wise" | "csv" => ExportFormat::parse("format", &q.format)?,
        other => {
            return Err(FieldError::new(
                "format",
                format!("`{other}` is not an export format: paypal, wise or csv"),
            )
            .into())
        }
    };
    let part = parse_int("part", q.part.as_deref(), 1, 1, MAX_PART)?;
    let (payout, items) = state
        .store
        .payout_export_items(&id)
        .await?
        .ok_or(ApiError::NotFound("payout"))?;
    let currency = Currency::parse(&payout.currency).map_err(|e| {
        anyhow::anyhow!("payout {} has currency {}: {e}", payout.id, payout.currency)
    })?;
    let files = export_files(format, &items, currency).map_err(|e| ApiError::Conflict {
        field: e.field,
        message: e.message,
    })?;
    let count = files.len();
    let file = usize::try_from(part - 1)
        .ok()
        .and_then(|i| files.into_iter().nth(i))
        .ok_or_else(|| ApiError::Conflict {
            field: "part".into(),
            message: format!("the export is {count} file(s): part must be 1 to {count}"),
        })?;
    let filename = format!("{}-{}-{part}.csv", payout.id, format.as_str());
    Ok(csv_response(file, &filename, Some(count)))
}

/// A CSV file as an attachment named `filename`, with the export's part
/// count when it has one.
pub fn csv_response(body: String, filename: &str, parts: Option<usize>) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    // The name is made of ids, a format and digits: always a valid value.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(n) = parts {
        headers.insert(
            HeaderName::from_static(EXPORT_PARTS_HEADER),
            HeaderValue::from(n),
        );
    }
    response
}

/// `POST /payout-requests`: a partner key asks for its own payout (naming
/// no partner, or itself); an admin names the partner. The amount defaults
/// to all the partner may ask for; too much or below the program's minimum
/// payout is a 409 naming `amount`.
#[tracing::instrument(skip_all)]
async fn create_request(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<StoredPayoutRequest>)> {
    let amount = body
        .amount
        .map(|a| match check_amount("amount", a)? {
            0 => Err(FieldError::new("amount", "must be at least 1 minor unit")),
            a => Ok(a),
        })
        .transpose()?;
    let partner = match (auth.partner_scope()?, body.partner_id.as_deref()) {
        (Some((own, _)), None) => own.clone(),
        (Some((own, _)), Some(asked)) => {
            if asked != own.as_str() {
                return Err(ApiError::NotFound("partner"));
            }
            own.clone()
        }
        (None, Some(asked)) => PartnerId::parse(asked).map_err(|e| e.at("partner_id"))?,
        (None, None) => {
            return Err(FieldError::new("partner_id", "is required with an admin key").into())
        }
    };
    let request = state
        .store
        .create_payout_request(&partner, amount, Utc::now())
        .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

#[tracing::instrument(skip_all)]
async fn list_requests(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<RequestListQuery>,
) -> ApiResult<Json<List<StoredPayoutRequest>>> {
    let mut filter = PayoutRequestFilter {
        program_id: q.program_id.as_deref().map(program_field).transpose()?,
        partner_id: parse_partner_filter(q.partner_id.as_deref())?,
        status: status_filter(q.status, &["open", "batched", "paid"])?,
    };
    let own = auth.partner_scope()?.map(|(own, _)| own);
    restrict_to_own(&mut filter.partner_id, own)?;
    let rows = state.store.payout_requests(&filter, page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}
