//! `GET /metrics`: operational counters in the Prometheus text format.
//!
//! Counters are per process (per node). The redirect benchmark reads
//! `tribute_redirects_total` to check that every redirect served was
//! recorded as a click.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Counters updated on the hot paths (relaxed atomics: no ordering needed).
#[derive(Default)]
pub struct Counters {
    /// Redirects answered with a recorded click.
    pub redirects_recorded: AtomicU64,
    /// Redirects answered without a click (suspended partner).
    pub redirects_unrecorded: AtomicU64,
    /// Clicks committed by the writer.
    pub clicks_written: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let c: &Arc<Counters> = &state.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let body = format!(
        "# HELP tribute_redirects_total Redirects answered by /r/{{code}}.\n\
         # TYPE tribute_redirects_total counter\n\
         tribute_redirects_total{{recorded=\"true\"}} {}\n\
         tribute_redirects_total{{recorded=\"false\"}} {}\n\
         # HELP tribute_clicks_written_total Clicks committed to the database.\n\
         # TYPE tribute_clicks_written_total counter\n\
         tribute_clicks_written_total {}\n\
         # HELP tribute_click_queue_depth Clicks waiting for the writer.\n\
         # TYPE tribute_click_queue_depth gauge\n\
         tribute_click_queue_depth {}\n",
        get(&c.redirects_recorded),
        get(&c.redirects_unrecorded),
        get(&c.clicks_written),
        state.clicks.depth(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
