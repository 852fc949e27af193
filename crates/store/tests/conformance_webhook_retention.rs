//! Storage conformance for webhook retention: pruning removes delivered
//! and failed messages (with their attempts) older than the cut-off, the
//! bodies of old inbound deliveries and the rows of refused ones, and keeps
//! everything still
//! pending or in progress, on both backends.

mod common;

use chrono::{Duration, Utc};
use tribute_core::ids::IntegrationId;
use tribute_core::integration::IntegrationKind;
use tribute_core::partner::PartnerStatus;
use tribute_store::{AttemptResult, InboundStart, InboundStatus, Page, Store, StoredIntegration};

use common::*;

conformance!(pruning_keeps_what_is_pending_or_recent_and_removes_the_rest,);

const BIG: Page = Page {
    limit: 1_000,
    offset: 0,
};

async fn pruning_keeps_what_is_pending_or_recent_and_removes_the_rest(db: Store) {
    let p = program("Acme");
    db.insert_program(&p).await.unwrap();
    let endpoint = webhook_endpoint(&p);
    db.insert_endpoint(&endpoint).await.unwrap();
    // Three old messages (made at t0): one delivered, one failed, one
    // still waiting for a retry.
    for slug in ["ann", "bob", "cyd"] {
        db.insert_partner(&partner(&p, slug, PartnerStatus::Active))
            .await
            .unwrap();
    }
    let now = Utc::now();
    let claimed = db
        .claim_deliveries("node", now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    for (d, (status, next)) in claimed.iter().zip([
        (200, None),
        (500, None),
        (500, Some(now + Duration::hours(1))),
    ]) {
        let result = AttemptResult {
            started_at: now,
            duration_ms: 3,
            status_code: Some(status),
            error: None,
            response: Some("ok".into()),
            next_attempt_at: next,
            delivered: status == 200,
        };
        assert!(db.finish_attempt("node", d, &result).await.unwrap());
    }
    // A message not tried yet: kept, however old.
    db.insert_partner(&partner(&p, "dee", PartnerStatus::Active))
        .await
        .unwrap();
    let integration = StoredIntegration {
        id: IntegrationId::generate(),
        program_id: p.id.clone(),
        kind: IntegrationKind::Stripe,
        secret: "whsec_test_secret".into(),
        mapping: serde_json::json!({}),
        created_at: t0(),
        updated_at: t0(),
    };
    db.insert_integration(&integration).await.unwrap();
    let old = t0();
    let mut ids = Vec::new();
    for (key, status) in [
        ("evt_done", Some(InboundStatus::Processed)),
        ("evt_running", None),
    ] {
        let start = db
            .start_inbound_delivery(&integration.id, key, None, "{\"email\":\"a@b.c\"}", old)
            .await
            .unwrap();
        let InboundStart::Process(id) = start else {
            panic!("a new delivery is processed");
        };
        if let Some(s) = status {
            db.finish_inbound_delivery(&id, s, &serde_json::json!([]), None, old)
                .await
                .unwrap();
        }
        ids.push(id);
    }

    db.log_rejected_delivery(&integration.id, None, "the signature does not match", old)
        .await
        .unwrap();
    let cut = t0() + Duration::days(1);
    let (deliveries, bodies) = db.prune_webhooks(cut, 1_000).await.unwrap();
    assert_eq!(deliveries, 2, "the old delivered and failed messages");
    assert_eq!(
        bodies, 2,
        "the processed delivery's body (not the running one's) and the refused delivery"
    );
    let log = db.inbound_deliveries(&integration.id, BIG).await.unwrap();
    assert_eq!(
        log.len(),
        2,
        "the refused delivery's row is gone, the others stay"
    );
    let left = db.endpoint_deliveries(&endpoint.id, BIG).await.unwrap();
    let mut statuses: Vec<&str> = left.iter().map(|d| d.status.as_str()).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        ["pending", "pending"],
        "the retry and the recent message"
    );
    let waiting = left.iter().find(|d| d.attempts == 1).expect("the retry");
    assert_eq!(
        waiting.attempt_log.len(),
        1,
        "a kept message keeps its attempts"
    );
    let done = db.inbound_delivery(&ids[0]).await.unwrap().unwrap();
    assert_eq!(done.body, None);
    assert_eq!(done.status, InboundStatus::Processed, "the log row stays");
    let running = db.inbound_delivery(&ids[1]).await.unwrap().unwrap();
    assert!(running.body.is_some());
    // Pruning again finds nothing; a limit bounds each call.
    assert_eq!(db.prune_webhooks(cut, 1_000).await.unwrap(), (0, 0));
}
