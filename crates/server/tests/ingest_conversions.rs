//! Black-box tests of conversion ingestion: idempotent by external id or
//! `Idempotency-Key` (also under concurrent retries), credited across devices
//! through identity stitching or by a coupon alone, and read by partner keys
//! only as far as they were credited.

#[macro_use]
mod common;

use reqwest::Method;
use serde_json::{json, Value};

use common::shop::{credited, replayed, shop};
use common::{spawn_app, str_of, TestApp};

on_both_backends!(
    a_repeated_external_id_makes_one_conversion_and_answers_the_same_body,
    a_repeated_idempotency_key_makes_one_conversion_and_answers_the_same_body,
    concurrent_retries_of_one_order_make_exactly_one_conversion,
    a_click_on_one_device_credits_a_conversion_identified_on_another,
    a_conversion_on_a_device_never_linked_to_the_click_is_not_credited,
    a_coupon_alone_credits_its_partner,
    partner_keys_read_only_conversions_credited_to_them,
);

// --- idempotency -------------------------------------------------------------

async fn a_repeated_external_id_makes_one_conversion_and_answers_the_same_body(app: TestApp) {
    let shop = shop(&app).await;
    let tid = app.click_link(&shop.alice_code).await;
    let order =
        json!({"external_id": "order-1", "value": 4999, "currency": "EUR", "click_id": tid});

    let first = app.post("/conversions", &shop.ingest, &order).await;
    let body = first.ok(201).clone();
    assert!(!replayed(&first), "the first answer is no replay");
    assert_eq!(body["external_id"], "order-1");
    assert_eq!(credited(&body), vec![(shop.seed.alice.id.clone(), 4999)]);

    let second = app.post("/conversions", &shop.ingest, &order).await;
    assert_eq!(second.ok(201), &body, "a retry answers the first result");
    assert!(replayed(&second), "with `Idempotent-Replayed: true`");

    // A retry that differs (another amount) still answers the first conversion.
    let changed = json!({"external_id": "order-1", "value": 1, "currency": "EUR"});
    let third = app.post("/conversions", &shop.ingest, &changed).await;
    assert_eq!(third.ok(201)["value"], 4999);
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, 1);
}

async fn a_repeated_idempotency_key_makes_one_conversion_and_answers_the_same_body(app: TestApp) {
    let shop = shop(&app).await;
    // A time finer than the millisecond the store keeps must not make the replay differ.
    let at = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let sale =
        json!({"value": 1200, "currency": "EUR", "email": "jo@example.com", "occurred_at": at});
    let key = [("Idempotency-Key", "req-7f3a")];

    let first = app
        .post_with_headers("/conversions", &shop.ingest, &sale, &key)
        .await;
    let body = first.ok(201).clone();
    assert!(!replayed(&first));
    assert_eq!(body["external_id"], Value::Null);

    let second = app
        .post_with_headers("/conversions", &shop.ingest, &sale, &key)
        .await;
    assert_eq!(second.ok(201), &body, "a retry answers the first result");
    assert!(replayed(&second));
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, 1);

    // Without the key the same body is another conversion.
    app.post("/conversions", &shop.ingest, &sale).await.ok(201);
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, 2);

    // A malformed key is refused, naming the header.
    let long = "k".repeat(201);
    app.post_with_headers(
        "/conversions",
        &shop.ingest,
        &sale,
        &[("Idempotency-Key", long.as_str())],
    )
    .await
    .assert_error(400, Some("Idempotency-Key"), "a 201-character key");
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, 2);
}

async fn concurrent_retries_of_one_order_make_exactly_one_conversion(app: TestApp) {
    let shop = shop(&app).await;
    let tid = app.click_link(&shop.alice_code).await;
    let app = std::sync::Arc::new(app);
    let requests: Vec<_> = (0..10)
        .map(|i| {
            let app = app.clone();
            let key = shop.ingest.clone();
            // Each retry carries identifiers too, so each one writes to the identity graph.
            let order = json!({
                "external_id": "order-42", "value": 10_000, "currency": "EUR",
                "click_id": tid, "email": "jo@example.com", "anonymous_id": format!("device-{i}"),
            });
            tokio::spawn(async move { app.post("/conversions", &key, &order).await })
        })
        .collect();
    let mut replies = Vec::new();
    for request in requests {
        replies.push(request.await.expect("a request task"));
    }

    for reply in &replies {
        reply.ok(201);
    }
    let first_id = replies[0].body["id"].clone();
    assert!(
        replies.iter().all(|r| r.body["id"] == first_id),
        "every retry answers the one conversion"
    );
    assert_eq!(
        replies.iter().filter(|r| !replayed(r)).count(),
        1,
        "exactly one request created it"
    );
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, 1);
    let shown = app
        .get(
            &format!("/conversions/{}", first_id.as_str().unwrap()),
            &app.admin_key,
        )
        .await;
    assert_eq!(
        credited(shown.ok(200)),
        vec![(shop.seed.alice.id.clone(), 10_000)]
    );
}

// --- identity stitching and coupons --------------------------------------------

async fn a_click_on_one_device_credits_a_conversion_identified_on_another(app: TestApp) {
    let shop = shop(&app).await;
    // Device A follows Alice's link, browses, then signs up with an e-mail.
    let tid = app.click_link(&shop.alice_code).await;
    let events = json!({"batch": [
        {"type": "page_view", "anonymous_id": "a1", "click_id": tid},
        {"type": "signup", "anonymous_id": "a1", "email": "Jo@Example.com"},
    ]});
    app.post("/events", &shop.ingest, &events).await.ok(202);
    // Device B: the same person signs in.
    let identify = json!({"type": "identify", "anonymous_id": "b1", "email": "jo@example.com"});
    app.post("/events", &shop.ingest, &identify).await.ok(202);

    // The backend reports the order by e-mail only…
    let by_email =
        json!({"external_id": "o-1", "value": 2500, "currency": "EUR", "email": "jo@example.com"});
    let sale = app.post("/conversions", &shop.ingest, &by_email).await;
    let sale = sale.ok(201);
    assert_eq!(credited(sale), vec![(shop.seed.alice.id.clone(), 2500)]);
    assert_eq!(sale["partners"][0]["slug"], "alice");
    assert_eq!(sale["attribution"]["credits"][0]["touch_id"], tid.as_str());
    // …and a later one by device B's anonymous id only.
    let by_device =
        json!({"external_id": "o-2", "value": 800, "currency": "EUR", "anonymous_id": "b1"});
    let sale = app.post("/conversions", &shop.ingest, &by_device).await;
    assert_eq!(
        credited(sale.ok(201)),
        vec![(shop.seed.alice.id.clone(), 800)]
    );
}

async fn a_conversion_on_a_device_never_linked_to_the_click_is_not_credited(app: TestApp) {
    let shop = shop(&app).await;
    let tid = app.click_link(&shop.alice_code).await;
    let page = json!({"type": "page_view", "anonymous_id": "a1", "click_id": tid});
    app.post("/events", &shop.ingest, &page).await.ok(202);
    let identify = json!({"type": "identify", "anonymous_id": "b1", "email": "jo@example.com"});
    app.post("/events", &shop.ingest, &identify).await.ok(202);

    let sale = json!({"value": 2500, "currency": "EUR", "email": "jo@example.com"});
    let sale = app.post("/conversions", &shop.ingest, &sale).await;
    let sale = sale.ok(201);
    assert_eq!(credited(sale), vec![], "nothing ties device B to the click");
    assert!(sale["attribution"]["credits"]
        .as_array()
        .unwrap()
        .is_empty());
}

async fn a_coupon_alone_credits_its_partner(app: TestApp) {
    let shop = shop(&app).await;
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": shop.seed.bob.id, "code": "BOB10"}),
    )
    .await
    .ok(201);

    let sale = json!({"external_id": "o-1", "value": 5000, "currency": "EUR", "coupon": "bob10"});
    let sale = app.post("/conversions", &shop.ingest, &sale).await;
    let sale = sale.ok(201);
    assert_eq!(credited(sale), vec![(shop.seed.bob.id.clone(), 5000)]);
    assert_eq!(sale["coupon"], "BOB10", "codes are kept upper-case");
    assert_eq!(sale["attribution"]["credits"][0]["kind"], "coupon");

    // An unknown coupon is kept on the conversion but credits nobody.
    let other = json!({"external_id": "o-2", "value": 100, "currency": "EUR", "coupon": "NOPE"});
    let other = app.post("/conversions", &shop.ingest, &other).await;
    assert_eq!(credited(other.ok(201)), vec![]);
}

// --- keys ------------------------------------------------------------------------

async fn partner_keys_read_only_conversions_credited_to_them(app: TestApp) {
    let shop = shop(&app).await;
    let (alice, bob) = (&shop.seed.alice, &shop.seed.bob);
    let alice_tid = app.click_link(&shop.alice_code).await;
    let bob_tid = app.click_link(&shop.bob_code).await;
    let post = |external: &str, click: &str| json!({"external_id": external, "value": 1000, "currency": "EUR", "click_id": click});
    let alices = app
        .post("/conversions", &shop.ingest, &post("o-a", &alice_tid))
        .await;
    let alices = str_of(alices.ok(201), "id").to_owned();
    let bobs = app
        .post("/conversions", &shop.ingest, &post("o-b", &bob_tid))
        .await;
    let bobs = str_of(bobs.ok(201), "id").to_owned();

    // Alice sees her own, without the explanation of others' shares.
    let own = app.get(&format!("/conversions/{alices}"), &alice.key).await;
    let own = own.ok(200);
    assert_eq!(credited(own), vec![(alice.id.clone(), 1000)]);
    assert!(
        own.get("attribution").is_none(),
        "no attribution for partners: {own}"
    );
    assert!(
        own.get("summary").is_none(),
        "no summary for partners: {own}"
    );
    let admin_view = app
        .get(&format!("/conversions/{alices}"), &app.admin_key)
        .await;
    assert!(admin_view.ok(200).get("attribution").is_some());

    // Bob's conversion is a 404 to Alice, like one that does not exist.
    let other = app.get(&format!("/conversions/{bobs}"), &alice.key).await;
    other.assert_error(404, None, "Bob's conversion with Alice's key");
    assert!(!other.text.contains(&bob.id));
    let missing = app.get("/conversions/cnv_doesnotexist", &alice.key).await;
    assert_eq!(missing.body, other.body);

    // Her list holds only conversions credited to her, and filtering by Bob is refused.
    let listed = app.get("/conversions", &alice.key).await;
    let ids: Vec<&str> = listed.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "id"))
        .collect();
    assert_eq!(ids, vec![alices.as_str()]);
    app.get(&format!("/conversions?partner_id={}", bob.id), &alice.key)
        .await
        .assert_error(404, None, "Alice filtering by Bob");

    // Partners cannot post conversions or events.
    let before = app.conversion_count(&shop.seed.program_id).await;
    app.post("/conversions", &alice.key, &post("o-x", &alice_tid))
        .await
        .assert_error(403, None, "a partner posting a conversion");
    app.post(
        "/events",
        &alice.key,
        &json!({"type": "page_view", "anonymous_id": "z"}),
    )
    .await
    .assert_error(403, None, "a partner posting an event");
    assert_eq!(app.conversion_count(&shop.seed.program_id).await, before);

    // The ingest key writes but reads nothing.
    for path in [
        "/conversions".to_owned(),
        format!("/conversions/{alices}"),
        format!("/conversions?program_id={}", shop.seed.program_id),
    ] {
        app.api(Method::GET, &path, Some(&shop.ingest), None)
            .await
            .assert_error(403, None, &path);
    }
}

// --- SQLite only -----------------------------------------------------------------

#[tokio::test]
async fn a_shared_conversion_shows_a_partner_only_their_own_part() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    app.set_default_model(&shop.seed.program_id, "linear").await;
    let alice_tid = app.click_link(&shop.alice_code).await;
    let bob_tid = app.click_link(&shop.bob_code).await;
    let page = json!({"batch": [
        {"type": "page_view", "anonymous_id": "a1", "click_id": alice_tid},
        {"type": "page_view", "anonymous_id": "a1", "click_id": bob_tid},
    ]});
    app.post("/events", &shop.ingest, &page).await.ok(202);
    let sale = json!({"value": 1000, "currency": "EUR", "anonymous_id": "a1"});
    let sale = app.post("/conversions", &shop.ingest, &sale).await;
    let id = str_of(sale.ok(201), "id").to_owned();
    assert_eq!(credited(sale.ok(201)).len(), 2);

    for partner in [&shop.seed.alice, &shop.seed.bob] {
        let seen = app.get(&format!("/conversions/{id}"), &partner.key).await;
        assert_eq!(
            credited(seen.ok(200)),
            vec![(partner.id.clone(), 500)],
            "{} sees only their own part",
            partner.slug
        );
    }
    app.finish().await;
}
