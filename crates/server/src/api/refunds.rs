//! Money moved by hand or by the customer: refunds and chargebacks of a
//! conversion (`/conversions/{id}/refunds`), manual assignment of a
//! conversion no partner earned (`/conversions/{id}/assign`), and
//! adjustments of a partner's payable balance
//! (`/partners/{id}/adjustments`). Admin only.
//!
//! Each runs on its own task to completion: a client that hangs up never
//! leaves half a refund behind.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tribute_core::ids::{ConversionId, PartnerId};
use tribute_core::money::MAX_MINOR;
use tribute_core::FieldError;
use tribute_store::{
    CommissionFilter, NewRefund, Page, RefundKind, StoredCommission, StoredRefund,
};

use crate::http::{ApiError, ApiJson, ApiResult, Auth};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversions/{id}/refunds", post(refund).get(refunds))
        .route("/conversions/{id}/assign", post(assign))
        .route("/partners/{id}/adjustments", post(adjust))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    amount: i64,
    reason: String,
    external_id: String,
    kind: Option<String>,
}

fn amount(field: &str, v: i64) -> Result<i64, FieldError> {
    if !(1..=MAX_MINOR).contains(&v) {
        return Err(FieldError::new(
            field,
            format!("must be between 1 and {MAX_MINOR} minor units"),
        ));
    }
    Ok(v)
}

async fn conversion_of(
    state: &AppState,
    id: &str,
) -> ApiResult<tribute_core::tracking::Conversion> {
    let id = ConversionId::parse(id).map_err(|_| ApiError::NotFound("conversion"))?;
    state
        .store
        .conversion(&id)
        .await?
        .ok_or(ApiError::NotFound("conversion"))
}

/// `POST /conversions/{id}/refunds`: 201 with the refund; the same
/// `external_id` again answers 200 with the first one and
/// `Idempotent-Replayed: true`.
async fn refund(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RefundBody>,
) -> ApiResult<Response> {
    auth.require_admin()?;
    let kind = match body.kind.as_deref() {
        None | Some("refund") => RefundKind::Refund,
        Some("chargeback") => RefundKind::Chargeback,
        Some(_) => return Err(FieldError::new("kind", "must be refund or chargeback").into()),
    };
    let new = NewRefund {
        conversion_id: ConversionId::parse(&id).map_err(|_| ApiError::NotFound("conversion"))?,
        external_id: tribute_core::conversion::parse_external_id(
            "external_id",
            Some(&body.external_id),
            200,
        )?
        .ok_or_else(|| FieldError::new("external_id", "is required"))?,
        kind,
        amount: amount("amount", body.amount)?,
        reason: tribute_core::partner::parse_label("reason", &body.reason, 500)?,
    };
    conversion_of(&state, &id).await?;
    let store = state.store.clone();
    let (refund, replayed) =
        tokio::spawn(async move { store.refund_conversion(&new, Utc::now()).await })
            .await
            .map_err(|e| anyhow::anyhow!("refund task failed: {e}"))??;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(refund)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Serialize)]
struct Refunds {
    data: Vec<StoredRefund>,
}

async fn refunds(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Refunds>> {
    auth.require_admin()?;
    let c = conversion_of(&state, &id).await?;
    Ok(Json(Refunds {
        data: state.store.refunds_of(&c.id).await?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    partner_id: String,
}

#[derive(Serialize)]
struct Commissions {
    data: Vec<StoredCommission>,
}

/// `POST /conversions/{id}/assign`: credit a conversion no partner earned
/// to a partner of its program, and back-fill the commissions.
async fn assign(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<(StatusCode, Json<Commissions>)> {
    auth.require_admin()?;
    let partner_id = PartnerId::parse(&body.partner_id).map_err(|e| e.at("partner_id"))?;
    let c = conversion_of(&state, &id).await?;
    let partner = state
        .store
        .partner(&partner_id)
        .await?
        .filter(|p| p.program_id == c.program_id)
        .ok_or_else(|| {
            FieldError::new("partner_id", "is not a partner of the conversion's program")
        })?;
    let store = state.store.clone();
    let conversion = c.clone();
    tokio::spawn(async move {
        store
            .assign_conversion(&conversion, &partner.id, Utc::now())
            .await
    })
    .await
    .map_err(|e| anyhow::anyhow!("assignment task failed: {e}"))??;
    let filter = CommissionFilter {
        conversion_id: Some(c.id.clone()),
        ..Default::default()
    };
    let page = Page {
        limit: 1000,
        offset: 0,
    };
    let data = state.store.commissions(&filter, page).await?;
    Ok((StatusCode::CREATED, Json(Commissions { data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustBody {
    amount: i64,
    reason: String,
}

#[derive(Serialize)]
struct Adjusted {
    entry_id: String,
    partner_id: String,
    amount: i64,
    reason: String,
}

/// `POST /partners/{id}/adjustments`: credit (positive) or debit
/// (negative) a partner's payable balance; the reason is required.
async fn adjust(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AdjustBody>,
) -> ApiResult<(StatusCode, Json<Adjusted>)> {
    auth.require_admin()?;
    let id = PartnerId::parse(&id).map_err(|_| ApiError::NotFound("partner"))?;
    let partner = state
        .store
        .partner(&id)
        .await?
        .ok_or(ApiError::NotFound("partner"))?;
    if body.amount == 0 || body.amount.unsigned_abs() > MAX_MINOR as u64 {
        return Err(FieldError::new(
            "amount",
            format!("must be a non-zero amount of at most {MAX_MINOR} minor units either way"),
        )
        .into());
    }
    let reason = tribute_core::partner::parse_label("reason", &body.reason, 500)
        .map_err(|_| FieldError::new("reason", "is required: 1 to 500 characters saying why"))?;
    let store = state.store.clone();
    let (amount, why) = (body.amount, reason.clone());
    let entry = tokio::spawn(async move {
        store
            .adjust_partner(&partner.program_id, &partner.id, amount, &why, Utc::now())
            .await
    })
    .await
    .map_err(|e| anyhow::anyhow!("adjustment task failed: {e}"))??;
    Ok((
        StatusCode::CREATED,
        Json(Adjusted {
            entry_id: entry.to_string(),
            partner_id: id.to_string(),
            amount: body.amount,
            reason,
        }),
    ))
}
