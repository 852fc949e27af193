//! The webhook half of the benchmark: a local receiver that counts what it
//! gets and answers 204, an endpoint subscribed to every event, and the
//! outbox drained after the drive (every message delivered).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use chrono::Utc;
use tokio::net::TcpListener;
use tribute_core::ids::WebhookEndpointId;
use tribute_core::webhook::{EventFilter, WebhookSecret};
use tribute_store::{Store, StoredEndpoint};

use crate::seed::Seed;

/// Requests the receiver got.
pub type Received = Arc<AtomicUsize>;

/// Start the receiver on the current runtime; its URL and its count.
pub async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let counter = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

/// An endpoint of the seeded program for `url`, every event.
pub async fn subscribe(store: &Store, seed: &Seed, url: &str) {
    let now = Utc::now();
    store
        .insert_endpoint(&StoredEndpoint {
            id: WebhookEndpointId::generate(),
            program_id: seed.program.id.clone(),
            url: url.to_owned(),
            description: "benchmark receiver".into(),
            events: EventFilter::all(),
            partner_id: None,
            secret: WebhookSecret::generate(),
            previous_secret: None,
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("an endpoint");
}

/// Wait until no delivery is pending (or `limit` passes); the messages
/// delivered and when the last one was.
pub async fn drained(store: &Store, limit: Duration) -> (i64, Instant) {
    let start = Instant::now();
    loop {
        let pending = store
            .count_deliveries(Some("pending"))
            .await
            .expect("count");
        if pending == 0 || start.elapsed() > limit {
            let delivered = store
                .count_deliveries(Some("delivered"))
                .await
                .expect("count");
            return (delivered, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
