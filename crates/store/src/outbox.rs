//! The outbox: outbound webhook messages written in the transaction of the
//! change they report, and the leases senders claim them with.
//!
//! [`emit`] is called by every store write that reports an event (a
//! conversion, a ledger entry, a lead, a partner, a tier change, a refund,
//! a disabled endpoint). It reads the program's enabled endpoints first, so
//! a program without any pays one indexed read and builds no payload. Each
//! endpoint gets its own row (`webhook_deliveries`), due at once.
//!
//! A sender claims due rows with a lease ([`Store::claim_deliveries`]):
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes never wait on each
//! other's rows; one `UPDATE … RETURNING` on SQLite, where writers take
//! turns anyway. The claim counts the attempt, and only the lease holder of
//! that attempt may record its result ([`Store::finish_attempt`]), so two
//! nodes never send the same attempt, and a node that died mid-attempt
//! loses its lease to the next claim once it runs out.

use chrono::{DateTime, Utc};
use tribute_core::ids::{AttemptId, MessageId, ProgramId, WebhookDeliveryId, WebhookEndpointId};
use tribute_core::webhook::{Envelope, EventFilter, EventKind};

use crate::db::{Arg, Db, DbContext};
use crate::sql::{multi_row_insert, Params, INSERT_ROWS};
use crate::{from_ms, to_ms, Backend, Context, Result, Store, StoreError};

/// One event to report, with what each audience may see: program-wide
/// endpoints get `owner`; an endpoint scoped to a partner gets that
/// partner's entry of `partners`, or nothing (a partner never sees another
/// partner's data, nor the program's totals).
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub kind: EventKind,
    pub owner: serde_json::Value,
    /// Each partner who sees it, with their own payload (`None`: the
    /// owner's).
    pub partners: Vec<(String, Option<serde_json::Value>)>,
}

impl Pending {
    /// An event the owner and the partner it concerns see alike.
    pub fn shared<T: serde::Serialize>(kind: EventKind, partner: &str, data: &T) -> Self {
        Self {
            kind,
            owner: serde_json::to_value(data).expect("event data serializes"),
            partners: vec![(partner.to_owned(), None)],
        }
    }

    /// An event only program-wide endpoints receive.
    pub fn owner_only<T: serde::Serialize>(kind: EventKind, data: &T) -> Self {
        Self {
            kind,
            owner: serde_json::to_value(data).expect("event data serializes"),
            partners: Vec::new(),
        }
    }
}

const ATTEMPT_COLUMNS: [&str; 9] = [
    "id",
    "delivery_id",
    "attempt",
    "started_at",
    "duration_ms",
    "status_code",
    "error",
    "response",
    "next_attempt_at",
];

const DELIVERY_COLUMNS: [&str; 10] = [
    "id",
    "msg_id",
    "endpoint_id",
    "program_id",
    "event_type",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
];

/// Enqueue the events `build` makes, for every enabled endpoint of
/// `program` that subscribes to them, on `db` (inside the caller's
/// transaction). `build` receives the program's currency and is not called
/// when the program has no enabled endpoint.
pub(crate) async fn emit<F>(
    db: &mut dyn Db,
    program: &ProgramId,
    at: DateTime<Utc>,
    build: F,
) -> Result<()>
where
    F: FnOnce(&str) -> Vec<Pending>,
{
    let remembered = db
        .memo()
        .and_then(|m| m.endpoints.get(program.as_str()).cloned());
    let endpoints = match remembered {
        Some(rows) => rows,
        None => {
            let rows = db
                .fetch(
                    "SELECT e.id, e.events, e.partner_id, p.currency FROM webhook_endpoints e \
                     JOIN programs p ON p.id = e.program_id \
                     WHERE e.program_id = $1 AND e.enabled = 1",
                    vec![program.as_str().into()],
                )
                .await
                .context("finding the program's webhook endpoints")?;
            if let Some(m) = db.memo() {
                m.endpoints
                    .insert(program.as_str().to_owned(), rows.clone());
            }
            rows
        }
    };
    let Some(first) = endpoints.first() else {
        return Ok(());
    };
    let events = build(first.text(3)?);
    // Each endpoint's id, filter and partner scope, read once.
    let targets = endpoints
        .iter()
        .map(|e| {
            let filter = EventFilter::from_stored(e.text(1)?);
            Ok((e.text(0)?, filter, e.opt_text(2)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let ms = to_ms(at);
    let mut rows: Vec<[Arg<'_>; 10]> = Vec::new();
    for event in &events {
        let owner = (
            MessageId::generate_ordered(ms).to_string(),
            body(event.kind, at, &event.owner),
        );
        // One message per audience: the same id always carries the same body.
        let mut audiences: Vec<(&str, (String, String))> = Vec::new();
        for (endpoint, filter, partner) in &targets {
            if !filter.matches(event.kind) {
                continue;
            }
            let (msg, payload) = match partner {
                None => owner.clone(),
                Some(partner) => {
                    let Some((_, data)) = event.partners.iter().find(|(p, _)| p == partner) else {
                        continue;
                    };
                    match audiences.iter().find(|(p, _)| p == partner) {
                        Some((_, known)) => known.clone(),
                        None => {
                            let payload = match data {
                                Some(own) => body(event.kind, at, own),
                                None => owner.1.clone(),
                            };
                            let made = (MessageId::generate_ordered(ms).to_string(), payload);
                            audiences.push((partner, made.clone()));
                            made
                        }
                    }
                }
            };
            rows.push([
                WebhookDeliveryId::generate_ordered(ms).to_string().into(),
                msg.into(),
                (*endpoint).into(),
                program.as_str().into(),
                event.kind.as_str().into(),
                payload.into(),
                "pending".into(),
                0i64.into(),
                ms.into(),
                ms.into(),
            ]);
        }
    }
    for chunk in rows.chunks(INSERT_ROWS) {
        let sql = multi_row_insert(
            "webhook_deliveries",
            &DELIVERY_COLUMNS,
            chunk.len(),
            "",
            Params::Numbered,
        );
        let args: Vec<Arg<'_>> = chunk.iter().flat_map(|r| r.iter().cloned()).collect();
        db.execute(&sql, args)
            .await
            .context("enqueueing webhook messages")?;
    }
    Ok(())
}

/// A message's body, written without copying `data`.
fn body(kind: EventKind, at: DateTime<Utc>, data: &serde_json::Value) -> String {
    serde_json::to_string(&Envelope::wrap(kind, at, data)).expect("an envelope serializes")
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub id: WebhookDeliveryId,
    /// The `webhook-id`: the same on every attempt and every endpoint.
    pub msg_id: String,
    pub endpoint_id: WebhookEndpointId,
    pub program_id: ProgramId,
    pub event_type: String,
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub created_at: DateTime<Utc>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// The HTTP status, if an answer came.
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// The answer's first characters.
    pub response: Option<String>,
    /// When to try again; `None` with `delivered` false: never again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered: bool,
}

impl Store {
    /// Claim up to `limit` deliveries due at `now` for `owner`, leased until
    /// `lease_until`. Deliveries of disabled endpoints wait (a re-enabled
    /// endpoint gets them).
    #[tracing::instrument(skip(self))]
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d \
               JOIN webhook_endpoints e ON e.id = d.endpoint_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
               AND (d.lease_until IS NULL OR d.lease_until < $3) AND e.enabled = 1 \
               ORDER BY d.next_attempt_at LIMIT $4 {lock}) \
             RETURNING id, msg_id, endpoint_id, program_id, event_type, payload, attempts, created_at"
        );
        type ClaimRow = (String, String, String, String, String, String, i64, i64);
        let rows: Vec<ClaimRow> = sqlx::query_as(&sql)
            .bind(owner)
            .bind(to_ms(lease_until))
            .bind(to_ms(now))
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .context("claiming webhook deliveries")?;
        rows.into_iter()
            .map(|(id, msg, ep, prg, kind, payload, attempts, created)| {
                Ok(ClaimedDelivery {
                    id: WebhookDeliveryId::parse(&id).map_err(crate::corrupt("delivery id"))?,
                    msg_id: msg,
                    endpoint_id: WebhookEndpointId::parse(&ep)
                        .map_err(crate::corrupt("delivery endpoint"))?,
                    program_id: ProgramId::parse(&prg)
                        .map_err(crate::corrupt("delivery program"))?,
                    event_type: kind,
                    payload,
                    attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
                    created_at: from_ms(created)?,
                })
            })
            .collect()
    }

    /// Record an attempt's result and move the delivery on, if `owner`
    /// still holds its lease for this attempt (else another node took it
    /// over and only the attempt is logged, or nothing when the delivery
    /// was deleted meanwhile). Returns whether the lease was still held.
    #[tracing::instrument(skip(self, d, r), fields(delivery = %d.id, attempt = d.attempt))]
    pub async fn finish_attempt(
        &self,
        owner: &str,
        d: &ClaimedDelivery,
        r: &AttemptResult,
    ) -> Result<bool> {
        let held = self
            .finish_attempts(owner, &[(d.clone(), r.clone())])
            .await?;
        Ok(held[0])
    }

    /// [`Store::finish_attempt`] for many attempts in one transaction (the
    /// sender records what finished together, so a busy outbox costs one
    /// commit per batch rather than per message). One flag per attempt, in
    /// order: whether its lease was still held.
    #[tracing::instrument(skip_all, fields(attempts = done.len()))]
    pub async fn finish_attempts(
        &self,
        owner: &str,
        done: &[(ClaimedDelivery, AttemptResult)],
    ) -> Result<Vec<bool>> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self
            .begin_write()
            .await
            .context("starting an attempt's record")?;
        let key_lock = match self.backend() {
            Backend::Postgres => "FOR KEY SHARE",
            Backend::Sqlite => "",
        };
        let mut held = Vec::with_capacity(done.len());
        let mut logged = Vec::with_capacity(done.len());
        for (d, r) in done {
            let ended = r.started_at + chrono::Duration::milliseconds(r.duration_ms);
            let status = if r.delivered {
                "delivered"
            } else if r.next_attempt_at.is_some() {
                "pending"
            } else {
                "failed"
            };
            let kept = sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, \
                 next_attempt_at = COALESCE($2, next_attempt_at), \
                 lease_owner = NULL, lease_until = NULL, last_attempt_at = $3, \
                 delivered_at = CASE WHEN $1 = 'delivered' THEN $3 ELSE delivered_at END \
                 WHERE id = $4 AND lease_owner = $5 AND attempts = $6",
            )
            .bind(status)
            .bind(r.next_attempt_at.map(to_ms))
            .bind(to_ms(ended))
            .bind(d.id.as_str())
            .bind(owner)
            .bind(i64::from(d.attempt))
            .execute(&mut *tx)
            .await
            .context("moving a delivery on")?
            .rows_affected()
                == 1;
            // Without its lease the attempt is still logged, unless its
            // delivery is gone (its endpoint was deleted mid-attempt): a
            // row naming it would fail the whole batch's transaction. The
            // row found is locked against deletion until the log is in.
            let exists = kept
                || sqlx::query_as::<_, (String,)>(&format!(
                    "SELECT id FROM webhook_deliveries WHERE id = $1 {key_lock}"
                ))
                .bind(d.id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .context("finding a delivery")?
                .is_some();
            held.push(kept);
            logged.push(exists);
        }
        let logs: Vec<_> = done
            .iter()
            .zip(&held)
            .zip(&logged)
            .filter(|(_, exists)| **exists)
            .map(|(attempt, _)| attempt)
            .collect();
        for chunk in logs.chunks(INSERT_ROWS) {
            let sql = multi_row_insert(
                "webhook_attempts",
                &ATTEMPT_COLUMNS,
                chunk.len(),
                "",
                Params::Numbered,
            );
            let mut q = sqlx::query(&sql);
            for ((d, r), kept) in chunk {
                q = q
                    .bind(AttemptId::generate_ordered(to_ms(r.started_at)).to_string())
                    .bind(d.id.as_str())
                    .bind(i64::from(d.attempt))
                    .bind(to_ms(r.started_at))
                    .bind(r.duration_ms)
                    .bind(r.status_code.map(i64::from))
                    .bind(r.error.as_deref().map(storable))
                    .bind(r.response.as_deref().map(storable))
                    .bind(r.next_attempt_at.filter(|_| **kept).map(to_ms));
            }
            q.execute(&mut *tx).await.context("logging attempts")?;
        }
        tx.commit()
            .await
            .context("committing an attempt's record")?;
        Ok(held)
    }

    /// Forget what is past `before`: delivered and failed deliveries made
    /// before it, with their attempts; the bodies of inbound deliveries
    /// received before it (their log rows stay); and the log rows of
    /// inbound deliveries refused for their signature. At most `limit` of
    /// each a call, so a large backlog is pruned in short transactions.
    /// Returns the deliveries removed, and the inbound bodies and refused
    /// rows removed.
    #[tracing::instrument(skip(self))]
    pub async fn prune_webhooks(&self, before: DateTime<Utc>, limit: i64) -> Result<(u64, u64)> {
        let mut tx = self.begin_write().await.context("starting a prune")?;
        let old = "SELECT id FROM webhook_deliveries WHERE status IN ('delivered', 'failed') \
                   AND created_at < $1 ORDER BY created_at LIMIT $2";
        sqlx::query(&format!(
            "DELETE FROM webhook_attempts WHERE delivery_id IN ({old})"
        ))
        .bind(to_ms(before))
        .bind(limit)
        .execute(&mut *tx)
        .await
        .context("pruning attempts")?;
        let deliveries = sqlx::query(&format!(
            "DELETE FROM webhook_deliveries WHERE id IN ({old})"
        ))
        .bind(to_ms(before))
        .bind(limit)
        .execute(&mut *tx)
        .await
        .context("pruning deliveries")?
        .rows_affected();
        let bodies = sqlx::query(
            "UPDATE inbound_deliveries SET body = NULL WHERE id IN (SELECT id FROM \
             inbound_deliveries WHERE body IS NOT NULL AND received_at < $1 \
             AND status <> 'processing' ORDER BY received_at LIMIT $2)",
        )
        .bind(to_ms(before))
        .bind(limit)
        .execute(&mut *tx)
        .await
        .context("pruning inbound bodies")?
        .rows_affected();
        // Deliveries refused for their signature say nothing once old
        // (anyone can send one): their log rows go too.
        let rejected = sqlx::query(
            "DELETE FROM inbound_deliveries WHERE id IN (SELECT id FROM inbound_deliveries \
             WHERE status = 'rejected' AND received_at < $1 ORDER BY received_at LIMIT $2)",
        )
        .bind(to_ms(before))
        .bind(limit)
        .execute(&mut *tx)
        .await
        .context("pruning rejected inbound deliveries")?
        .rows_affected();
        tx.commit().await.context("committing a prune")?;
        Ok((deliveries, bodies + rejected))
    }

    /// Send a delivery again now, with the same `webhook-id` (by hand). A
    /// delivery whose endpoint is disabled waits until it is enabled.
    #[tracing::instrument(skip(self))]
    pub async fn replay_delivery(&self, id: &WebhookDeliveryId, now: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, \
             lease_owner = NULL, lease_until = NULL WHERE id = $2",
        )
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(self.pool())
        .await
        .context("replaying a delivery")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook delivery"));
        }
        Ok(())
    }
}

/// A receiver's text as stored: PostgreSQL text holds no NUL, so each is
/// kept as U+FFFD (an answer may hold any bytes; one NUL must not fail the
/// batch of attempts recorded with it).
fn storable(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}
