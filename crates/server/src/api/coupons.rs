//! `/api/v1/coupons`: codes tied to partners. Admins write; partners read their own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use tribute_core::coupon::{Coupon, CouponCode};
use tribute_core::ids::{CouponId, PartnerId};
use tribute_core::FieldError;

use super::{owned_filter, OwnedQuery};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::parse_program_id;
use crate::http::{List, Paging, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/coupons", get(list).post(create))
        .route("/coupons/{id}", get(show).patch(update))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCoupon {
    partner_id: String,
    code: String,
    program_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateCoupon {
    partner_id: Option<String>,
    code: Option<String>,
}

/// The partner a coupon is for: it must exist (and be in `program`, if given).
async fn coupon_partner(state: &AppState, id: &str) -> ApiResult<tribute_core::partner::Partner> {
    let id = PartnerId::parse(id).map_err(|e| e.at("partner_id"))?;
    state
        .store
        .partner(&id)
        .await?
        .ok_or_else(|| FieldError::new("partner_id", "no such partner").into())
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateCoupon>,
) -> ApiResult<(StatusCode, Json<Coupon>)> {
    auth.require_admin()?;
    let code = CouponCode::parse(&body.code)?;
    let partner = coupon_partner(&state, &body.partner_id).await?;
    if let Some(pid) = body.program_id.as_deref() {
        if parse_program_id(pid).ok() != Some(partner.program_id.clone()) {
            return Err(FieldError::new("program_id", "the partner is not in this program").into());
        }
    }
    let coupon = Coupon {
        id: CouponId::generate(),
        program_id: partner.program_id,
        partner_id: partner.id,
        code,
        created_at: Utc::now(),
    };
    state.store.insert_coupon(&coupon).await?;
    Ok((StatusCode::CREATED, Json(coupon)))
}

async fn visible_coupon(state: &AppState, auth: &Auth, id: &str) -> ApiResult<Coupon> {
    let id = CouponId::parse(id).map_err(|_| ApiError::NotFound("coupon"))?;
    auth.own("coupon", state.store.coupon(&id).await?, |c| &c.partner_id)
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<OwnedQuery>,
) -> ApiResult<Json<List<Coupon>>> {
    let filter = owned_filter(&auth, q)?;
    let rows = state.store.coupons(&filter, page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Coupon>> {
    Ok(Json(visible_coupon(&state, &auth, &id).await?))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateCoupon>,
) -> ApiResult<Json<Coupon>> {
    auth.require_admin()?;
    let mut coupon = visible_coupon(&state, &auth, &id).await?;
    if let Some(code) = body.code {
        coupon.code = CouponCode::parse(&code)?;
    }
    if let Some(pid) = body.partner_id {
        let partner = coupon_partner(&state, &pid).await?;
        if partner.program_id != coupon.program_id {
            return Err(FieldError::new(
                "partner_id",
                "the partner is not in the coupon's program",
            )
            .into());
        }
        coupon.partner_id = partner.id;
    }
    state.store.update_coupon(&coupon).await?;
    Ok(Json(coupon))
}
