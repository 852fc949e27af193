//! `/api/v1/fx-rates` (admin): the owner's exchange rates into a program's
//! currency. A conversion reported in another currency is converted with
//! the rate in force at its time (`services::conversions`); without one it
//! is refused.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tribute_core::fx::FxRate;
use tribute_core::ids::{FxRateId, ProgramId};
use tribute_core::money::Currency;
use tribute_core::FieldError;
use tribute_store::{FxRateFilter, StoredFxRate};

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::parse_program_id;
use crate::http::{List, Paging, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/fx-rates", get(list).post(create))
        .route("/fx-rates/{id}", get(show).delete(remove))
}

/// A rate as the API shows it: core's shape with its id, program and
/// creation time.
#[derive(Serialize)]
struct FxRateView {
    id: FxRateId,
    program_id: ProgramId,
    #[serde(flatten)]
    rate: FxRate,
    created_at: chrono::DateTime<Utc>,
}

impl From<StoredFxRate> for FxRateView {
    fn from(r: StoredFxRate) -> Self {
        Self {
            id: r.id,
            program_id: r.program_id,
            rate: r.rate,
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    program_id: Option<String>,
    from_currency: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<FxRateView>)> {
    auth.require_admin()?;
    if body.get("id").is_some() {
        return Err(FieldError::new("id", "is set by the server").into());
    }
    let program_id = body
        .get("program_id")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new("program_id", "is required"))?;
    let program_id = ProgramId::parse(program_id).map_err(|e| e.at("program_id"))?;
    let mut rate = FxRate::from_json(&body)?;
    let program = state
        .store
        .program(&program_id)
        .await?
        .ok_or_else(|| FieldError::new("program_id", "no such program"))?;
    let currency = program.settings.currency;
    if rate.to != currency {
        return Err(FieldError::new(
            "to_currency",
            format!("must be the program's currency, {currency}: rates convert into it"),
        )
        .into());
    }
    // Stored to the millisecond: answer what will be read back.
    rate.effective_at = rate.effective_at.trunc_subsecs(3);
    let stored = StoredFxRate {
        id: FxRateId::generate(),
        program_id,
        rate,
        created_at: Utc::now().trunc_subsecs(3),
    };
    state.store.insert_fx_rate(&stored).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<FxRateView>>> {
    auth.require_admin()?;
    let filter = FxRateFilter {
        program_id: q.program_id.as_deref().map(parse_program_id).transpose()?,
        from: q
            .from_currency
            .as_deref()
            .map(|c| Currency::parse(c).map_err(|e| e.at("from_currency")))
            .transpose()?,
    };
    let rows = state.store.fx_rates(&filter, page).await?;
    Ok(Json(List::from_overfetch(
        rows.into_iter().map(FxRateView::from).collect(),
        page,
    )))
}

async fn load(state: &AppState, id: &str) -> ApiResult<StoredFxRate> {
    let id = FxRateId::parse(id).map_err(|_| ApiError::NotFound("exchange rate"))?;
    state
        .store
        .fx_rate(&id)
        .await?
        .ok_or(ApiError::NotFound("exchange rate"))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<FxRateView>> {
    auth.require_admin()?;
    Ok(Json(load(&state, &id).await?.into()))
}

/// Delete a rate (a mistaken one): conversions already converted with it
/// keep it; later ones use the rate in force without it.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<FxRateView>> {
    auth.require_admin()?;
    let rate = load(&state, &id).await?;
    state.store.delete_fx_rate(&rate.id).await?;
    Ok(Json(rate.into()))
}
