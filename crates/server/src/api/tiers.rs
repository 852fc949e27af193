//! `/api/v1/tiers` (admin): partner levels with a commission multiplier,
//! and `POST /api/v1/tiers/evaluate`, which moves a program's partners to
//! the tiers their results earn now (the daily `workers::tiers` does the
//! same for every program). `GET /api/v1/partners/{id}/tier-changes` lists
//! a partner's moves with their reasons (a partner key: its own only).
//!
//! A program's tiers are checked together (`validate_set`): a name or rank
//! another tier of the program holds is a 409 naming the field.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tribute_core::commission::{validate_set, Tier, TierChange};
use tribute_core::ids::{PartnerId, ProgramId, TierId};
use tribute_core::FieldError;
use tribute_store::{StoredTier, StoredTierChange};

use super::partners::visible_partner;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::parse_program_id;
use crate::http::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tiers", get(list).post(create))
        .route("/tiers/evaluate", post(evaluate))
        .route("/tiers/{id}", get(show).patch(update).delete(remove))
        .route("/partners/{id}/tier-changes", get(changes))
}

/// A tier as the API shows it: core's shape with its id, program and
/// creation time.
#[derive(Serialize)]
struct TierView {
    id: TierId,
    program_id: ProgramId,
    #[serde(flatten)]
    tier: Tier,
    created_at: DateTime<Utc>,
}

impl From<StoredTier> for TierView {
    fn from(t: StoredTier) -> Self {
        Self {
            id: t.id,
            program_id: t.program_id,
            tier: t.tier,
            created_at: t.created_at,
        }
    }
}

/// A recorded move between tiers.
#[derive(Serialize)]
struct TierChangeView {
    id: String,
    program_id: ProgramId,
    partner_id: PartnerId,
    #[serde(flatten)]
    change: TierChange,
    at: DateTime<Utc>,
}

impl From<StoredTierChange> for TierChangeView {
    fn from(c: StoredTierChange) -> Self {
        Self {
            id: c.id,
            program_id: c.program_id,
            partner_id: c.partner_id,
            change: c.change,
            at: c.at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    program_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateBody {
    program_id: String,
}

#[derive(Serialize)]
struct Evaluated {
    program_id: ProgramId,
    changes: Vec<TierChangeView>,
}

fn object(body: &Value) -> ApiResult<&Map<String, Value>> {
    body.as_object()
        .ok_or_else(|| ApiError::bad_request(None, "the body must be a JSON object"))
}

/// Check `tier` among the program's `others`: a name or rank already
/// taken is a conflict on that field.
fn check_set(others: Vec<StoredTier>, tier: &Tier) -> ApiResult<()> {
    let mut set: Vec<Tier> = others.into_iter().map(|t| t.tier).collect();
    set.push(tier.clone());
    validate_set(&set).map_err(|e| match e.field.as_str() {
        "name" | "rank" => ApiError::Conflict {
            field: e.field,
            message: e.message,
        },
        _ => ApiError::Invalid(e),
    })
}

async fn load(state: &AppState, id: &str) -> ApiResult<StoredTier> {
    let id = TierId::parse(id).map_err(|_| ApiError::NotFound("tier"))?;
    state
        .store
        .tier(&id)
        .await?
        .ok_or(ApiError::NotFound("tier"))
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<TierView>)> {
    auth.require_admin()?;
    if object(&body)?.contains_key("id") {
        return Err(FieldError::new("id", "is set by the server").into());
    }
    let program_id = body
        .get("program_id")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new("program_id", "is required"))?;
    let program_id = ProgramId::parse(program_id).map_err(|e| e.at("program_id"))?;
    let tier = Tier::from_json(&body)?;
    if state.store.program(&program_id).await?.is_none() {
        return Err(FieldError::new("program_id", "no such program").into());
    }
    check_set(state.store.tiers(&program_id).await?, &tier)?;
    let stored = StoredTier {
        id: TierId::generate(),
        program_id,
        tier,
        created_at: Utc::now().trunc_subsecs(3),
    };
    state.store.insert_tier(&stored).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// `GET /tiers?program_id=`: the program's tiers, highest rank first.
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let program = parse_program_id(&q.program_id)?;
    let data: Vec<TierView> = state
        .store
        .tiers(&program)
        .await?
        .into_iter()
        .map(TierView::from)
        .collect();
    Ok(Json(serde_json::json!({ "data": data })))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TierView>> {
    auth.require_admin()?;
    Ok(Json(load(&state, &id).await?.into()))
}

/// `PATCH /tiers/{id}`: the fields given replace the tier's
/// (`threshold: null` makes it manual-only). A new name moves with the
/// partners in the tier.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<TierView>> {
    auth.require_admin()?;
    let changes = object(&body)?;
    if let Some(k) = ["id", "program_id"]
        .iter()
        .find(|k| changes.contains_key(**k))
    {
        return Err(FieldError::new(*k, "cannot be changed").into());
    }
    let mut stored = load(&state, &id).await?;
    let mut merged = stored.tier.to_json();
    for (k, v) in changes {
        merged[k] = v.clone();
    }
    let tier = Tier::from_json(&merged)?;
    let others = state
        .store
        .tiers(&stored.program_id)
        .await?
        .into_iter()
        .filter(|t| t.id != stored.id)
        .collect();
    check_set(others, &tier)?;
    stored.tier = tier;
    state.store.update_tier(&stored).await?;
    Ok(Json(stored.into()))
}

/// `DELETE /tiers/{id}`: its partners keep the name, now set by hand
/// (multiplier ×1, never moved automatically) until the owner moves them.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TierView>> {
    auth.require_admin()?;
    let tier = load(&state, &id).await?;
    state.store.delete_tier(&tier.id).await?;
    Ok(Json(tier.into()))
}

/// `POST /tiers/evaluate {"program_id"}`: move the program's partners now.
#[tracing::instrument(skip_all)]
async fn evaluate(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<EvaluateBody>,
) -> ApiResult<Json<Evaluated>> {
    auth.require_admin()?;
    let program_id = ProgramId::parse(&body.program_id).map_err(|e| e.at("program_id"))?;
    let program = state
        .store
        .program(&program_id)
        .await?
        .ok_or_else(|| FieldError::new("program_id", "no such program"))?;
    let now = Utc::now().trunc_subsecs(3);
    let changes = state
        .store
        .evaluate_tiers(&program.id, program.settings.currency, now)
        .await?;
    Ok(Json(Evaluated {
        program_id: program.id,
        changes: changes.into_iter().map(TierChangeView::from).collect(),
    }))
}

/// `GET /partners/{id}/tier-changes`: newest first.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn changes(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let partner = visible_partner(&state, &auth, &id).await?;
    let data: Vec<TierChangeView> = state
        .store
        .tier_changes(&partner.id)
        .await?
        .into_iter()
        .map(TierChangeView::from)
        .collect();
    Ok(Json(serde_json::json!({ "data": data })))
}
