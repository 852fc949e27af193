//! Background workers: each drains a queue that request handlers feed
//! (clicks from redirects, events from ingestion) and commits in batches,
//! or runs on a schedule (tier evaluation).
//!
//! Periodic jobs (`release`) and the webhook sender run until the server
//! stops.
//!
//! They share one shape: `spawn` returns the queue's handle and a
//! [`Worker`]; when every handle is dropped the queue closes, and
//! [`Worker::finish`] waits until the worker has committed what was left.

pub mod clicks;
pub mod events;
pub mod release;
pub mod tiers;
pub mod webhooks;

use std::future::Future;

use tokio::task::JoinHandle;

/// A running worker task.
pub struct Worker {
    name: &'static str,
    handle: JoinHandle<()>,
}

impl Worker {
    /// Run `work` on its own task.
    pub fn spawn(name: &'static str, work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            name,
            handle: tokio::spawn(work),
        }
    }

    /// Wait for the worker to drain its queue. Every handle of the queue
    /// must be dropped first, or this waits for ever.
    pub async fn finish(self) {
        if let Err(e) = self.handle.await {
            tracing::error!(worker = self.name, error = %e, "worker failed");
        }
    }
}
