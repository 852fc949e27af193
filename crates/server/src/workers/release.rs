//! The commission job: at a fixed interval (a minute by default), on every
//! node, pay the leads and runs of clicks that came in since (see
//! `tribute_store`'s lead and click accrual), then post every commission
//! whose hold period is over (pending → payable). Nodes running it together do no harm: each commission is posted in
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
        // The first run comes one interval after start, not at once: what a
        // client does right after start is never raced by it.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            run_once(&store).await;
        }
    })
}

/// One run of the job; failures are logged and retried at the next run.
pub async fn run_once(store: &Store) {
    let now = Utc::now();
    loop {
        match store.accrue_leads(now).await {
            Ok(n) if n >= 500 => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::error!(error = ?e, "paying leads failed");
                break;
            }
        }
    }
    if let Err(e) = store.accrue_clicks(now).await {
        tracing::error!(error = ?e, "paying clicks failed");
    }
    match store.release_due(now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "commissions released after their hold"),
        Err(e) => tracing::error!(error = ?e, "releasing commissions failed"),
    }
}
