//! `/api/v1/webhook-endpoints` (admin): where Tribute sends its events,
//! signed per Standard Webhooks (`workers::webhooks` sends them from the
//! outbox). Each endpoint has its own `whsec_` secret, shown when it is
//! made or rotated and at `GET …/{id}/secret`; after a rotation the old
//! secret still signs for 24 hours beside the new one. Also each
//! endpoint's deliveries with their attempts, replay by hand, and the
//! owner's notices (an endpoint disabled).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use tribute_core::ids::{PartnerId, ProgramId, WebhookDeliveryId, WebhookEndpointId};
use tribute_core::webhook::{parse_endpoint_url, EventFilter, WebhookSecret};
use tribute_core::FieldError;
use tribute_store::{StoredDelivery, StoredEndpoint, StoredNotice};

use super::{double_option, opt_label};
use crate::http::query::parse_program_id;
use crate::http::{ApiError, ApiJson, ApiResult, Auth, List, Paging, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhook-endpoints", get(list).post(create))
        .route(
            "/webhook-endpoints/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/webhook-endpoints/{id}/secret", get(secret))
        .route("/webhook-endpoints/{id}/rotate-secret", post(rotate))
        .route("/webhook-endpoints/{id}/deliveries", get(deliveries))
        .route("/webhook-deliveries/{id}/replay", post(replay))
        .route("/notices", get(notices))
}

/// How long the secret before a rotation keeps signing.
const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// An endpoint as the API shows it (the secret only where asked for).
#[derive(Serialize)]
struct EndpointView {
    id: String,
    program_id: String,
    url: String,
    description: String,
    /// Subscribed events; empty: all.
    events: Vec<&'static str>,
    partner_id: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl EndpointView {
    fn of(e: &StoredEndpoint, with_secret: bool) -> Self {
        Self {
            id: e.id.to_string(),
            program_id: e.program_id.to_string(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.names(),
            partner_id: e.partner_id.as_ref().map(|p| p.to_string()),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since,
            created_at: e.created_at,
            updated_at: e.updated_at,
            secret: with_secret.then(|| e.secret.as_str().to_owned()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    program_id: String,
    url: String,
    #[serde(default)]
    events: Vec<String>,
    partner_id: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    partner_id: Option<Option<String>>,
    description: Option<String>,
    /// `true` re-enables a disabled endpoint (its waiting deliveries go
    /// out); `false` pauses it.
    enabled: Option<bool>,
}

/// The partner an endpoint is scoped to, checked to be of the program.
async fn scoped_partner(
    state: &AppState,
    program: &ProgramId,
    partner: Option<&str>,
) -> ApiResult<Option<PartnerId>> {
    let Some(p) = partner else {
        return Ok(None);
    };
    let id = PartnerId::parse(p).map_err(|e| e.at("partner_id"))?;
    state
        .store
        .partner(&id)
        .await?
        .filter(|p| &p.program_id == program)
        .ok_or_else(|| FieldError::new("partner_id", "is not a partner of the program"))?;
    Ok(Some(id))
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    auth.require_admin()?;
    let program_id = ProgramId::parse(&body.program_id).map_err(|e| e.at("program_id"))?;
    let url = parse_endpoint_url("url", &body.url, state.config.webhooks.allow_private)?;
    let events = EventFilter::parse("events", &body.events)?;
    let description = opt_label("description", body.description, 500)?.unwrap_or_default();
    state
        .store
        .program(&program_id)
        .await?
        .ok_or_else(|| FieldError::new("program_id", "no such program"))?;
    let partner_id = scoped_partner(&state, &program_id, body.partner_id.as_deref()).await?;
    let now = Utc::now().trunc_subsecs(3);
    let endpoint = StoredEndpoint {
        id: WebhookEndpointId::generate(),
        program_id,
        url: url.to_string(),
        description,
        events,
        partner_id,
        secret: WebhookSecret::generate(),
        previous_secret: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_endpoint(&endpoint).await?;
    Ok((StatusCode::CREATED, Json(EndpointView::of(&endpoint, true))))
}

#[derive(Deserialize)]
struct ListQuery {
    program_id: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<EndpointView>>> {
    auth.require_admin()?;
    let program = q.program_id.as_deref().map(parse_program_id).transpose()?;
    let rows = state.store.endpoints(program.as_ref(), page).await?;
    Ok(Json(List::from_overfetch(
        rows.iter().map(|e| EndpointView::of(e, false)).collect(),
        page,
    )))
}

async fn load(state: &AppState, id: &str) -> ApiResult<StoredEndpoint> {
    let id = WebhookEndpointId::parse(id).map_err(|_| ApiError::NotFound("webhook endpoint"))?;
    state
        .store
        .endpoint(&id)
        .await?
        .ok_or(ApiError::NotFound("webhook endpoint"))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    auth.require_admin()?;
    Ok(Json(EndpointView::of(&load(&state, &id).await?, false)))
}

#[derive(Serialize)]
struct SecretView {
    secret: String,
    /// The secret before the last rotation, while it still signs.
    previous_secret: Option<String>,
    previous_until: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretView>> {
    auth.require_admin()?;
    let e = load(&state, &id).await?;
    let previous = e
        .previous_secret
        .as_ref()
        .filter(|(_, until)| *until > Utc::now());
    Ok(Json(SecretView {
        secret: e.secret.as_str().to_owned(),
        previous_secret: previous.map(|(s, _)| s.as_str().to_owned()),
        previous_until: previous.map(|(_, t)| *t),
    }))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Json<EndpointView>> {
    auth.require_admin()?;
    let mut e = load(&state, &id).await?;
    if let Some(url) = &body.url {
        e.url = parse_endpoint_url("url", url, state.config.webhooks.allow_private)?.to_string();
    }
    if let Some(events) = &body.events {
        e.events = EventFilter::parse("events", events)?;
    }
    if let Some(partner) = &body.partner_id {
        e.partner_id = scoped_partner(&state, &e.program_id, partner.as_deref()).await?;
    }
    if let Some(d) = body.description {
        e.description = opt_label("description", Some(d), 500)?.unwrap_or_default();
    }
    match body.enabled {
        Some(true) if !e.enabled => {
            e.enabled = true;
            e.disabled_reason = None;
            e.failing_since = None;
        }
        Some(false) if e.enabled => {
            e.enabled = false;
            e.disabled_reason = Some("paused by the owner".to_owned());
        }
        _ => {}
    }
    let read_at = e.updated_at;
    e.updated_at = Utc::now().trunc_subsecs(3);
    state
        .store
        .update_endpoint_if_unchanged(&e, read_at)
        .await?;
    Ok(Json(EndpointView::of(&e, false)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn rotate(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    auth.require_admin()?;
    let mut e = load(&state, &id).await?;
    let now = Utc::now().trunc_subsecs(3);
    let old = std::mem::replace(&mut e.secret, WebhookSecret::generate());
    e.previous_secret = Some((old, now + ROTATION_GRACE));
    let read_at = e.updated_at;
    e.updated_at = now;
    state
        .store
        .update_endpoint_if_unchanged(&e, read_at)
        .await?;
    Ok(Json(EndpointView::of(&e, true)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    let e = load(&state, &id).await?;
    state.store.delete_endpoint(&e.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Paging(page): Paging,
) -> ApiResult<Json<List<StoredDelivery>>> {
    auth.require_admin()?;
    let e = load(&state, &id).await?;
    let rows = state.store.endpoint_deliveries(&e.id, page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}

#[derive(Serialize)]
struct Replayed {
    id: String,
    status: &'static str,
}

/// Send a delivery again now, with the same `webhook-id`.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn replay(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    auth.require_admin()?;
    let id = WebhookDeliveryId::parse(&id).map_err(|_| ApiError::NotFound("webhook delivery"))?;
    state.store.replay_delivery(&id, Utc::now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            id: id.to_string(),
            status: "pending",
        }),
    ))
}

#[derive(Deserialize)]
struct NoticeQuery {
    program_id: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn notices(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<NoticeQuery>,
) -> ApiResult<Json<List<StoredNotice>>> {
    auth.require_admin()?;
    let program = q.program_id.as_deref().map(parse_program_id).transpose()?;
    let rows = state.store.notices(program.as_ref(), page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}
