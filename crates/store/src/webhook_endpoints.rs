//! Outbound webhook endpoints as stored: their URL, event filter, partner
//! scope and signing secrets; their health (failing since when, disabled
//! why); their deliveries and attempts; and the owner's notices.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use tribute_core::ids::{NoticeId, PartnerId, ProgramId, WebhookDeliveryId, WebhookEndpointId};
use tribute_core::webhook::{EndpointDisabledData, EventFilter, EventKind, WebhookSecret};

use crate::outbox::{emit, Pending};
use crate::{corrupt, from_ms, to_ms, Context, Page, Result, Store, StoreError};

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEndpoint {
    pub id: WebhookEndpointId,
    pub program_id: ProgramId,
    pub url: String,
    pub description: String,
    pub events: EventFilter,
    /// When set, only this partner's own events are sent.
    pub partner_id: Option<PartnerId>,
    pub secret: WebhookSecret,
    /// The secret before the last rotation, still signed with until
    /// `previous_until`, so receivers can switch without losing messages.
    pub previous_secret: Option<(WebhookSecret, DateTime<Utc>)>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredEndpoint {
    /// The secrets to sign with at `now`: the current one, and the previous
    /// one while its grace period lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
        let mut s = vec![&self.secret];
        if let Some((prev, until)) = &self.previous_secret {
            if *until > now {
                s.push(prev);
            }
        }
        s
    }
}

/// Bind `e`'s settings, secrets, state, `updated_at` and id, as `$1` to
/// `$12` of the insert and of the update.
fn bind_state<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    e: &'q StoredEndpoint,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&e.url)
        .bind(&e.description)
        .bind(e.events.stored())
        .bind(e.partner_id.as_ref().map(|p| p.as_str()))
        .bind(e.secret.as_str())
        .bind(e.previous_secret.as_ref().map(|(s, _)| s.as_str()))
        .bind(e.previous_secret.as_ref().map(|(_, t)| to_ms(*t)))
        .bind(i64::from(e.enabled))
        .bind(e.disabled_reason.as_deref())
        .bind(e.failing_since.map(to_ms))
        .bind(to_ms(e.updated_at))
        .bind(e.id.as_str())
}

const COLUMNS: &str = "id, program_id, url, description, events, partner_id, secret, \
     previous_secret, previous_until, enabled, disabled_reason, failing_since, created_at, updated_at";

#[derive(FromRow)]
struct EndpointRow {
    id: String,
    program_id: String,
    url: String,
    description: String,
    events: String,
    partner_id: Option<String>,
    secret: String,
    previous_secret: Option<String>,
    previous_until: Option<i64>,
    enabled: i64,
    disabled_reason: Option<String>,
    failing_since: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<EndpointRow> for StoredEndpoint {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> Result<Self> {
        let previous_secret = match (r.previous_secret, r.previous_until) {
            (Some(s), Some(until)) => Some((
                WebhookSecret::parse(&s).map_err(corrupt("endpoint previous secret"))?,
                from_ms(until)?,
            )),
            _ => None,
        };
        Ok(Self {
            id: WebhookEndpointId::parse(&r.id).map_err(corrupt("endpoint id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("endpoint program"))?,
            url: r.url,
            description: r.description,
            events: EventFilter::from_stored(&r.events),
            partner_id: r
                .partner_id
                .map(|p| PartnerId::parse(&p))
                .transpose()
                .map_err(corrupt("endpoint partner"))?,
            secret: WebhookSecret::parse(&r.secret).map_err(corrupt("endpoint secret"))?,
            previous_secret,
            enabled: r.enabled != 0,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since.map(from_ms).transpose()?,
            created_at: from_ms(r.created_at)?,
            updated_at: from_ms(r.updated_at)?,
        })
    }
}

/// A delivery as listed, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDelivery {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
    pub attempt_log: Vec<StoredAttempt>,
}

/// One attempt as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAttempt {
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A notice for the owner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredNotice {
    pub id: String,
    pub program_id: String,
    pub kind: String,
    pub subject_id: Option<String>,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

/// What a change of health did to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    Healthy,
    Failing,
    /// Disabled now, by this result.
    Disabled,
}

impl Store {
    #[tracing::instrument(skip(self, e), fields(id = %e.id))]
    pub async fn insert_endpoint(&self, e: &StoredEndpoint) -> Result<()> {
        let q = sqlx::query(
            "INSERT INTO webhook_endpoints (url, description, events, partner_id, secret, \
             previous_secret, previous_until, enabled, disabled_reason, failing_since, \
             updated_at, id, program_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        );
        bind_state(q, e)
            .bind(e.program_id.as_str())
            .bind(to_ms(e.created_at))
            .execute(self.pool())
            .await
            .context("inserting a webhook endpoint")?;
        Ok(())
    }

    /// Save an endpoint's settings, secrets and state as given.
    #[tracing::instrument(skip(self, e), fields(id = %e.id))]
    pub async fn update_endpoint(&self, e: &StoredEndpoint) -> Result<()> {
        self.save_endpoint(e, None).await
    }

    /// Save an endpoint read at `read_at` (its `updated_at` then), unless
    /// it changed since: the sender disabling it, its failing streak
    /// starting or ending, or another request. Then nothing is written and
    /// the answer is a `Conflict`, so a change made from a stale copy can
    /// neither re-enable an endpoint the sender just disabled nor lose a
    /// secret just rotated.
    #[tracing::instrument(skip(self, e), fields(id = %e.id))]
    pub async fn update_endpoint_if_unchanged(
        &self,
        e: &StoredEndpoint,
        read_at: DateTime<Utc>,
    ) -> Result<()> {
        self.save_endpoint(e, Some(read_at)).await
    }

    async fn save_endpoint(
        &self,
        e: &StoredEndpoint,
        read_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let q = sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, partner_id = $4, \
             secret = $5, previous_secret = $6, previous_until = $7, enabled = $8, \
             disabled_reason = $9, failing_since = $10, updated_at = $11 \
             WHERE id = $12 AND ($13 IS NULL OR updated_at = $13)",
        );
        let done = bind_state(q, e)
            .bind(read_at.map(to_ms))
            .execute(self.pool())
            .await
            .context("updating a webhook endpoint")?;
        if done.rows_affected() == 0 {
            if read_at.is_some() && self.endpoint(&e.id).await?.is_some() {
                return Err(StoreError::Conflict {
                    field: "id",
                    message: "the endpoint changed while this request was made (it was \
                              disabled, its failures started or ended, or another change \
                              was saved): read it again and retry"
                        .to_owned(),
                });
            }
            return Err(StoreError::NotFound("webhook endpoint"));
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn endpoint(&self, id: &WebhookEndpointId) -> Result<Option<StoredEndpoint>> {
        sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading a webhook endpoint")?
        .map(StoredEndpoint::try_from)
        .transpose()
    }

    /// Endpoints, of one program or all, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn endpoints(
        &self,
        program: Option<&ProgramId>,
        page: Page,
    ) -> Result<Vec<StoredEndpoint>> {
        sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE ($1 IS NULL OR program_id = $1) \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(program.map(|p| p.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing webhook endpoints")?
        .into_iter()
        .map(StoredEndpoint::try_from)
        .collect()
    }

    /// Delete an endpoint with its deliveries and their attempts.
    #[tracing::instrument(skip(self))]
    pub async fn delete_endpoint(&self, id: &WebhookEndpointId) -> Result<()> {
        let mut tx = self.begin_write().await.context("starting a deletion")?;
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)",
        )
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .context("deleting an endpoint's attempts")?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .context("deleting an endpoint's deliveries")?;
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .context("deleting an endpoint")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook endpoint"));
        }
        tx.commit().await.context("committing a deletion")?;
        Ok(())
    }

    /// Note an attempt's outcome on its endpoint: a success clears its
    /// failing streak; a failure starts one, and disables the endpoint once
    /// it has failed for `disable_after` (or at once when `gone`: the
    /// receiver answered 410). Disabling writes a notice for the owner and
    /// an `endpoint.disabled` message to the program's other endpoints.
    #[tracing::instrument(skip(self))]
    pub async fn endpoint_result(
        &self,
        id: &WebhookEndpointId,
        delivered: bool,
        gone: bool,
        now: DateTime<Utc>,
        disable_after: std::time::Duration,
    ) -> Result<EndpointHealth> {
        if delivered {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL, updated_at = $2 \
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(id.as_str())
            .bind(to_ms(now))
            .execute(self.pool())
            .await
            .context("clearing an endpoint's failures")?;
            return Ok(EndpointHealth::Healthy);
        }
        let mut tx = self
            .begin_write()
            .await
            .context("starting a health update")?;
        let row: Option<(String, String, Option<i64>, i64)> = sqlx::query_as(
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1), \
             updated_at = CASE WHEN failing_since IS NULL THEN $1 ELSE updated_at END \
             WHERE id = $2 RETURNING program_id, url, failing_since, enabled",
        )
        .bind(to_ms(now))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("noting an endpoint's failure")?;
        let Some((program, url, since, enabled)) = row else {
            return Err(StoreError::NotFound("webhook endpoint"));
        };
        let since = from_ms(since.unwrap_or(to_ms(now)))?;
        let limit = chrono::Duration::from_std(disable_after).unwrap_or(chrono::Duration::MAX);
        let reason = if gone {
            "the receiver answered 410 Gone".to_owned()
        } else if now - since >= limit {
            format!(
                "every attempt failed since {} ({} or more)",
                since.to_rfc3339(),
                humanize(disable_after)
            )
        } else {
            tx.commit().await.context("committing a health update")?;
            return Ok(EndpointHealth::Failing);
        };
        if enabled == 0 {
            tx.commit().await.context("committing a health update")?;
            return Ok(EndpointHealth::Failing);
        }
        sqlx::query(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(&reason)
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .context("disabling an endpoint")?;
        let message = format!("Webhook endpoint {url} was disabled: {reason}.");
        sqlx::query(
            "INSERT INTO notices (id, program_id, kind, subject_id, message, created_at) \
             VALUES ($1, $2, 'endpoint.disabled', $3, $4, $5)",
        )
        .bind(NoticeId::generate_ordered(to_ms(now)).as_str())
        .bind(&program)
        .bind(id.as_str())
        .bind(&message)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .context("writing a notice")?;
        let program = ProgramId::parse(&program).map_err(corrupt("endpoint program"))?;
        let data = EndpointDisabledData {
            endpoint_id: id.to_string(),
            url,
            reason,
        };
        emit(&mut tx, &program, now, |_| {
            vec![Pending::owner_only(EventKind::EndpointDisabled, &data)]
        })
        .await?;
        tx.commit().await.context("committing a health update")?;
        Ok(EndpointHealth::Disabled)
    }

    /// An endpoint's deliveries, newest first, each with its attempts.
    #[tracing::instrument(skip(self))]
    pub async fn endpoint_deliveries(
        &self,
        endpoint: &WebhookEndpointId,
        page: Page,
    ) -> Result<Vec<StoredDelivery>> {
        type DeliveryRow = (
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            Option<i64>,
            String,
        );
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, msg_id, endpoint_id, event_type, status, attempts, next_attempt_at, \
             created_at, delivered_at, payload FROM webhook_deliveries WHERE endpoint_id = $1 \
             ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(endpoint.as_str())
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing deliveries")?;
        let mut out = Vec::with_capacity(rows.len());
        for (
            id,
            msg_id,
            endpoint_id,
            event_type,
            status,
            attempts,
            next,
            created,
            delivered,
            payload,
        ) in rows
        {
            let attempt_log = self.attempts_of(&id).await?;
            out.push(StoredDelivery {
                next_attempt_at: (status == "pending").then(|| from_ms(next)).transpose()?,
                id,
                msg_id,
                endpoint_id,
                event_type,
                status,
                attempts,
                created_at: from_ms(created)?,
                delivered_at: delivered.map(from_ms).transpose()?,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| StoreError::Corrupt(format!("delivery payload: {e}")))?,
                attempt_log,
            });
        }
        Ok(out)
    }

    /// One delivery's endpoint and program, to check who may replay it.
    #[tracing::instrument(skip(self))]
    pub async fn delivery_endpoint(
        &self,
        id: &WebhookDeliveryId,
    ) -> Result<Option<WebhookEndpointId>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT endpoint_id FROM webhook_deliveries WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await
                .context("loading a delivery")?;
        row.map(|(e,)| WebhookEndpointId::parse(&e).map_err(corrupt("delivery endpoint")))
            .transpose()
    }

    async fn attempts_of(&self, delivery: &str) -> Result<Vec<StoredAttempt>> {
        type AttemptRow = (
            i64,
            i64,
            i64,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT attempt, started_at, duration_ms, status_code, error, response, next_attempt_at \
             FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt, id",
        )
        .bind(delivery)
        .fetch_all(self.pool())
        .await
        .context("listing attempts")?;
        rows.into_iter()
            .map(
                |(attempt, started, duration_ms, status_code, error, response, next)| {
                    Ok(StoredAttempt {
                        attempt,
                        started_at: from_ms(started)?,
                        duration_ms,
                        status_code,
                        error,
                        response,
                        next_attempt_at: next.map(from_ms).transpose()?,
                    })
                },
            )
            .collect()
    }

    /// The owner's notices, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn notices(
        &self,
        program: Option<&ProgramId>,
        page: Page,
    ) -> Result<Vec<StoredNotice>> {
        let rows: Vec<(String, String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT id, program_id, kind, subject_id, message, created_at FROM notices \
             WHERE ($1 IS NULL OR program_id = $1) AND dismissed_at IS NULL \
             ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(program.map(|p| p.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing notices")?;
        rows.into_iter()
            .map(|(id, program_id, kind, subject_id, message, at)| {
                Ok(StoredNotice {
                    id,
                    program_id,
                    kind,
                    subject_id,
                    message,
                    created_at: from_ms(at)?,
                })
            })
            .collect()
    }
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 86400 && s.is_multiple_of(86400) {
        format!("{} days", s / 86400)
    } else {
        format!("{s} seconds")
    }
}
