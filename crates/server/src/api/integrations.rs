//! `/api/v1/integrations` (admin): inbound connections to Stripe, Shopify,
//! HubSpot or any system that can send a signed webhook (`generic`, with
//! field mapping rules). Each has its hook URL, `POST /hooks/{kind}/{id}`
//! (`ingest::hooks`), and a log of every delivery it received; a verified
//! delivery can be processed again by hand.
//!
//! The provider's signing secret is write-only: the API shows its last
//! four characters, never the secret.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tribute_core::ids::{InboundDeliveryId, IntegrationId, ProgramId};
use tribute_core::integration::{check_settings, IntegrationKind};
use tribute_core::FieldError;
use tribute_store::{StoredInboundDelivery, StoredIntegration};

use crate::http::query::parse_program_id;
use crate::http::{ApiError, ApiJson, ApiResult, Auth, List, Paging, Query};
use crate::services::inbound::process_logged;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(list).post(create))
        .route("/integrations/{id}", get(show).patch(update).delete(remove))
        .route("/integrations/{id}/deliveries", get(deliveries))
        .route(
            "/integrations/{id}/deliveries/{delivery_id}/retry",
            post(retry),
        )
}

/// An integration as the API shows it.
#[derive(Serialize)]
struct IntegrationView {
    id: String,
    program_id: String,
    kind: &'static str,
    /// Where the provider must send its webhooks.
    hook_url: String,
    /// The secret's last four characters, to tell which one is set.
    secret_hint: String,
    mapping: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl IntegrationView {
    fn of(state: &AppState, i: &StoredIntegration) -> Self {
        let chars: Vec<char> = i.secret.chars().collect();
        let hint: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        Self {
            id: i.id.to_string(),
            program_id: i.program_id.to_string(),
            kind: i.kind.as_str(),
            hook_url: format!(
                "{}/hooks/{}/{}",
                state.config.public_url.trim_end_matches('/'),
                i.kind.as_str(),
                i.id
            ),
            secret_hint: format!("…{hint}"),
            mapping: i.mapping.clone(),
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    program_id: String,
    kind: String,
    secret: String,
    #[serde(default)]
    mapping: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    secret: Option<String>,
    mapping: Option<Value>,
}

/// A provider's signing secret: 8 to 500 printable characters.
fn parse_secret(s: &str) -> Result<String, FieldError> {
    let t = s.trim();
    if !(8..=500).contains(&t.chars().count()) || t.chars().any(char::is_control) {
        return Err(FieldError::new(
            "secret",
            "must be the provider's signing secret: 8 to 500 printable characters",
        ));
    }
    Ok(t.to_owned())
}

/// A mapping: a JSON object (absent: `{}`), checked for the kind.
fn parse_mapping(kind: IntegrationKind, v: Option<Value>) -> Result<Value, FieldError> {
    let v = match v {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(FieldError::new("mapping", "must be a JSON object")),
    };
    check_settings(kind, &v)?;
    Ok(v)
}

/// A new mapping for an integration of `kind`. One that another kind would
/// take conflicts with what this integration is (409, like any request at
/// odds with a record's state); one no kind takes is malformed (422).
fn parse_update_mapping(kind: IntegrationKind, v: Value) -> Result<Value, ApiError> {
    parse_mapping(kind, Some(v.clone())).map_err(|e| {
        let another = [
            IntegrationKind::Stripe,
            IntegrationKind::Shopify,
            IntegrationKind::Hubspot,
            IntegrationKind::Generic,
        ]
        .into_iter()
        .any(|k| k != kind && check_settings(k, &v).is_ok());
        if another {
            ApiError::Conflict {
                message: format!("{} (this is a {} integration)", e.message, kind.as_str()),
                field: e.field,
            }
        } else {
            e.into()
        }
    })
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<IntegrationView>)> {
    auth.require_admin()?;
    let program_id = ProgramId::parse(&body.program_id).map_err(|e| e.at("program_id"))?;
    let kind = IntegrationKind::parse("kind", &body.kind)?;
    let secret = parse_secret(&body.secret)?;
    let mapping = parse_mapping(kind, body.mapping)?;
    state
        .store
        .program(&program_id)
        .await?
        .ok_or_else(|| FieldError::new("program_id", "no such program"))?;
    let now = Utc::now().trunc_subsecs(3);
    let i = StoredIntegration {
        id: IntegrationId::generate(),
        program_id,
        kind,
        secret,
        mapping,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_integration(&i).await?;
    Ok((StatusCode::CREATED, Json(IntegrationView::of(&state, &i))))
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
) -> ApiResult<Json<List<IntegrationView>>> {
    auth.require_admin()?;
    let program = q.program_id.as_deref().map(parse_program_id).transpose()?;
    let rows = state.store.integrations(program.as_ref(), page).await?;
    Ok(Json(List::from_overfetch(
        rows.iter()
            .map(|i| IntegrationView::of(&state, i))
            .collect(),
        page,
    )))
}

async fn load(state: &AppState, id: &str) -> ApiResult<StoredIntegration> {
    let id = IntegrationId::parse(id).map_err(|_| ApiError::NotFound("integration"))?;
    state
        .store
        .integration(&id)
        .await?
        .ok_or(ApiError::NotFound("integration"))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    auth.require_admin()?;
    Ok(Json(IntegrationView::of(&state, &load(&state, &id).await?)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Json<IntegrationView>> {
    auth.require_admin()?;
    let mut i = load(&state, &id).await?;
    if let Some(s) = &body.secret {
        i.secret = parse_secret(s)?;
    }
    if let Some(mapping) = body.mapping {
        i.mapping = parse_update_mapping(i.kind, mapping)?;
    }
    i.updated_at = Utc::now().trunc_subsecs(3);
    state.store.update_integration(&i).await?;
    Ok(Json(IntegrationView::of(&state, &i)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    let i = load(&state, &id).await?;
    state.store.delete_integration(&i.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Paging(page): Paging,
) -> ApiResult<Json<List<StoredInboundDelivery>>> {
    auth.require_admin()?;
    let i = load(&state, &id).await?;
    let rows = state.store.inbound_deliveries(&i.id, page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}

/// Process a verified delivery again (after fixing a mapping or adding an
/// exchange rate): its actions are idempotent, so what succeeded before is
/// not repeated.
#[tracing::instrument(skip_all, fields(id = %id, delivery = %delivery_id))]
async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let i = load(&state, &id).await?;
    let did = InboundDeliveryId::parse(&delivery_id).map_err(|_| ApiError::NotFound("delivery"))?;
    let logged = state
        .store
        .inbound_delivery(&did)
        .await?
        .filter(|d| d.integration_id == i.id.as_str())
        .ok_or(ApiError::NotFound("delivery"))?;
    if !logged.verified {
        return Err(ApiError::Conflict {
            field: "delivery_id".into(),
            message: "this delivery's signature did not verify: there is nothing to process".into(),
        });
    }
    // Processing nothing would record the delivery as failed over what it
    // did, so a delivery past its retention is left as it is.
    if logged.body.is_none() {
        return Err(ApiError::Conflict {
            field: "delivery_id".into(),
            message: "this delivery's body is no longer kept (past the webhook retention): \
                      there is nothing to process"
                .into(),
        });
    }
    // On a task of its own: a client that hangs up never leaves the
    // delivery `processing`.
    let state = state.clone();
    let answer = tokio::spawn(async move {
        let restarted = state
            .store
            .restart_inbound_delivery(&did, Utc::now())
            .await?
            .ok_or_else(|| ApiError::Conflict {
                field: "delivery_id".into(),
                message: "this delivery is being processed right now".into(),
            })?;
        let body = restarted.body.unwrap_or_default().into_bytes();
        process_logged(&state, &i, &did, restarted.topic, body).await
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("retry task failed: {e}")))??;
    Ok(Json(answer))
}
