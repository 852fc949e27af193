//! `/api/v1/partners` and a partner's click metrics.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tribute_core::ids::{PartnerId, ProgramId};
use tribute_core::partner::{parse_label, Email, Partner, PartnerStatus, Slug};
use tribute_core::FieldError;
use tribute_store::{PartnerFilter, PartnerMetrics};

use super::{double_option, opt_label};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::parse_program_id;
use crate::http::{List, Paging, Period, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/partners", get(list).post(create))
        .route("/partners/{id}", get(show).patch(update))
        .route("/partners/{id}/metrics", get(metrics))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePartner {
    program_id: String,
    slug: String,
    name: String,
    email: Option<String>,
    payout_email: Option<String>,
    status: Option<String>,
    tier: Option<String>,
    group: Option<String>,
    team_lead_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePartner {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    payout_email: Option<Option<String>>,
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    tier: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    group: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    team_lead_id: Option<Option<String>>,
}

#[derive(Deserialize)]
struct ListQuery {
    program_id: Option<String>,
}

/// Resolve a partner id from a path, as the caller may see it: another
/// partner's id is "not found", exactly like an id that does not exist.
pub(super) async fn visible_partner(state: &AppState, auth: &Auth, id: &str) -> ApiResult<Partner> {
    let id = PartnerId::parse(id).map_err(|_| ApiError::NotFound("partner"))?;
    if !auth.can_see(&id)? {
        return Err(ApiError::NotFound("partner"));
    }
    state
        .store
        .partner(&id)
        .await?
        .ok_or(ApiError::NotFound("partner"))
}

/// Where a partner is paid: an e-mail address, the error naming `payout_email`.
fn payout_email(v: Option<&str>) -> Result<Option<Email>, FieldError> {
    v.map(|e| Email::parse(e).map_err(|err| err.at("payout_email")))
        .transpose()
}

/// A team lead must be another partner of the same program.
async fn check_team_lead(state: &AppState, partner: &Partner, lead: &str) -> ApiResult<PartnerId> {
    let invalid = |m: &str| ApiError::from(FieldError::new("team_lead_id", m));
    let lead_id = PartnerId::parse(lead).map_err(|_| invalid("is not a partner id"))?;
    if lead_id == partner.id {
        return Err(invalid("a partner cannot lead their own team"));
    }
    match state.store.partner(&lead_id).await? {
        Some(l) if l.program_id == partner.program_id => Ok(lead_id),
        _ => Err(invalid("is not a partner of this program")),
    }
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreatePartner>,
) -> ApiResult<(StatusCode, Json<Partner>)> {
    auth.require_admin()?;
    let program_id = ProgramId::parse(&body.program_id).map_err(|e| e.at("program_id"))?;
    if state.store.program(&program_id).await?.is_none() {
        return Err(FieldError::new("program_id", "no such program").into());
    }
    let mut partner = Partner {
        id: PartnerId::generate(),
        program_id,
        slug: Slug::parse(&body.slug)?,
        name: parse_label("name", &body.name, 200)?,
        email: body.email.as_deref().map(Email::parse).transpose()?,
        payout_email: payout_email(body.payout_email.as_deref())?,
        status: body
            .status
            .as_deref()
            .map(PartnerStatus::parse)
            .transpose()?
            .unwrap_or(PartnerStatus::Active),
        tier: opt_label("tier", body.tier, 100)?,
        group: opt_label("group", body.group, 100)?,
        team_lead_id: None,
        created_at: Utc::now(),
    };
    if let Some(lead) = body.team_lead_id.as_deref() {
        partner.team_lead_id = Some(check_team_lead(&state, &partner, lead).await?);
    }
    state.store.insert_partner(&partner).await?;
    Ok((StatusCode::CREATED, Json(partner)))
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<Partner>>> {
    let filter = PartnerFilter {
        program_id: q.program_id.as_deref().map(parse_program_id).transpose()?,
        only: auth.partner_scope()?.map(|(own, _)| own.clone()),
    };
    let rows = state.store.partners(&filter, page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Partner>> {
    Ok(Json(visible_partner(&state, &auth, &id).await?))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdatePartner>,
) -> ApiResult<Json<Partner>> {
    auth.require_admin()?;
    let mut p = visible_partner(&state, &auth, &id).await?;
    if let Some(v) = body.slug {
        p.slug = Slug::parse(&v)?;
    }
    if let Some(v) = body.name {
        p.name = parse_label("name", &v, 200)?;
    }
    if let Some(v) = body.email {
        p.email = v.as_deref().map(Email::parse).transpose()?;
    }
    if let Some(v) = body.payout_email {
        p.payout_email = payout_email(v.as_deref())?;
    }
    if let Some(v) = body.status {
        p.status = PartnerStatus::parse(&v)?;
    }
    if let Some(v) = body.tier {
        p.tier = opt_label("tier", v, 100)?;
    }
    if let Some(v) = body.group {
        p.group = opt_label("group", v, 100)?;
    }
    if let Some(v) = body.team_lead_id {
        p.team_lead_id = match v {
            None => None,
            Some(lead) => Some(check_team_lead(&state, &p, &lead).await?),
        };
    }
    state.store.update_partner(&p).await?;
    // Status gates crediting on the redirect path.
    state.links_changed();
    Ok(Json(p))
}

#[derive(Serialize)]
struct MetricsView {
    partner_id: PartnerId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    #[serde(flatten)]
    metrics: PartnerMetrics,
}

/// `GET /partners/{id}/metrics?from=&to=`: the period `[from, to)`, by
/// default the last 30 days.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn metrics(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Period { from, to }: Period,
) -> ApiResult<Json<MetricsView>> {
    let partner = visible_partner(&state, &auth, &id).await?;
    let metrics = state.store.partner_metrics(&partner.id, from, to).await?;
    Ok(Json(MetricsView {
        partner_id: partner.id,
        from,
        to,
        metrics,
    }))
}
