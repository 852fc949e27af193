//! Storage conformance for recording webhook attempts whatever they bring:
//! an attempt whose endpoint was deleted while it was in flight, and a
//! receiver's answer holding a NUL byte, are recorded without failing the
//! batch of attempts recorded with them, on both backends.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use chrono::{Duration, Utc};
use tribute_core::ids::WebhookEndpointId;
use tribute_core::partner::PartnerStatus;
use tribute_core::program::Program;
use tribute_core::webhook::WebhookSecret;
use tribute_store::{AttemptResult, ClaimedDelivery, Page, Store, StoreError, StoredEndpoint};

use common::*;

conformance!(
    an_attempt_whose_endpoint_was_deleted_meanwhile_leaves_its_batch_recorded,
    an_answer_holding_a_nul_byte_is_recorded_with_its_batch,
    a_change_made_from_a_stale_copy_of_an_endpoint_is_refused_and_writes_nothing,
);

const BIG: Page = Page {
    limit: 1_000,
    offset: 0,
};

/// An enabled endpoint of `p` for every event, stored.
async fn endpoint(db: &Store, p: &Program) -> StoredEndpoint {
    let e = webhook_endpoint(p);
    db.insert_endpoint(&e).await.unwrap();
    e
}

/// A program with two endpoints, and one `partner.created` claimed for
/// each by `node`.
async fn two_claimed(db: &Store) -> (StoredEndpoint, StoredEndpoint, Vec<ClaimedDelivery>) {
    let p = program("Acme");
    db.insert_program(&p).await.unwrap();
    let (a, b) = (endpoint(db, &p).await, endpoint(db, &p).await);
    db.insert_partner(&partner(&p, "ann", PartnerStatus::Active))
        .await
        .unwrap();
    let now = Utc::now();
    let claimed = db
        .claim_deliveries("node", now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "one message per endpoint");
    (a, b, claimed)
}

/// An answer with `status` and `body` in 50 ms.
fn answered(status: u16, body: &str) -> AttemptResult {
    let delivered = (200..300).contains(&status);
    AttemptResult {
        started_at: Utc::now(),
        duration_ms: 50,
        status_code: Some(status),
        error: (!delivered).then(|| format!("HTTP {status}: {body}")),
        response: Some(body.to_owned()),
        next_attempt_at: (!delivered).then(|| Utc::now() + Duration::minutes(5)),
        delivered,
    }
}

async fn an_attempt_whose_endpoint_was_deleted_meanwhile_leaves_its_batch_recorded(db: Store) {
    let (a, b, claimed) = two_claimed(&db).await;
    db.delete_endpoint(&a.id).await.unwrap();
    let batch: Vec<_> = claimed
        .iter()
        .map(|d| (d.clone(), answered(200, "ok")))
        .collect();
    let held = db.finish_attempts("node", &batch).await.unwrap();
    let of_b = claimed.iter().position(|d| d.endpoint_id == b.id).unwrap();
    assert_eq!(
        held,
        (0..2).map(|i| i == of_b).collect::<Vec<_>>(),
        "only the delivery still there was moved on"
    );
    let listed = db.endpoint_deliveries(&b.id, BIG).await.unwrap();
    assert_eq!(listed[0].status, "delivered", "{listed:?}");
    assert_eq!(listed[0].attempt_log.len(), 1, "{listed:?}");
    assert!(db.endpoint_deliveries(&a.id, BIG).await.unwrap().is_empty());
}

async fn an_answer_holding_a_nul_byte_is_recorded_with_its_batch(db: Store) {
    let (a, b, claimed) = two_claimed(&db).await;
    let batch: Vec<_> = claimed
        .iter()
        .map(|d| {
            let r = if d.endpoint_id == a.id {
                answered(500, "bad\0gateway")
            } else {
                answered(200, "ok")
            };
            (d.clone(), r)
        })
        .collect();
    let held = db.finish_attempts("node", &batch).await.unwrap();
    assert_eq!(held, vec![true, true]);
    let failed = &db.endpoint_deliveries(&a.id, BIG).await.unwrap()[0];
    assert_eq!(failed.status, "pending", "to be tried again: {failed:?}");
    let attempt = &failed.attempt_log[0];
    assert_eq!(attempt.response.as_deref(), Some("bad\u{FFFD}gateway"));
    assert_eq!(
        attempt.error.as_deref(),
        Some("HTTP 500: bad\u{FFFD}gateway")
    );
    let delivered = &db.endpoint_deliveries(&b.id, BIG).await.unwrap()[0];
    assert_eq!(delivered.status, "delivered", "{delivered:?}");
}

/// The sender disabling an endpoint, or its failing streak starting, while
/// the owner edits it from an earlier read: the edit is a conflict, so it
/// can neither re-enable the endpoint nor drop what the sender wrote; a
/// second rotation from the same read loses to the first.
async fn a_change_made_from_a_stale_copy_of_an_endpoint_is_refused_and_writes_nothing(db: Store) {
    let p = program("Acme");
    db.insert_program(&p).await.unwrap();
    let e = endpoint(&db, &p).await;
    let read = db.endpoint(&e.id).await.unwrap().unwrap();
    let later = Utc::now() + Duration::seconds(5);
    // The sender notes a failure: the streak starts.
    db.endpoint_result(
        &e.id,
        false,
        false,
        later,
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let mut edit = read.clone();
    edit.description = "from a stale copy".into();
    edit.updated_at = later + Duration::seconds(1);
    let refused = db
        .update_endpoint_if_unchanged(&edit, read.updated_at)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    let now = db.endpoint(&e.id).await.unwrap().unwrap();
    assert_eq!(now.description, "", "nothing was written");
    assert!(
        now.failing_since.is_some(),
        "the streak the sender wrote stays"
    );
    // From a fresh read, the same edit is saved; a second one from that
    // same read is not.
    let mut fresh = now.clone();
    fresh.description = "from a fresh copy".into();
    fresh.secret = WebhookSecret::generate();
    fresh.updated_at = now.updated_at + Duration::seconds(1);
    db.update_endpoint_if_unchanged(&fresh, now.updated_at)
        .await
        .unwrap();
    let mut again = now.clone();
    again.secret = WebhookSecret::generate();
    again.updated_at = now.updated_at + Duration::seconds(2);
    let lost = db
        .update_endpoint_if_unchanged(&again, now.updated_at)
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict { .. })));
    let kept = db.endpoint(&e.id).await.unwrap().unwrap();
    assert_eq!(
        kept.secret, fresh.secret,
        "the first rotation's secret is kept"
    );
    // An unknown endpoint is still not found.
    let mut gone = kept.clone();
    gone.id = WebhookEndpointId::generate();
    let missing = db
        .update_endpoint_if_unchanged(&gone, kept.updated_at)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}
