//! Events: appended in batches, repeats of an external id skipped; the
//! batch's linking events are then folded into the identity graph
//! (`identity.rs`).
//!
//! On PostgreSQL events and stitching share one transaction. On SQLite
//! events are written by the native batch writer and stitching follows in a
//! second transaction, which is why stitching is idempotent and applied to
//! repeats too.

use std::collections::BTreeSet;

use sqlx::{Any, Transaction};
use tribute_core::tracking::Event;

use crate::sql::{multi_row_insert, Params, INSERT_ROWS};
use crate::{to_ms, BoxFuture, Context, Result, Store};

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Ids of the events stored; the others repeated an external id seen before.
    pub inserted: BTreeSet<String>,
}

impl Store {
    /// Store a batch of events and fold what they say into the identity
    /// graph: one transaction. Boxed: see `insert_clicks`.
    pub fn ingest_events<'a>(
        &'a self,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<IngestOutcome>> {
        Box::pin(async move {
            // Every linking event of the batch is stitched, repeats included:
            // stitching is idempotent (keys, touches with stable ids, one
            // lead per partner and person), so a batch retried after a crash
            // between SQLite's two transactions below completes its work.
            let linking: Vec<&Event> = events.iter().filter(|e| e.links_identity()).collect();
            if let Some(batch) = self.sqlite_batch() {
                // SQLite: events through the native batch writer, then the
                // (few) linking events through sqlx in a second transaction.
                let inserted = batch.insert_events(events.to_vec()).await?;
                if !linking.is_empty() {
                    let mut tx = self.begin_write().await.context("starting stitching")?;
                    self.stitch_events(&mut tx, &linking).await?;
                    tx.commit().await.context("committing stitching")?;
                }
                return Ok(IngestOutcome { inserted });
            }
            let mut tx = self.pool().begin().await.context("starting event batch")?;
            let inserted = insert_events(&mut tx, events).await?;
            self.stitch_events(&mut tx, &linking).await?;
            tx.commit().await.context("committing event batch")?;
            Ok(IngestOutcome { inserted })
        })
    }
}

/// The columns an event is written with, in the order both writers (this
/// one and SQLite's batch writer) bind them.
pub(crate) const EVENT_COLUMNS: [&str; 15] = [
    "id",
    "program_id",
    "external_id",
    "type",
    "name",
    "anonymous_id",
    "user_id",
    "email_hash",
    "customer_id",
    "phone_hash",
    "click_id",
    "partner_id",
    "occurred_at",
    "received_at",
    "properties",
];

/// A repeated external id is skipped; RETURNING names the rows written.
pub(crate) const EVENT_CONFLICT: &str =
    "ON CONFLICT (program_id, external_id) DO NOTHING RETURNING id";

/// Insert events, skipping repeats of an external id; returns the ids inserted.
async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    events: &[Event],
) -> Result<BTreeSet<String>> {
    let mut inserted = BTreeSet::new();
    for chunk in events.chunks(INSERT_ROWS) {
        let sql = multi_row_insert(
            "events",
            &EVENT_COLUMNS,
            chunk.len(),
            EVENT_CONFLICT,
            Params::Numbered,
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for e in chunk {
            q = q
                .bind(e.id.as_str())
                .bind(e.program_id.as_str())
                .bind(e.external_id.as_deref())
                .bind(e.event_type.as_str())
                .bind(e.name.as_deref())
                .bind(e.ids.anonymous_id.as_deref())
                .bind(e.ids.user_id.as_deref())
                .bind(e.ids.email_hash.as_deref())
                .bind(e.ids.customer_id.as_deref())
                .bind(e.ids.phone_hash.as_deref())
                .bind(e.click_id.as_deref())
                .bind(e.partner.as_ref().map(|(p, _)| p.as_str()))
                .bind(to_ms(e.occurred_at))
                .bind(to_ms(e.received_at))
                .bind(e.properties.to_string());
        }
        inserted.extend(q.fetch_all(&mut **tx).await.context("inserting events")?);
    }
    Ok(inserted)
}
