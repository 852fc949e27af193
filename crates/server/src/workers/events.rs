//! Group commit for events: requests hand their events to one writer, which
//! commits whatever has gathered in one transaction and then answers every
//! request in it. Under load, one commit serves many requests; a request is
//! answered only after its events are durable.
//!
//! Events are moved, never copied: each request's events are appended to
//! the group, the group is moved into the store and handed back, and each
//! request is answered from its own stretch of it.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tribute_core::tracking::Event;
use tribute_store::{Store, StoreError};

use super::Worker;

/// Most events one transaction takes.
const MAX_GROUP: usize = 5_000;

/// The ids a request's events were stored under, or the group's failure
/// (shared by every request of the group, hence the `Arc`).
type Reply = oneshot::Sender<Result<BTreeSet<String>, Arc<StoreError>>>;

#[derive(Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<(Vec<Event>, Reply)>,
}

impl EventWriter {
    /// Start the writer: the handle requests write through, and the worker.
    pub fn spawn(store: Store) -> (Self, Worker) {
        let (tx, mut rx) = mpsc::channel::<(Vec<Event>, Reply)>(1_024);
        let worker = Worker::spawn("event writer", async move {
            let mut pending: Vec<(Vec<Event>, Reply)> = Vec::new();
            while rx.recv_many(&mut pending, 256).await > 0 {
                // Take more requests while the group is small: they share the commit.
                let mut size: usize = pending.iter().map(|(e, _)| e.len()).sum();
                while size < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(item) => {
                            size += item.0.len();
                            pending.push(item);
                        }
                        Err(_) => break,
                    }
                }
                let mut group: Vec<Event> = Vec::with_capacity(size);
                let mut replies: Vec<(usize, Reply)> = Vec::with_capacity(pending.len());
                for (events, reply) in pending.drain(..) {
                    replies.push((events.len(), reply));
                    group.extend(events);
                }
                let (group, result) = store.write_events(group).await;
                match result {
                    Ok(outcome) => {
                        let mut events = group.iter();
                        for (n, reply) in replies {
                            let stored = events
                                .by_ref()
                                .take(n)
                                .filter(|e| outcome.inserted.contains(e.id.as_str()))
                                .map(|e| e.id.to_string())
                                .collect();
                            let _ = reply.send(Ok(stored));
                        }
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        for (_, reply) in replies {
                            let _ = reply.send(Err(Arc::clone(&e)));
                        }
                    }
                }
            }
        });
        (Self { tx }, worker)
    }

    /// Store events; returns the ids stored (repeats of an external id are not).
    pub async fn write(&self, events: Vec<Event>) -> anyhow::Result<BTreeSet<String>> {
        if events.is_empty() {
            return Ok(BTreeSet::new());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((events, reply))
            .await
            .map_err(|_| anyhow::anyhow!("event writer stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("event writer stopped"))?
            .map_err(|e| anyhow::Error::new(e).context("storing events"))
    }
}
