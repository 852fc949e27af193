//! Recording a conversion in one transaction: its person and journey
//! found, its attribution decided by the caller from that journey, and the
//! conversion written with its credits, commissions and ledger entries.
//!
//! On PostgreSQL each conversion is its own transaction: nodes and
//! connections write side by side. On SQLite every write waits for the one
//! write lock, so conversions are handed instead to one writer task
//! ([`GroupWriter`]) that takes every conversion waiting (up to [`BATCH`])
//! and writes them on SQLite's native connection (the one the click and
//! event writers use, `sqlite_batch.rs`), each inside a savepoint of one
//! transaction, then commits once (group commit). Each statement there is a
//! cached prepared statement run on the writer's own thread: through sqlx
//! each would be a hop to its worker thread and back, about twenty per
//! conversion. The statements are the same either way (`db.rs`). A
//! conversion that fails (a duplicate order, a refused attribution) rolls
//! back to its savepoint alone, and nobody hears "recorded" before the
//! commit that holds their conversion. The writer is a task of its own, so
//! a caller that goes away never leaves a transaction half done; it only
//! misses the answer.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tribute_core::attribution::Touch;
use tribute_core::ids::PersonId;
use tribute_core::tracking::Conversion;

use crate::conversions::{conversion_by_keys_in, credits_in, insert_conversion_in, Credit};
use crate::db::{ready_now, Db, Native, WriteMemo};
use crate::fraud::{keep_verdict, screen_in, Screening, StoredRisk};
use crate::identity::{resolve_journey_in, Journey};
use crate::outbox::{emit, Pending};
use crate::sqlite_batch::{in_write_transaction, SqliteBatchWriter};
use crate::{Backend, BoxFuture, Context, Result, Store, StoreError};
use tribute_core::webhook::{ConversionData, CreditData, EventKind};

/// The most conversions one SQLite transaction writes.
const BATCH: usize = 128;

/// What a caller decides from a conversion's person and journey: the
/// conversion to write, or why it refuses to. It may be asked more than
/// once (when a conversion written beside it fails, the group is written
/// again without it), so it must decide from its inputs alone.
pub type Decide<E> =
    Box<dyn Fn(PersonId, Vec<Touch>) -> std::result::Result<Conversion, E> + Send + Sync>;

/// A conversion to record: what makes it the same as one recorded before
/// (its order id, its idempotency key), how to find its journey, the
/// browser reports (external ids) it supersedes, and how to decide it from
/// the journey.
pub struct Recording<E> {
    pub external_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub journey: Journey,
    pub supersedes: Vec<String>,
    pub decide: Decide<E>,
    /// What the fraud rules know of the buyer beyond the conversion.
    pub screening: Screening,
}

impl<E> std::fmt::Debug for Recording<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("external_id", &self.external_id)
            .field("idempotency_key", &self.idempotency_key)
            .field("journey", &self.journey)
            .field("supersedes", &self.supersedes)
            .finish_non_exhaustive()
    }
}

/// How recording a conversion ended.
#[derive(Debug)]
pub enum Recorded<E> {
    /// Written, with its partners' credits and its fraud risk as stored
    /// (`None`: not scored, fraud checks off or a superseded report).
    Written {
        conversion: Conversion,
        credits: Vec<Credit>,
        risk: Option<StoredRisk>,
    },
    /// A conversion with the same order id or idempotency key was recorded
    /// first: that one, and nothing written.
    Exists(Conversion),
    /// The caller's decision refused it: nothing written.
    Refused(E),
}

/// Look for an earlier conversion, find the journey, decide, and write, on
/// a connection inside a write transaction. A refusal writes nothing only
/// if the caller rolls back (the journey's person and touches were written
/// before the decision).
async fn record_in<E>(
    conn: &mut dyn Db,
    backend: Backend,
    r: &Recording<E>,
) -> Result<Recorded<E>> {
    let earlier = conversion_by_keys_in(
        conn,
        &r.journey.program,
        r.external_id.as_deref(),
        r.idempotency_key.as_deref(),
    )
    .await?;
    if let Some(first) = earlier {
        return Ok(Recorded::Exists(first));
    }
    let (person, touches) = resolve_journey_in(conn, backend, &r.journey).await?;
    let conversion = match (r.decide)(person, touches) {
        Ok(c) => c,
        Err(e) => return Ok(Recorded::Refused(e)),
    };
    let verdict = screen_in(
        conn,
        &conversion,
        &r.supersedes,
        &r.journey.keys,
        &r.screening,
    )
    .await?;
    let held = verdict.as_ref().is_some_and(|v| v.held);
    insert_conversion_in(conn, backend, &conversion, &r.supersedes, held).await?;
    let risk = match verdict {
        Some(v) => Some(keep_verdict(conn, &conversion, v).await?),
        None => None,
    };
    let credits = credits_in(conn, &conversion.id).await?;
    emit(conn, &conversion.program_id, conversion.received_at, |_| {
        vec![conversion_created(&conversion, &credits)]
    })
    .await?;
    Ok(Recorded::Written {
        conversion,
        credits,
        risk,
    })
}

/// `conversion.created`: the owner sees every credit, each credited
/// partner only their own.
fn conversion_created(c: &Conversion, credits: &[Credit]) -> Pending {
    let data = |credits: Vec<CreditData>| ConversionData {
        id: c.id.to_string(),
        program_id: c.program_id.to_string(),
        external_id: c.external_id.clone(),
        status: c.status.as_str().to_owned(),
        value: c.value.minor,
        currency: c.value.currency.as_str().to_owned(),
        occurred_at: c.occurred_at,
        credits,
    };
    let credit = |cr: &Credit| CreditData {
        partner_id: cr.partner_id.clone(),
        amount: cr.amount_minor,
    };
    let value = |d: ConversionData| serde_json::to_value(d).expect("event data serializes");
    Pending {
        kind: EventKind::ConversionCreated,
        owner: value(data(credits.iter().map(credit).collect())),
        partners: credits
            .iter()
            .map(|cr| (cr.partner_id.clone(), Some(value(data(vec![credit(cr)])))))
            .collect(),
    }
}

impl Store {
    /// Record a conversion: find its person and journey, let `decide` make
    /// the conversion from them, and write it with its credits,
    /// commissions and ledger entries, all in one transaction that has
    /// committed when this returns `Written`. When one with the same order id
    /// or idempotency key was recorded first (`Exists`), when `decide`
    /// refuses, or when writing fails (a `Conflict` when a concurrent
    /// transaction recorded the same order first), nothing of it is written.
    pub async fn record_conversion<E: Send + 'static>(
        &self,
        r: Recording<E>,
    ) -> Result<Recorded<E>> {
        match &self.group_writer {
            Some(w) => w.submit(r).await,
            None => {
                let mut tx = self.begin_write().await.context("starting conversion")?;
                let out = record_in(&mut tx, self.backend(), &r).await?;
                if matches!(out, Recorded::Written { .. }) {
                    tx.commit().await.context("committing conversion")?;
                } else {
                    tx.rollback()
                        .await
                        .context("rolling back a refused conversion")?;
                }
                Ok(out)
            }
        }
    }
}

/// How a job's write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// Written, to be committed.
    Kept,
    /// Nothing written (an earlier conversion was found).
    Untouched,
    /// Failed or refused after writing some of it: to be rolled back.
    Failed,
}

/// A write waiting for the group writer.
trait Job: Send {
    /// Write inside the batch's transaction. May run again, from the
    /// start, if the batch is rolled back and written anew.
    fn run<'c>(&'c mut self, db: &'c mut dyn Db) -> BoxFuture<'c, Ran>;
    /// Tell the caller how it ended, once the batch has committed or failed.
    fn finish(self: Box<Self>, batch: std::result::Result<(), Arc<StoreError>>);
}

struct RecordJob<E> {
    recording: Recording<E>,
    outcome: Option<Result<Recorded<E>>>,
    reply: oneshot::Sender<Result<Recorded<E>>>,
}

impl<E: Send + 'static> Job for RecordJob<E> {
    fn run<'c>(&'c mut self, db: &'c mut dyn Db) -> BoxFuture<'c, Ran> {
        Box::pin(async move {
            let out = record_in(db, Backend::Sqlite, &self.recording).await;
            let ran = match out {
                Ok(Recorded::Written { .. }) => Ran::Kept,
                Ok(Recorded::Exists(_)) => Ran::Untouched,
                Ok(Recorded::Refused(_)) | Err(_) => Ran::Failed,
            };
            self.outcome = Some(out);
            ran
        })
    }

    fn finish(self: Box<Self>, batch: std::result::Result<(), Arc<StoreError>>) {
        let answer = match (self.outcome, batch) {
            // Written (or found written earlier in this batch), but the
            // transaction holding it did not commit.
            (Some(Ok(Recorded::Written { .. } | Recorded::Exists(_))) | None, Err(e)) => {
                Err(StoreError::Shared(e))
            }
            (Some(out), _) => out,
            (None, Ok(())) => Err(StoreError::Unavailable(
                "the conversion writer stopped before writing".to_owned(),
            )),
        };
        // The caller may have gone away; the outcome stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// SQLite's writer of conversions: one task gathering them, one
/// transaction per batch on the native connection (shared with the click
/// and event writers, which take turns with it).
#[derive(Debug)]
pub(crate) struct GroupWriter {
    native: SqliteBatchWriter,
    queue: Mutex<Option<mpsc::UnboundedSender<Box<dyn Job>>>>,
}

impl GroupWriter {
    /// A writer on SQLite's native connection. Its task starts on first
    /// use and ends when the writer is dropped.
    pub(crate) fn new(native: SqliteBatchWriter) -> Self {
        Self {
            native,
            queue: Mutex::new(None),
        }
    }

    async fn submit<E: Send + 'static>(&self, r: Recording<E>) -> Result<Recorded<E>> {
        let (reply, answer) = oneshot::channel();
        let mut job: Box<dyn Job> = Box::new(RecordJob {
            recording: r,
            outcome: None,
            reply,
        });
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            // A task ends with the runtime that ran it (a test's, say): a
            // later runtime gets a task of its own.
            for _ in 0..2 {
                let sender = queue.get_or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(run(self.native.clone(), rx));
                    tx
                });
                match sender.send(job) {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(back)) => {
                        job = back;
                        *queue = None;
                    }
                }
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the conversion writer stopped (the server is shutting down)".to_owned(),
            ))
        })
    }
}

async fn run(native: SqliteBatchWriter, mut rx: mpsc::UnboundedReceiver<Box<dyn Job>>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let native = native.clone();
        let written = tokio::task::spawn_blocking(move || {
            let outcome = native
                .with_conn(|conn| write_batch(conn, &mut batch))
                .map_err(Arc::new);
            (batch, outcome)
        })
        .await;
        match written {
            Ok((batch, outcome)) => {
                for job in batch {
                    job.finish(outcome.clone());
                }
            }
            // The thread panicked: the batch went with it, and its callers
            // hear that the writer stopped. The connection rolls back what
            // it held before its next use (`with_conn`).
            Err(e) => tracing::error!(error = %e, "the conversion writer's thread failed"),
        }
    }
}

fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { context, source }
}

/// Write `batch` in one transaction and commit once. Optimistically
/// first, without savepoints (each would journal every page its conversion
/// changes); if a job fails after writing part of it, the whole transaction
/// is rolled back and the batch written again with a savepoint per job, so
/// that only the one at fault is undone.
fn write_batch(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> Result<()> {
    let clean = in_write_transaction(conn, |conn| {
        let mut memo = WriteMemo::default();
        for job in batch.iter_mut() {
            if run_native(conn, &mut memo, job.as_mut()) == Ran::Failed {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })?;
    if clean.is_some() {
        return Ok(());
    }
    in_write_transaction(conn, |conn| {
        let mut memo = WriteMemo::default();
        for job in batch.iter_mut() {
            conn.execute_batch("SAVEPOINT conversion")
                .map_err(sqlite("starting a conversion's savepoint"))?;
            let end = match run_native(conn, &mut memo, job.as_mut()) {
                Ran::Kept | Ran::Untouched => "RELEASE conversion",
                Ran::Failed => "ROLLBACK TO conversion; RELEASE conversion",
            };
            conn.execute_batch(end)
                .map_err(sqlite("ending a conversion's savepoint"))?;
        }
        Ok(Some(()))
    })
    .map(|_| ())
}

/// Run a job on the native connection. Every statement of its path is
/// native, so it finishes in one poll; if it ever waited on anything else,
/// it counts as failed (and is rolled back), never as written.
fn run_native(conn: &mut Connection, memo: &mut WriteMemo, job: &mut dyn Job) -> Ran {
    ready_now(job.run(&mut Native(conn, Some(memo)))).unwrap_or_else(|| {
        tracing::error!("a conversion's write waited on something other than SQLite");
        Ran::Failed
    })
}
