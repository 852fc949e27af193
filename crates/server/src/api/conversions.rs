//! `GET /api/v1/conversions` and `GET /api/v1/conversions/{id}`: read
//! conversions back, each shown as its reader may see it (recording them
//! is ingestion's job).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tribute_core::ids::{ConversionId, ProgramId};
use tribute_core::tracking::ConversionStatus;
use tribute_store::ConversionFilter;

use crate::http::conversion::{ownership, ConversionView, Viewer};
use crate::http::query::{parse_partner_filter, parse_time, restrict_to_own};
use crate::http::{ApiError, ApiResult, Auth, List, Paging, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversions", get(list))
        .route("/conversions/{id}", get(show))
}

async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversionView>> {
    let viewer = auth.conversion_reader()?;
    let id = ConversionId::parse(&id).map_err(|_| ApiError::NotFound("conversion"))?;
    let c = state
        .store
        .conversion(&id)
        .await?
        .ok_or(ApiError::NotFound("conversion"))?;
    ConversionView::load(&state.store, c, &viewer)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("conversion"))
}

/// Filters of a conversion list (`limit`/`offset` are read by [`Paging`]).
#[derive(Deserialize)]
struct ListQuery {
    program_id: Option<String>,
    partner_id: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<ConversionView>>> {
    let viewer = auth.conversion_reader()?;
    let mut filter = ConversionFilter {
        program_id: q
            .program_id
            .as_deref()
            .map(|p| ProgramId::parse(p).map_err(|e| e.at("program_id")))
            .transpose()?,
        partner_id: parse_partner_filter(q.partner_id.as_deref())?,
        status: q
            .status
            .as_deref()
            .map(ConversionStatus::parse)
            .transpose()?,
        from: q
            .from
            .as_deref()
            .map(|s| parse_time("from", s))
            .transpose()?,
        to: q.to.as_deref().map(|s| parse_time("to", s)).transpose()?,
    };
    let own = match &viewer {
        Viewer::Partner(p) => Some(p),
        _ => None,
    };
    restrict_to_own(&mut filter.partner_id, own)?;
    let rows = state.store.conversions(&filter, page).await?;
    let ids: Vec<ConversionId> = rows.iter().map(|c| c.id.clone()).collect();
    // One query for every listed conversion's credits, not one per row.
    let mut credits = state.store.conversion_credits_of(&ids).await?;
    let mut risks = state.store.conversion_risks_of(&ids).await?;
    let mut views = Vec::with_capacity(rows.len());
    for c in rows {
        let mine = credits.remove(c.id.as_str()).unwrap_or_default();
        let (own_coupon, own_click) = ownership(&state.store, &c, &viewer).await?;
        let risk = risks.remove(c.id.as_str());
        views.extend(ConversionView::new(
            c, mine, &viewer, own_coupon, own_click, risk,
        ));
    }
    Ok(Json(List::from_overfetch(views, page)))
}
