//! API keys: stored by hash, resolved to the principal they authenticate,
//! listed and revoked. (The server's own secrets are in `secrets.rs`.)

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tribute_core::apikey::{hash_token, ApiKey, KeyKind, Scope};
use tribute_core::ids::{ApiKeyId, PartnerId, ProgramId};

use crate::{corrupt, from_ms, to_ms, Context, Result, Store, StoreError};

impl Store {
    /// Store a key by the hash of its token.
    #[tracing::instrument(skip(self, key, token_hash), fields(id = %key.id))]
    pub async fn insert_api_key(&self, key: &ApiKey, token_hash: &str) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(key.id.as_str())
        .bind(key.scope.as_str())
        .bind(key.kind.as_str())
        .bind(key.partner_id.as_ref().map(|p| p.as_str()))
        .bind(key.program_id.as_ref().map(|p| p.as_str()))
        .bind(key.name.as_deref())
        .bind(to_ms(key.created_at))
        .bind(key.revoked_at.map(to_ms))
        .bind(token_hash)
        .execute(self.pool())
        .await
        .context("inserting api key")?;
        Ok(())
    }

    /// The live (not revoked) key whose token this is.
    #[tracing::instrument(skip(self, token))]
    pub async fn api_key_by_token(&self, token: &str) -> Result<Option<ApiKey>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(hash_token(token))
        .fetch_optional(self.pool())
        .await
        .context("looking up api key")?
        .map(ApiKey::try_from)
        .transpose()
    }

    /// A key by id, revoked or not.
    #[tracing::instrument(skip(self))]
    pub async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .context("loading api key")?
            .map(ApiKey::try_from)
            .transpose()
    }

    /// Every key, revoked ones included, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await
        .context("listing api keys")?
        .into_iter()
        .map(ApiKey::try_from)
        .collect()
    }

    /// Revoke a key: from now on it resolves to nothing. Returns whether
    /// this call revoked it; revoking a revoked key changes nothing (its
    /// first revocation time stays) and returns `false`. An unknown id is
    /// `NotFound`.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.as_str())
                .bind(to_ms(at))
                .execute(self.pool())
                .await
                .context("revoking api key")?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM api_keys WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .context("looking up api key")?;
        match exists {
            Some(_) => Ok(false),
            None => Err(StoreError::NotFound("api key")),
        }
    }
}

const KEY_COLUMNS: &str = "id, scope, kind, partner_id, program_id, name, created_at, revoked_at";

#[derive(FromRow)]
struct ApiKeyRow {
    id: String,
    scope: String,
    kind: String,
    partner_id: Option<String>,
    program_id: Option<String>,
    name: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<Self> {
        Ok(ApiKey {
            id: ApiKeyId::parse(&r.id).map_err(corrupt("key id"))?,
            scope: Scope::parse(&r.scope).map_err(corrupt("key scope"))?,
            kind: KeyKind::parse(&r.kind).map_err(corrupt("key kind"))?,
            partner_id: r
                .partner_id
                .as_deref()
                .map(PartnerId::parse)
                .transpose()
                .map_err(corrupt("key partner"))?,
            program_id: r
                .program_id
                .as_deref()
                .map(ProgramId::parse)
                .transpose()
                .map_err(corrupt("key program"))?,
            name: r.name,
            created_at: from_ms(r.created_at)?,
            revoked_at: r.revoked_at.map(from_ms).transpose()?,
        })
    }
}
