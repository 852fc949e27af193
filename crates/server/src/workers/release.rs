//! The hold-period job: at a fixed interval (a minute by default), post
//! every commission whose hold period is over (pending → payable), on every
//! node. Nodes running it together do no harm: each commission is posted in
//! the transaction that reads it, so a second node finds nothing left.
//! Held commissions (unverified browser reports, fraud flags) wait for a
//! decision instead.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tribute_store::Store;

use super::Worker;

/// Run the job every `every` until `stop` turns true.
pub fn spawn(store: Store, every: Duration, mut stop: watch::Receiver<bool>) -> Worker {
    Worker::spawn("commission release", async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match store.release_due(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "commissions released after their hold"),
                Err(e) => tracing::error!(error = ?e, "releasing commissions failed"),
            }
        }
    })
}
