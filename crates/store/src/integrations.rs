//! Inbound integrations as stored: each provider connection with its
//! secret and mapping, the log of every delivery it received, and the
//! provider ids that name a conversion (so a refund naming a charge finds
//! the sale recorded from its invoice).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use tribute_core::ids::{ConversionId, InboundDeliveryId, IntegrationId, ProgramId};
use tribute_core::integration::IntegrationKind;

use crate::{corrupt, from_ms, to_ms, Context, Page, Result, Store, StoreError};

/// An integration as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIntegration {
    pub id: IntegrationId,
    pub program_id: ProgramId,
    pub kind: IntegrationKind,
    /// The provider's signing secret, as the provider gave it.
    pub secret: String,
    pub mapping: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, program_id, kind, secret, mapping, created_at, updated_at";

#[derive(FromRow)]
struct IntegrationRow {
    id: String,
    program_id: String,
    kind: String,
    secret: String,
    mapping: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<IntegrationRow> for StoredIntegration {
    type Error = StoreError;
    fn try_from(r: IntegrationRow) -> Result<Self> {
        Ok(Self {
            id: IntegrationId::parse(&r.id).map_err(corrupt("integration id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("integration program"))?,
            kind: IntegrationKind::parse("kind", &r.kind).map_err(corrupt("integration kind"))?,
            secret: r.secret,
            mapping: serde_json::from_str(&r.mapping)
                .map_err(|e| StoreError::Corrupt(format!("integration mapping: {e}")))?,
            created_at: from_ms(r.created_at)?,
            updated_at: from_ms(r.updated_at)?,
        })
    }
}

/// Where an inbound delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    /// Its signature did not verify: nothing was done.
    Rejected,
    Processing,
    Processed,
    /// Verified, and nothing to do (an event type Tribute does not act on).
    Ignored,
    /// Verified, and processing failed: the provider's retry, or a retry
    /// by hand, processes it again.
    Failed,
}

impl InboundStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Processing => "processing",
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "rejected" => Self::Rejected,
            "processing" => Self::Processing,
            "processed" => Self::Processed,
            "ignored" => Self::Ignored,
            "failed" => Self::Failed,
            _ => return Err(StoreError::Corrupt(format!("inbound status {s}"))),
        })
    }
}

/// One inbound delivery as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredInboundDelivery {
    pub id: String,
    pub integration_id: String,
    /// The provider's id for it (verified deliveries only).
    pub delivery_key: Option<String>,
    pub topic: Option<String>,
    pub received_at: DateTime<Utc>,
    pub verified: bool,
    pub status: InboundStatus,
    /// What was done: conversion and refund ids, or why nothing was.
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub attempts: i64,
    pub processed_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub body: Option<String>,
}

const DELIVERY_COLUMNS: &str = "id, integration_id, delivery_key, topic, received_at, verified, \
     status, result, error, attempts, processed_at, body";

#[derive(FromRow)]
struct DeliveryRow {
    id: String,
    integration_id: String,
    delivery_key: Option<String>,
    topic: Option<String>,
    received_at: i64,
    verified: i64,
    status: String,
    result: Option<String>,
    error: Option<String>,
    attempts: i64,
    processed_at: Option<i64>,
    body: Option<String>,
}

impl TryFrom<DeliveryRow> for StoredInboundDelivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            integration_id: r.integration_id,
            delivery_key: r.delivery_key,
            topic: r.topic,
            received_at: from_ms(r.received_at)?,
            verified: r.verified != 0,
            status: InboundStatus::parse(&r.status)?,
            result: r
                .result
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("inbound result: {e}")))?,
            error: r.error,
            attempts: r.attempts,
            processed_at: r.processed_at.map(from_ms).transpose()?,
            body: r.body,
        })
    }
}

/// How long a delivery may stay `processing` before a retry takes it over:
/// processing runs on its own task and finishes in seconds, so only a
/// process that died mid-way leaves one behind.
const STALE_PROCESSING: chrono::Duration = chrono::Duration::minutes(5);

/// What starting a verified delivery found.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundStart {
    /// New (or failed before): process it now under this id.
    Process(InboundDeliveryId),
    /// Processed, ignored, or in progress already: a replay.
    Duplicate(StoredInboundDelivery),
}

impl Store {
    #[tracing::instrument(skip(self, i), fields(id = %i.id))]
    pub async fn insert_integration(&self, i: &StoredIntegration) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO integrations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(i.id.as_str())
        .bind(i.program_id.as_str())
        .bind(i.kind.as_str())
        .bind(&i.secret)
        .bind(i.mapping.to_string())
        .bind(to_ms(i.created_at))
        .bind(to_ms(i.updated_at))
        .execute(self.pool())
        .await
        .context("inserting an integration")?;
        Ok(())
    }

    /// Save an integration's secret and mapping.
    #[tracing::instrument(skip(self, i), fields(id = %i.id))]
    pub async fn update_integration(&self, i: &StoredIntegration) -> Result<()> {
        let done = sqlx::query(
            "UPDATE integrations SET secret = $1, mapping = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&i.secret)
        .bind(i.mapping.to_string())
        .bind(to_ms(i.updated_at))
        .bind(i.id.as_str())
        .execute(self.pool())
        .await
        .context("updating an integration")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("integration"));
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn integration(&self, id: &IntegrationId) -> Result<Option<StoredIntegration>> {
        sqlx::query_as::<_, IntegrationRow>(&format!(
            "SELECT {COLUMNS} FROM integrations WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading an integration")?
        .map(StoredIntegration::try_from)
        .transpose()
    }

    /// Integrations, of one program or all, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn integrations(
        &self,
        program: Option<&ProgramId>,
        page: Page,
    ) -> Result<Vec<StoredIntegration>> {
        sqlx::query_as::<_, IntegrationRow>(&format!(
            "SELECT {COLUMNS} FROM integrations WHERE ($1 IS NULL OR program_id = $1) \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(program.map(|p| p.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing integrations")?
        .into_iter()
        .map(StoredIntegration::try_from)
        .collect()
    }

    /// Delete an integration and its delivery log.
    #[tracing::instrument(skip(self))]
    pub async fn delete_integration(&self, id: &IntegrationId) -> Result<()> {
        let mut tx = self.begin_write().await.context("starting a deletion")?;
        sqlx::query("DELETE FROM inbound_deliveries WHERE integration_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .context("deleting an integration's deliveries")?;
        let done = sqlx::query("DELETE FROM integrations WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .context("deleting an integration")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("integration"));
        }
        tx.commit().await.context("committing a deletion")?;
        Ok(())
    }

    /// Log a delivery whose signature did not verify: its error and topic,
    /// never its body (anyone can send one).
    #[tracing::instrument(skip(self))]
    pub async fn log_rejected_delivery(
        &self,
        integration: &IntegrationId,
        topic: Option<&str>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<InboundDeliveryId> {
        let id = InboundDeliveryId::generate_ordered(to_ms(now));
        sqlx::query(
            "INSERT INTO inbound_deliveries (id, integration_id, delivery_key, topic, received_at, \
             verified, status, error, attempts) VALUES ($1, $2, NULL, $3, $4, 0, 'rejected', $5, 0)",
        )
        .bind(id.as_str())
        .bind(integration.as_str())
        .bind(topic)
        .bind(to_ms(now))
        .bind(error)
        .execute(self.pool())
        .await
        .context("logging a rejected delivery")?;
        Ok(id)
    }

    /// Start processing a verified delivery: logged as `processing`, unless
    /// its key was seen before. A replay of one processed, ignored or in
    /// progress is a [`InboundStart::Duplicate`]; one that failed before is
    /// processed again (the provider's retry), under its first id.
    #[tracing::instrument(skip(self, body))]
    pub async fn start_inbound_delivery(
        &self,
        integration: &IntegrationId,
        key: &str,
        topic: Option<&str>,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<InboundStart> {
        let id = InboundDeliveryId::generate_ordered(to_ms(now));
        let inserted = sqlx::query(
            "INSERT INTO inbound_deliveries (id, integration_id, delivery_key, topic, received_at, \
             verified, status, body, attempts, started_at) \
             VALUES ($1, $2, $3, $4, $5, 1, 'processing', $6, 1, $5) \
             ON CONFLICT (integration_id, delivery_key) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(integration.as_str())
        .bind(key)
        .bind(topic)
        .bind(to_ms(now))
        .bind(body)
        .execute(self.pool())
        .await
        .context("logging a delivery")?
        .rows_affected();
        if inserted == 1 {
            return Ok(InboundStart::Process(id));
        }
        // Seen before: take it over only if it failed, or if its processing
        // began long ago and never ended (the process died), in one
        // statement so two concurrent retries cannot both.
        let taken: Option<(String,)> = sqlx::query_as(
            "UPDATE inbound_deliveries SET status = 'processing', attempts = attempts + 1, \
             error = NULL, started_at = $3 WHERE integration_id = $1 AND delivery_key = $2 \
             AND (status = 'failed' OR (status = 'processing' AND started_at < $4)) \
             RETURNING id",
        )
        .bind(integration.as_str())
        .bind(key)
        .bind(to_ms(now))
        .bind(to_ms(now - STALE_PROCESSING))
        .fetch_optional(self.pool())
        .await
        .context("taking over a failed delivery")?;
        if let Some((id,)) = taken {
            return Ok(InboundStart::Process(
                InboundDeliveryId::parse(&id).map_err(corrupt("delivery id"))?,
            ));
        }
        let first = sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM inbound_deliveries \
             WHERE integration_id = $1 AND delivery_key = $2"
        ))
        .bind(integration.as_str())
        .bind(key)
        .fetch_one(self.pool())
        .await
        .context("loading the first delivery")?;
        Ok(InboundStart::Duplicate(first.try_into()?))
    }

    /// Take a verified delivery up again by hand: `processing`, one more
    /// attempt. `None` if it is not verified (there is nothing to re-run)
    /// or is being processed right now.
    #[tracing::instrument(skip(self))]
    pub async fn restart_inbound_delivery(
        &self,
        id: &InboundDeliveryId,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredInboundDelivery>> {
        sqlx::query_as::<_, DeliveryRow>(&format!(
            "UPDATE inbound_deliveries SET status = 'processing', attempts = attempts + 1, \
             error = NULL, started_at = $2 WHERE id = $1 AND verified = 1 \
             AND (status <> 'processing' OR started_at < $3) \
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(id.as_str())
        .bind(to_ms(now))
        .bind(to_ms(now - STALE_PROCESSING))
        .fetch_optional(self.pool())
        .await
        .context("restarting a delivery")?
        .map(StoredInboundDelivery::try_from)
        .transpose()
    }

    /// Record how processing a delivery ended.
    #[tracing::instrument(skip(self, result))]
    pub async fn finish_inbound_delivery(
        &self,
        id: &InboundDeliveryId,
        status: InboundStatus,
        result: &serde_json::Value,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE inbound_deliveries SET status = $1, result = $2, error = $3, processed_at = $4 \
             WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(result.to_string())
        .bind(error)
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(self.pool())
        .await
        .context("finishing a delivery")?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn inbound_delivery(
        &self,
        id: &InboundDeliveryId,
    ) -> Result<Option<StoredInboundDelivery>> {
        sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM inbound_deliveries WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading a delivery")?
        .map(StoredInboundDelivery::try_from)
        .transpose()
    }

    /// An integration's deliveries, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn inbound_deliveries(
        &self,
        integration: &IntegrationId,
        page: Page,
    ) -> Result<Vec<StoredInboundDelivery>> {
        sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM inbound_deliveries WHERE integration_id = $1 \
             ORDER BY id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(integration.as_str())
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing deliveries")?
        .into_iter()
        .map(StoredInboundDelivery::try_from)
        .collect()
    }

    /// Remember that each of `refs` names `conversion` (a second mention
    /// of a ref keeps the first).
    #[tracing::instrument(skip(self))]
    pub async fn save_conversion_refs(
        &self,
        program: &ProgramId,
        conversion: &ConversionId,
        refs: &[String],
    ) -> Result<()> {
        for r in refs {
            sqlx::query(
                "INSERT INTO integration_refs (program_id, ref, conversion_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (program_id, ref) DO NOTHING",
            )
            .bind(program.as_str())
            .bind(r)
            .bind(conversion.as_str())
            .execute(self.pool())
            .await
            .context("saving a conversion's provider ids")?;
        }
        Ok(())
    }

    /// The conversion of `program` the first of `refs` names: as its order
    /// id, or as a provider id saved with [`Store::save_conversion_refs`].
    #[tracing::instrument(skip(self))]
    pub async fn conversion_by_ref(
        &self,
        program: &ProgramId,
        refs: &[String],
    ) -> Result<Option<ConversionId>> {
        for r in refs {
            let found: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM conversions WHERE program_id = $1 AND external_id = $2 \
                 UNION ALL SELECT conversion_id FROM integration_refs WHERE program_id = $1 AND ref = $2",
            )
            .bind(program.as_str())
            .bind(r)
            .fetch_optional(self.pool())
            .await
            .context("finding a conversion by a provider id")?;
            if let Some((id,)) = found {
                return ConversionId::parse(&id)
                    .map(Some)
                    .map_err(corrupt("conversion id"));
            }
        }
        Ok(None)
    }
}
