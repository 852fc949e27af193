//! `POST /hooks/{kind}/{integration_id}`: deliveries from Stripe, Shopify,
//! HubSpot or any system with a generic mapping.
//!
//! Each delivery is verified with its provider's own scheme
//! (`tribute_core::integration::verify`) before anything is read from it.
//! A bad or stale signature is answered 401 or 400 and logged without its
//! body; nothing else is written. A verified one is logged with its
//! provider id, so a replay answers 200 `duplicate` and does nothing; one
//! that failed before is processed again (the provider's retry). The
//! delivery log is at `/api/v1/integrations/{id}/deliveries`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;
use tribute_core::ids::IntegrationId;
use tribute_core::integration::{verify, InboundRequest, IntegrationKind, VerifyError};
use tribute_store::{InboundStart, StoredIntegration};

use crate::http::body::RawBody;
use crate::http::{ApiError, ApiResult};
use crate::services::inbound::process_logged;
use crate::AppState;

/// The most of an `x-shopify-topic` header kept (Shopify's longest topic
/// is a few dozen characters).
const MAX_TOPIC: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{kind}/{id}", post(receive))
}

/// The integration a hook URL names, of the kind it names (anything else
/// is 404: the URL does not exist).
async fn integration_of(state: &AppState, kind: &str, id: &str) -> ApiResult<StoredIntegration> {
    let kind =
        IntegrationKind::parse("kind", kind).map_err(|_| ApiError::NotFound("integration"))?;
    let id = IntegrationId::parse(id).map_err(|_| ApiError::NotFound("integration"))?;
    state
        .store
        .integration(&id)
        .await?
        .filter(|i| i.kind == kind)
        .ok_or(ApiError::NotFound("integration"))
}

/// The URLs the provider may have called (HubSpot signs it): the
/// configured public URL's, and the one the `Host` header gives (what a
/// provider calling this address directly sees).
fn called_urls(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Vec<String> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut urls = vec![format!(
        "{}{path}",
        state.config.public_url.trim_end_matches('/')
    )];
    if let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) {
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|_| state.config.trust_proxy)
            .unwrap_or("http");
        let direct = format!("{proto}://{host}{path}");
        if !urls.contains(&direct) {
            urls.push(direct);
        }
    }
    urls
}

#[tracing::instrument(skip_all, fields(kind = %kind, id = %id))]
async fn receive(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let integration = integration_of(&state, &kind, &id).await?;
    let now = Utc::now();
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    // Logged even when the signature fails, so kept short: Shopify's
    // topics are a few words.
    let topic = headers
        .get("x-shopify-topic")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.chars().take(MAX_TOPIC).collect::<String>());
    let mut verified = Err(VerifyError::Mismatch);
    for url in called_urls(&state, &headers, &uri) {
        let req = InboundRequest {
            method: method.as_str(),
            url: &url,
            headers: &pairs,
            body: &body,
        };
        verified = verify(
            integration.kind,
            &integration.secret,
            &integration.mapping,
            &req,
            now,
        );
        if !matches!(verified, Err(VerifyError::Mismatch)) {
            break;
        }
    }
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            state
                .store
                .log_rejected_delivery(&integration.id, topic.as_deref(), &e.to_string(), now)
                .await?;
            return Err(match e {
                VerifyError::Stale(_) | VerifyError::Malformed(_) => {
                    ApiError::bad_request(Some("signature".to_owned()), e.to_string())
                }
                VerifyError::Missing(_) | VerifyError::Mismatch => {
                    ApiError::BadSignature(e.to_string())
                }
            });
        }
    };
    // Logging it and processing it run on a task of their own: a provider
    // that hangs up never leaves a delivery half done or `processing`.
    let state = state.clone();
    let answer = tokio::spawn(async move {
        let text = String::from_utf8_lossy(&body).replace('\0', "");
        let start = state
            .store
            .start_inbound_delivery(
                &integration.id,
                &verified.delivery_id,
                topic.as_deref(),
                &text,
                now,
            )
            .await?;
        match start {
            InboundStart::Duplicate(first) => Ok(json!({
                "status": "duplicate",
                "delivery_id": first.id,
                "first_status": first.status,
            })),
            InboundStart::Process(id) => {
                process_logged(&state, &integration, &id, topic, body.to_vec()).await
            }
        }
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("inbound task failed: {e}")))??;
    Ok(Json(answer).into_response())
}
