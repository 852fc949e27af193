//! `/api/v1/links`: tracked links. A partner key creates and edits its own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tribute_core::ids::{LinkId, PartnerId, ProgramId};
use tribute_core::link::{Destination, Link, ShortCode, Utm};
use tribute_core::partner::Partner;
use tribute_core::FieldError;

use super::partners::visible_partner;
use super::{double_option, opt_label, owned_filter, OwnedQuery};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::parse_time;
use crate::http::{List, Paging, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/links", get(list).post(create))
        .route("/links/{id}", get(show).patch(update))
}

/// A link as the API shows it: with its full short URL.
#[derive(Serialize)]
pub struct LinkView {
    #[serde(flatten)]
    link: Link,
    short_url: String,
}

impl LinkView {
    fn new(state: &AppState, link: Link) -> Self {
        let base = state.config.public_url.trim_end_matches('/');
        Self {
            short_url: format!("{base}/r/{}", link.code),
            link,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLink {
    program_id: Option<String>,
    /// Required with an admin key; a partner key creates links for itself.
    partner_id: Option<String>,
    destination: String,
    code: Option<String>,
    source: Option<String>,
    medium: Option<String>,
    campaign: Option<String>,
    content: Option<String>,
    expires_at: Option<String>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_content: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateLink {
    destination: Option<String>,
    code: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    source: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    medium: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    campaign: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    content: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    expires_at: Option<Option<String>>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_content: Option<String>,
}

fn parse_expiry(v: Option<&str>, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(s) = v else { return Ok(None) };
    let at = parse_time("expires_at", s)?;
    if at <= now {
        return Err(FieldError::new("expires_at", "must be in the future"));
    }
    Ok(Some(at))
}

/// Explicit UTM values win over the generated ones.
fn apply_utm_overrides(
    utm: &mut Utm,
    overrides: [(&str, Option<String>); 4],
) -> Result<(), ApiError> {
    for (field, v) in overrides {
        if let Some(v) = opt_label(field, v, 200)? {
            match field {
                "utm_source" => utm.source = Some(v),
                "utm_medium" => utm.medium = Some(v),
                "utm_campaign" => utm.campaign = Some(v),
                _ => utm.content = Some(v),
            }
        }
    }
    Ok(())
}

async fn owner_program(
    state: &AppState,
    partner: &Partner,
) -> ApiResult<tribute_core::program::Program> {
    state
        .store
        .program(&partner.program_id)
        .await?
        .ok_or(ApiError::NotFound("program"))
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateLink>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    let partner_id = match (auth.partner_scope()?, body.partner_id.as_deref()) {
        (Some((own, _)), None) => own.clone(),
        (_, Some(id)) => PartnerId::parse(id).map_err(|e| e.at("partner_id"))?,
        (None, None) => return Err(FieldError::new("partner_id", "is required").into()),
    };
    let partner = visible_partner(&state, &auth, partner_id.as_str())
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => FieldError::new("partner_id", "no such partner").into(),
            other => other,
        })?;
    if let Some(pid) = body.program_id.as_deref() {
        let pid = ProgramId::parse(pid).map_err(|e| e.at("program_id"))?;
        if pid != partner.program_id {
            return Err(FieldError::new("program_id", "the partner is not in this program").into());
        }
    }
    let program = owner_program(&state, &partner).await?;
    let destination = Destination::parse(&body.destination, &program.settings)?;
    let now = Utc::now();
    let source = opt_label("source", body.source, 100)?;
    let medium = opt_label("medium", body.medium, 100)?;
    let campaign = opt_label("campaign", body.campaign, 200)?;
    let content = opt_label("content", body.content, 200)?;
    let mut utm = Utm::generate(
        partner.slug.as_str(),
        source.as_deref(),
        medium.as_deref(),
        campaign.as_deref(),
        content.as_deref(),
    );
    apply_utm_overrides(
        &mut utm,
        [
            ("utm_source", body.utm_source),
            ("utm_medium", body.utm_medium),
            ("utm_campaign", body.utm_campaign),
            ("utm_content", body.utm_content),
        ],
    )?;
    let custom = body.code.as_deref().map(ShortCode::parse).transpose()?;
    let mut link = Link {
        id: LinkId::generate(),
        program_id: partner.program_id.clone(),
        partner_id: partner.id.clone(),
        code: custom.clone().unwrap_or_else(ShortCode::generate),
        destination: destination.as_str().to_owned(),
        source,
        medium,
        campaign,
        content,
        utm,
        expires_at: parse_expiry(body.expires_at.as_deref(), now)?,
        created_at: now,
    };
    // A generated code colliding is astronomically rare; retry rather than fail.
    let mut attempts = 0;
    loop {
        match state.store.insert_link(&link).await {
            Err(tribute_store::StoreError::Conflict { .. }) if custom.is_none() && attempts < 3 => {
                attempts += 1;
                link.code = ShortCode::generate();
            }
            other => {
                other?;
                break;
            }
        }
    }
    state.links.invalidate(link.code.as_str());
    Ok((StatusCode::CREATED, Json(LinkView::new(&state, link))))
}

async fn visible_link(state: &AppState, auth: &Auth, id: &str) -> ApiResult<Link> {
    let id = LinkId::parse(id).map_err(|_| ApiError::NotFound("link"))?;
    auth.own("link", state.store.link(&id).await?, |l| &l.partner_id)
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<OwnedQuery>,
) -> ApiResult<Json<List<LinkView>>> {
    let filter = owned_filter(&auth, q)?;
    let rows = state.store.links(&filter, page).await?;
    let views = rows.into_iter().map(|l| LinkView::new(&state, l)).collect();
    Ok(Json(List::from_overfetch(views, page)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<LinkView>> {
    let link = visible_link(&state, &auth, &id).await?;
    Ok(Json(LinkView::new(&state, link)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateLink>,
) -> ApiResult<Json<LinkView>> {
    let mut link = visible_link(&state, &auth, &id).await?;
    let old_code = link.code.clone();
    let partner = state
        .store
        .partner(&link.partner_id)
        .await?
        .ok_or(ApiError::NotFound("partner"))?;
    if let Some(d) = body.destination {
        let program = owner_program(&state, &partner).await?;
        link.destination = Destination::parse(&d, &program.settings)?
            .as_str()
            .to_owned();
    }
    if let Some(c) = body.code {
        link.code = ShortCode::parse(&c)?;
    }
    let regenerate = body.source.is_some()
        || body.medium.is_some()
        || body.campaign.is_some()
        || body.content.is_some();
    if let Some(v) = body.source {
        link.source = opt_label("source", v, 100)?;
    }
    if let Some(v) = body.medium {
        link.medium = opt_label("medium", v, 100)?;
    }
    if let Some(v) = body.campaign {
        link.campaign = opt_label("campaign", v, 200)?;
    }
    if let Some(v) = body.content {
        link.content = opt_label("content", v, 200)?;
    }
    if regenerate {
        link.utm = Utm::generate(
            partner.slug.as_str(),
            link.source.as_deref(),
            link.medium.as_deref(),
            link.campaign.as_deref(),
            link.content.as_deref(),
        );
    }
    apply_utm_overrides(
        &mut link.utm,
        [
            ("utm_source", body.utm_source),
            ("utm_medium", body.utm_medium),
            ("utm_campaign", body.utm_campaign),
            ("utm_content", body.utm_content),
        ],
    )?;
    if let Some(v) = body.expires_at {
        link.expires_at = parse_expiry(v.as_deref(), Utc::now())?;
    }
    state.store.update_link(&link).await?;
    state.links.invalidate(old_code.as_str());
    state.links.invalidate(link.code.as_str());
    Ok(Json(LinkView::new(&state, link)))
}
