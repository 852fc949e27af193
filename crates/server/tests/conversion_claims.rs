//! What a conversion report may claim, and what a replay may reveal: a
//! browser cannot pre-claim the owner's order ids, a replay is answered only
//! after the key's permission and the request's validity are checked, an
//! `Idempotency-Key` cannot be reused for another request, and a partner's
//! view of a shared conversion shows no other partner's identifiers.

#[macro_use]
mod common;

use serde_json::{json, Value};

use common::shop::{credited, replayed, shop, Shop};
use common::{publishable_key, str_of, Reply, TestApp};
use tribute_core::ids::ProgramId;

on_both_backends!(
    a_browser_order_id_cannot_preclaim_the_owners_order,
    a_browser_report_after_the_owners_is_kept_superseded,
    a_partner_key_gets_403_before_any_replay_lookup,
    an_invalid_retry_of_a_recorded_order_is_refused_not_replayed,
    the_same_idempotency_key_with_another_body_is_refused_with_422,
    a_partner_sees_only_its_own_part_and_no_other_partners_coupon_or_click,
    a_publishable_key_may_not_use_the_api,
    a_secret_write_key_reports_as_the_owners_backend,
);

/// The program's publishable key, as analytics.js and the snippet carry it.
async fn browser_key(app: &TestApp, shop: &Shop) -> String {
    let program = ProgramId::parse(&shop.seed.program_id).expect("a program id");
    publishable_key(&app.store, &program).await
}

/// `POST /v1/track` as a Segment SDK sends it: the write key as Basic user.
async fn track(app: &TestApp, write_key: &str, body: Value) -> Reply {
    let response = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(write_key, Some(""))
        .json(&body)
        .send()
        .await
        .expect("posting to /v1/track");
    Reply::read(response).await
}

fn order_completed(order_id: &str, revenue: &str) -> Value {
    json!({
        "type": "track", "event": "Order Completed", "anonymousId": "anon-1",
        "properties": {"order_id": order_id, "revenue": revenue, "currency": "EUR"},
    })
}

/// Every conversion of the shop, as an admin lists them.
async fn conversions(app: &TestApp) -> Vec<Value> {
    let list = app.get("/conversions", &app.admin_key).await;
    list.ok(200)["data"].as_array().expect("a list").clone()
}

fn by_external_id<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|c| c["external_id"] == id)
        .unwrap_or_else(|| panic!("no conversion {id} in {list:?}"))
}

async fn a_browser_order_id_cannot_preclaim_the_owners_order(app: TestApp) {
    let shop = shop(&app).await;
    // Anyone can read the write key from a page and report the owner's order first.
    let public = browser_key(&app, &shop).await;
    track(&app, &public, order_completed("o-5000", "1.00"))
        .await
        .ok(200);

    let sale = json!({"external_id": "o-5000", "value": 12_000, "currency": "EUR"});
    let owners = app.post("/conversions", &shop.ingest, &sale).await;
    let owners_body = owners.ok(201);
    assert!(
        !replayed(&owners),
        "the owner's report is no replay of the browser's"
    );
    assert_eq!(owners_body["value"], 12_000, "the owner's value counts");
    assert_eq!(owners_body["status"], "approved");

    let all = conversions(&app).await;
    assert_eq!(
        all.len(),
        2,
        "the browser's report is kept as evidence: {all:?}"
    );
    let browsers = by_external_id(&all, "segment:o-5000");
    assert_eq!(browsers["status"], "superseded", "{browsers}");
    assert_eq!(by_external_id(&all, "o-5000")["status"], "approved");
}

async fn a_browser_report_after_the_owners_is_kept_superseded(app: TestApp) {
    let shop = shop(&app).await;
    let sale = json!({"external_id": "o-7", "value": 5_000, "currency": "EUR"});
    app.post("/conversions", &shop.ingest, &sale).await.ok(201);
    let public = browser_key(&app, &shop).await;
    track(&app, &public, order_completed("o-7", "50.00"))
        .await
        .ok(200);
    let all = conversions(&app).await;
    assert_eq!(by_external_id(&all, "segment:o-7")["status"], "superseded");
    assert_eq!(by_external_id(&all, "o-7")["status"], "approved");
}

async fn a_partner_key_gets_403_before_any_replay_lookup(app: TestApp) {
    let shop = shop(&app).await;
    let tid = app.click_link(&shop.alice_code).await;
    let sale = json!({"external_id": "o-1", "value": 4_999, "currency": "EUR", "click_id": tid});
    app.post("/conversions", &shop.ingest, &sale).await.ok(201);
    // Bob guesses Alice's order id: he learns nothing of it.
    let guess = app.post("/conversions", &shop.seed.bob.key, &sale).await;
    guess.assert_error(403, None, "a partner key replaying an order");
    assert!(
        !guess.text.contains("4999") && !guess.text.contains(&tid),
        "{}",
        guess.text
    );
}

async fn an_invalid_retry_of_a_recorded_order_is_refused_not_replayed(app: TestApp) {
    let shop = shop(&app).await;
    let sale = json!({"external_id": "o-1", "value": 4_999, "currency": "EUR"});
    app.post("/conversions", &shop.ingest, &sale).await.ok(201);
    let bad = json!({"external_id": "o-1", "value": 4_999, "currency": "XXX"});
    let reply = app.post("/conversions", &shop.ingest, &bad).await;
    reply.assert_error(422, Some("currency"), "an unknown currency on a retry");
    assert!(!reply.text.contains("4999"), "{}", reply.text);
}

async fn the_same_idempotency_key_with_another_body_is_refused_with_422(app: TestApp) {
    let shop = shop(&app).await;
    let key = [("Idempotency-Key", "req-1")];
    let sale = json!({"value": 1_200, "currency": "EUR", "email": "jo@example.com"});
    let first = app
        .post_with_headers("/conversions", &shop.ingest, &sale, &key)
        .await;
    let first = first.ok(201).clone();

    // The same request, its fields in another order: a retry.
    let same: Value =
        serde_json::from_str(r#"{"email": "jo@example.com", "currency": "EUR", "value": 1200}"#)
            .unwrap();
    let retry = app
        .post_with_headers("/conversions", &shop.ingest, &same, &key)
        .await;
    assert_eq!(retry.ok(201), &first);
    assert!(replayed(&retry));

    // Another request under the same key: refused, nothing written.
    let other = json!({"value": 99_999, "currency": "EUR", "email": "jo@example.com"});
    let reused = app
        .post_with_headers("/conversions", &shop.ingest, &other, &key)
        .await;
    reused.assert_error(422, Some("Idempotency-Key"), "a reused key");
    assert_eq!(reused.body["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, 1);
}

async fn a_partner_sees_only_its_own_part_and_no_other_partners_coupon_or_click(app: TestApp) {
    let shop = shop(&app).await;
    let (alice, bob) = (&shop.seed.alice, &shop.seed.bob);
    app.set_default_model(&shop.seed.program_id, "linear").await;
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": bob.id, "code": "BOB10"}),
    )
    .await
    .ok(201);
    let tid = app.click_link(&shop.alice_code).await;
    let sale = json!({"external_id": "o-1", "value": 1_000, "currency": "EUR",
                      "click_id": tid, "coupon": "BOB10"});
    let recorded = app.post("/conversions", &shop.ingest, &sale).await;
    let id = str_of(recorded.ok(201), "id").to_owned();
    assert_eq!(
        credited(recorded.ok(201)).len(),
        2,
        "split between Alice and Bob"
    );

    let alices = app.get(&format!("/conversions/{id}"), &alice.key).await;
    let alices = alices.ok(200);
    assert_eq!(credited(alices), vec![(alice.id.clone(), 500)]);
    assert_eq!(alices["click_id"], tid.as_str(), "her own click");
    assert_eq!(alices["coupon"], Value::Null, "not Bob's coupon: {alices}");
    assert!(!alices.to_string().contains(&bob.id), "{alices}");

    let bobs = app.get(&format!("/conversions/{id}"), &bob.key).await;
    let bobs = bobs.ok(200);
    assert_eq!(credited(bobs), vec![(bob.id.clone(), 500)]);
    assert_eq!(bobs["coupon"], "BOB10", "his own coupon");
    assert_eq!(bobs["click_id"], Value::Null, "not Alice's click: {bobs}");
    assert!(!bobs.to_string().contains(&alice.id), "{bobs}");
}

async fn a_publishable_key_may_not_use_the_api(app: TestApp) {
    let shop = shop(&app).await;
    let public = browser_key(&app, &shop).await;
    let sale = json!({"external_id": "o-1", "value": 100, "currency": "EUR", "status": "approved"});
    app.post("/conversions", &public, &sale).await.assert_error(
        403,
        None,
        "a publishable key posting a conversion",
    );
    let lead = json!({"type": "lead", "anonymous_id": "a", "email": "a@example.com"});
    app.post("/events", &public, &lead).await.assert_error(
        403,
        None,
        "a publishable key posting an event",
    );
    app.get("/conversions", &public).await.assert_error(
        403,
        None,
        "a publishable key listing conversions",
    );
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, 0);
    // It still works where it belongs.
    track(&app, &public, order_completed("o-1", "1.00"))
        .await
        .ok(200);
    let all = conversions(&app).await;
    assert_eq!(by_external_id(&all, "segment:o-1")["status"], "pending");
}

async fn a_secret_write_key_reports_as_the_owners_backend(app: TestApp) {
    let shop = shop(&app).await;
    // A server-side Segment source holds a secret key: its order ids are the owner's.
    track(&app, &shop.ingest, order_completed("o-9", "9.00"))
        .await
        .ok(200);
    let all = conversions(&app).await;
    let c = by_external_id(&all, "o-9");
    assert_eq!(
        c["status"], "pending",
        "Segment has no status: the owner approves"
    );
    let sale = json!({"external_id": "o-9", "value": 900, "currency": "EUR"});
    let again = app.post("/conversions", &shop.ingest, &sale).await;
    assert!(
        replayed(&again),
        "the same order from the same backend is one conversion"
    );
}
