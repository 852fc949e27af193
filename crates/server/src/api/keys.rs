//! `/api/v1/keys` (admin): the API keys (never their secrets), and
//! revocation. A key revoked here stops working at once on this node (its
//! cache of keys is cleared) and within the cache's lifetime (30 s) on every
//! other node; `tribute key revoke` from the command line likewise takes up
//! to 30 s to reach running servers.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use tribute_core::apikey::ApiKey;
use tribute_core::ids::ApiKeyId;

use crate::http::{ApiError, ApiResult, Auth};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list))
        .route("/keys/{id}/revoke", post(revoke))
}

#[derive(Serialize)]
struct Keys {
    data: Vec<ApiKey>,
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Keys>> {
    auth.require_admin()?;
    Ok(Json(Keys {
        data: state.store.api_keys().await?,
    }))
}

/// `POST /keys/{id}/revoke`: 200 with the key as revoked; revoking again
/// changes nothing and answers the same.
async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    auth.require_admin()?;
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::NotFound("key"))?;
    state.store.revoke_api_key(&id, Utc::now()).await?;
    state.keys_changed();
    state
        .store
        .api_key(&id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("key"))
}
