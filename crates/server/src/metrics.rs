//! `GET /metrics`: operational counters in the Prometheus text format.
//!
//! Served on its own listener (`--metrics-listen`) without a key, or on the
//! main address to admin keys only. Counters are per process (per node). The redirect benchmark reads
//! `tribute_redirects_total` to check that every redirect served was
//! recorded as a click.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::http::ApiError;
use crate::http::Auth;
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
    /// Clicks given up after the database refused them (their 302 was sent).
    clicks_dropped: AtomicU64,
    /// When clicks were last dropped (ms since the epoch; 0: never).
    last_drop_ms: AtomicI64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Count `n` clicks lost to a storage fault, at `now_ms`.
    pub fn clicks_dropped_at(&self, n: u64, now_ms: i64) {
        self.clicks_dropped.fetch_add(n, Ordering::Relaxed);
        self.last_drop_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn clicks_dropped(&self) -> u64 {
        self.clicks_dropped.load(Ordering::Relaxed)
    }

    /// Whether clicks were dropped at or after `since_ms`.
    pub fn clicks_dropped_since(&self, since_ms: i64) -> bool {
        let last = self.last_drop_ms.load(Ordering::Relaxed);
        last != 0 && last >= since_ms
    }
}

/// `/metrics` without a key, for a listener of its own.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// `/metrics` on the main address: admin keys only, since queue depths and
/// traffic counts are nobody else's business.
pub fn admin_router() -> Router<AppState> {
    Router::new().route(
        "/metrics",
        get(|auth: Auth, state: State<AppState>| async move {
            auth.require_admin()?;
            Ok::<_, ApiError>(metrics(state).await)
        }),
    )
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
         # HELP tribute_clicks_dropped_total Clicks redirected but lost: the database refused them.\n\
         # TYPE tribute_clicks_dropped_total counter\n\
         tribute_clicks_dropped_total {}\n\
         # HELP tribute_click_queue_depth Clicks waiting for the writer.\n\
         # TYPE tribute_click_queue_depth gauge\n\
         tribute_click_queue_depth {}\n",
        get(&c.redirects_recorded),
        get(&c.redirects_unrecorded),
        get(&c.clicks_written),
        get(&c.clicks_dropped),
        state.clicks.depth(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
