//! The click queue: redirects hand clicks to a bounded queue; one writer
//! drains it and commits them in batches.
//!
//! Batching is what makes a click cheap on the redirect path: one commit
//! (one fsync at most) per batch rather than per click. The queue is bounded,
//! so under overload redirects wait for the writer (back-pressure) instead of
//! clicks being dropped or memory growing without limit. On shutdown the
//! queue is closed and the writer commits everything left before exiting.
//! What a crash (kill -9, power loss) can lose is what sits in the queue:
//! see docs/ARCHITECTURE.md for why that is acceptable for clicks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tribute_core::click::Click;
use tribute_store::{Store, StoreError};

use super::Worker;
use crate::metrics::Counters;

/// Most clicks one transaction commits.
const MAX_BATCH: usize = 2_000;

/// How long the writer lets clicks gather after the first one arrives.
/// Without it, under steady load the writer wakes for every few clicks,
/// and the context switches cost more than the writes; 5 ms of extra
/// latency for a click's commit is invisible to anyone.
const LINGER: Duration = Duration::from_millis(5);

/// Where redirects put clicks.
#[derive(Clone)]
pub struct ClickQueue {
    tx: mpsc::Sender<Click>,
}

impl ClickQueue {
    /// Clicks waiting for the writer.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Queue a click, waiting if the queue is full.
    pub async fn record(&self, click: Click) {
        if self.tx.send(click).await.is_err() {
            // Only during shutdown, after the writer has stopped.
            tracing::warn!("click writer stopped; click not recorded");
        }
    }
}

/// Start the click writer: the queue redirects feed, and the worker.
pub fn spawn_writer(
    store: Store,
    capacity: usize,
    counters: Arc<Counters>,
) -> (ClickQueue, Worker) {
    let (tx, mut rx) = mpsc::channel::<Click>(capacity);
    let worker = Worker::spawn("click writer", async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            if batch.len() < MAX_BATCH && !rx.is_closed() {
                tokio::time::sleep(LINGER).await;
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(click) => batch.push(click),
                        Err(_) => break,
                    }
                }
            }
            let n = batch.len() as u64;
            let (mut back, ok) = write_with_retry(&store, std::mem::take(&mut batch)).await;
            if ok {
                Counters::add(&counters.clicks_written, n);
            } else {
                counters.clicks_dropped_at(n, chrono::Utc::now().timestamp_millis());
            }
            back.clear();
            batch = back;
        }
    });
    (ClickQueue { tx }, worker)
}

/// Commit a batch, retrying transient failures (a busy database) with backoff.
async fn write_with_retry(store: &Store, mut batch: Vec<Click>) -> (Vec<Click>, bool) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=8 {
        let (back, result) = store.write_clicks(batch).await;
        batch = back;
        match result {
            Ok(()) => return (batch, true),
            // The batch itself was lost (its writer thread died): nothing to retry.
            Err(e) if batch.is_empty() => {
                tracing::error!(error = ?e, "click batch lost");
                return (batch, false);
            }
            // The database file is gone for good: retrying only delays the count.
            Err(e @ StoreError::Unavailable(_)) => {
                tracing::error!(error = ?e, n = batch.len(), "click batch dropped");
                return (batch, false);
            }
            Err(e) => {
                tracing::warn!(error = ?e, attempt, n = batch.len(), "click batch failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::error!(
        n = batch.len(),
        "click batch dropped after repeated failures"
    );
    (batch, false)
}
