//! Events: appended in batches, repeats of an external id skipped; the
//! batch's linking events are then folded into the identity graph
//! (`identity.rs`).
//!
//! Events and their stitching share one transaction: through sqlx on
//! PostgreSQL, on the native batch writer's connection on SQLite (the
//! stitching statements are the same, `db.rs`). Stitching is idempotent
//! and applied to repeats too.

use std::collections::BTreeSet;

use sqlx::{Any, Transaction};
use tribute_core::tracking::Event;

use crate::identity::stitch_events;
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
    /// graph. The batch is moved in, never copied (on SQLite it crosses to
    /// the batch writer's thread and back), and handed back with the
    /// outcome so the caller can tell each sender which of its events were
    /// stored. The batch comes back empty only if the batch writer's thread
    /// failed, and then with an error.
    ///
    /// Boxed so the future is checked `Send` here (see `write_clicks`).
    pub fn write_events(
        &self,
        events: Vec<Event>,
    ) -> BoxFuture<'_, (Vec<Event>, Result<IngestOutcome>)> {
        Box::pin(async move {
            let Some(batch) = self.sqlite_batch() else {
                let r = self.write_events_in_one_transaction(&events).await;
                return (events, r);
            };
            // SQLite: events and their stitching through the native batch
            // writer, in one transaction.
            let (events, inserted) = batch.insert_events(events).await;
            (events, inserted.map(|inserted| IngestOutcome { inserted }))
        })
    }

    /// PostgreSQL: events and stitching in one transaction.
    async fn write_events_in_one_transaction(&self, events: &[Event]) -> Result<IngestOutcome> {
        let mut tx = self.pool().begin().await.context("starting event batch")?;
        let inserted = insert_events(&mut tx, events).await?;
        stitch_events(&mut tx, self.backend(), &linking(events)).await?;
        tx.commit().await.context("committing event batch")?;
        Ok(IngestOutcome { inserted })
    }

    /// [`Store::write_events`] on a borrowed batch (a copy is written).
    #[cfg(feature = "test-support")]
    pub fn ingest_events<'a>(
        &'a self,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<IngestOutcome>> {
        Box::pin(async move { self.write_events(events.to_vec()).await.1 })
    }
}

/// The events of a batch to fold into the identity graph. Every linking
/// event is stitched, repeats of an external id included: stitching is
/// idempotent (keys, touches with stable ids, one lead per partner and
/// person), so a repeat of an event whose stitching was lost completes it.
pub(crate) fn linking(events: &[Event]) -> Vec<&Event> {
    events.iter().filter(|e| e.links_identity()).collect()
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
                .bind(e.click_id.as_ref().map(|c| c.as_str()))
                .bind(e.partner.as_ref().map(|(p, _)| p.as_str()))
                .bind(to_ms(e.occurred_at))
                .bind(to_ms(e.received_at))
                .bind(e.properties.to_string());
        }
        inserted.extend(q.fetch_all(&mut **tx).await.context("inserting events")?);
    }
    Ok(inserted)
}
