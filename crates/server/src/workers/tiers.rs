//! The tier evaluator: shortly after start (a minute, or the interval if
//! shorter) and then every
//! `ServerConfig::tier_interval` (a day by default), it moves every
//! program's partners to the tier their results earn
//! (`Store::evaluate_tiers`, which records each change with its reason).
//!
//! Every node runs it; that is safe because a change is applied only if the
//! partner is still in the tier it was evaluated in, so two nodes never
//! record the same move twice. It stops when the last [`TierSchedule`]
//! (held by the app state) is dropped, like the queue-fed workers.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tribute_store::{Page, Store};

use super::Worker;

/// Keeps the evaluator running: dropping it stops the worker.
pub struct TierSchedule {
    _alive: mpsc::Sender<()>,
}

/// Programs read per page while evaluating them all.
const PROGRAMS_PER_PAGE: i64 = 200;

/// Start the evaluator, running every `every`.
pub fn spawn(store: Store, every: Duration) -> (TierSchedule, Worker) {
    let (alive, mut stopped) = mpsc::channel::<()>(1);
    let worker = Worker::spawn("tier evaluator", async move {
        // The first run waits a little (at most a minute) after start: the
        // node is up before it works, and what a client does right after
        // start is never raced by it.
        let first = tokio::time::Instant::now() + every.min(Duration::from_secs(60));
        let mut ticks = tokio::time::interval_at(first, every);
        // After a long pause (a suspended machine), run once, not a burst.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => evaluate_all(&store).await,
                // `None`: every schedule is gone, the server is stopping.
                _ = stopped.recv() => break,
            }
        }
    });
    (TierSchedule { _alive: alive }, worker)
}

/// Evaluate every program; a failure is logged and the next program goes on.
async fn evaluate_all(store: &Store) {
    let now = Utc::now().trunc_subsecs(3);
    let mut offset = 0;
    loop {
        let page = Page {
            limit: PROGRAMS_PER_PAGE,
            offset,
        };
        let programs = match store.programs(page).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = ?e, "tier evaluation: listing programs failed");
                return;
            }
        };
        for p in &programs {
            match store.evaluate_tiers(&p.id, p.settings.currency, now).await {
                Ok(changes) if !changes.is_empty() => {
                    tracing::info!(program = %p.id, changes = changes.len(), "tiers evaluated");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(program = %p.id, error = ?e, "tier evaluation failed");
                }
            }
        }
        if (programs.len() as i64) < PROGRAMS_PER_PAGE {
            return;
        }
        offset += PROGRAMS_PER_PAGE;
    }
}
