//! Black-box tests of ingestion: conversions (idempotent by external id or
//! `Idempotency-Key`, also under concurrent retries), identity stitching
//! across devices, coupons, events and leads, the postback URL, validation
//! that names the field and writes nothing, and what each key may do.

#[macro_use]
mod common;

use reqwest::Method;
use serde_json::{json, Value};
use tribute_core::ids::{PartnerId, ProgramId};

use common::{spawn_app, Seed, TestApp};

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` missing in {v}"))
}

/// A seeded program with one link per partner and an ingest key.
struct Shop {
    seed: Seed,
    ingest: String,
    alice_code: String,
    bob_code: String,
}

async fn shop(app: &TestApp) -> Shop {
    let seed = app.seed().await;
    let ingest = app.ingest_key(&seed.program_id).await;
    let alice = app.create_link(&seed.alice.id, json!({})).await;
    let bob = app.create_link(&seed.bob.id, json!({})).await;
    Shop {
        ingest,
        alice_code: str_of(&alice, "code").to_owned(),
        bob_code: str_of(&bob, "code").to_owned(),
        seed,
    }
}

/// `(partner_id, amount)` of each partner a conversion was credited to.
fn credited(conversion: &Value) -> Vec<(String, i64)> {
    conversion["partners"]
        .as_array()
        .unwrap_or_else(|| panic!("no partners in {conversion}"))
        .iter()
        .map(|p| {
            (
                str_of(p, "partner_id").to_owned(),
                p["amount"].as_i64().expect("an amount"),
            )
        })
        .collect()
}

fn replayed(reply: &common::Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

on_both_backends!(
    a_repeated_external_id_makes_one_conversion_and_answers_the_same_body,
    a_repeated_idempotency_key_makes_one_conversion_and_answers_the_same_body,
    concurrent_retries_of_one_order_make_exactly_one_conversion,
    a_click_on_one_device_credits_a_conversion_identified_on_another,
    a_conversion_on_a_device_never_linked_to_the_click_is_not_credited,
    a_coupon_alone_credits_its_partner,
    events_are_accepted_singly_and_in_batches_and_repeats_are_reported_as_duplicates,
    a_via_naming_a_partner_slug_is_a_touch_and_an_unknown_via_is_refused,
    lead_events_count_once_per_partner_and_person,
    a_postback_records_a_conversion_credited_to_the_clicks_partner,
    malformed_events_are_4xx_naming_the_field_and_store_nothing,
    malformed_conversions_are_4xx_naming_the_field_and_store_nothing,
    partner_keys_read_only_conversions_credited_to_them,
    a_click_id_of_another_program_credits_nobody,
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

// --- events --------------------------------------------------------------------

async fn events_are_accepted_singly_and_in_batches_and_repeats_are_reported_as_duplicates(
    app: TestApp,
) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;

    let one = app
        .post(
            "/events",
            &shop.ingest,
            &json!({"type": "page_view", "anonymous_id": "a1", "event_id": "e1",
                    "properties": {"path": "/pricing"}}),
        )
        .await;
    let one = one.ok(202);
    assert_eq!(
        (one["accepted"].as_u64(), one["duplicates"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(one["ids"].as_array().unwrap().len(), 1);

    let batch = json!({"batch": [
        {"type": "page_view", "anonymous_id": "a1", "event_id": "e1"},
        {"type": "custom", "name": "Video Played", "anonymous_id": "a1", "event_id": "e2"},
        {"type": "custom", "name": "Video Played", "anonymous_id": "a1", "event_id": "e2"},
        {"type": "page_view", "anonymous_id": "a2"},
    ]});
    let reply = app.post("/events", &shop.ingest, &batch).await;
    let reply = reply.ok(202);
    assert_eq!(
        (reply["accepted"].as_u64(), reply["duplicates"].as_u64()),
        (Some(2), Some(2)),
        "e1 was sent before and e2 twice in the batch: {reply}"
    );
    assert_eq!(reply["ids"].as_array().unwrap().len(), 2);
    assert_eq!(app.event_count(program).await, 3);

    // The whole batch again stores nothing but the event without an id.
    let again = app.post("/events", &shop.ingest, &batch).await;
    assert_eq!(again.ok(202)["accepted"], 1);
    assert_eq!(app.event_count(program).await, 4);

    // An admin key names the program; an ingest key may not write to another one.
    let admin = json!({"type": "page_view", "anonymous_id": "a3", "program_id": program});
    app.post("/events", &app.admin_key, &admin).await.ok(202);
    let other = app.create_program("Other").await;
    let elsewhere = json!({"type": "page_view", "anonymous_id": "a3", "program_id": other["id"]});
    app.post("/events", &shop.ingest, &elsewhere)
        .await
        .assert_error(422, Some("program_id"), "another program's events");
    let mixed = json!({"batch": [
        {"type": "page_view", "anonymous_id": "a4"},
        {"type": "page_view", "anonymous_id": "a4", "program_id": other["id"]},
    ]});
    app.post("/events", &shop.ingest, &mixed)
        .await
        .assert_error(
            422,
            Some("batch[1].program_id"),
            "a batch item of another program",
        );
    let mixed = json!({"batch": [
        {"type": "page_view", "anonymous_id": "a4", "program_id": program},
        {"type": "page_view", "anonymous_id": "a4", "program_id": other["id"]},
    ]});
    app.post("/events", &app.admin_key, &mixed)
        .await
        .assert_error(
            422,
            Some("batch[1].program_id"),
            "an admin batch over two programs",
        );
    assert_eq!(app.event_count(program).await, 5);
    assert_eq!(app.event_count(str_of(&other, "id")).await, 0);
}

async fn a_via_naming_a_partner_slug_is_a_touch_and_an_unknown_via_is_refused(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let visit = json!({"type": "page_view", "anonymous_id": "a1", "via": "bob"});
    app.post("/events", &shop.ingest, &visit).await.ok(202);
    // A link code works as a `via` too.
    let visit = json!({"type": "page_view", "anonymous_id": "a2", "via": shop.alice_code});
    app.post("/events", &shop.ingest, &visit).await.ok(202);

    let pid = ProgramId::parse(program).unwrap();
    for (anon, partner) in [("a1", &shop.seed.bob.id), ("a2", &shop.seed.alice.id)] {
        let person = app
            .store
            .person_of(&pid, &format!("anonymous_id:{anon}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{anon}: a via visit makes a person"));
        let touches = app.store.touches_of(&person).await.unwrap();
        assert_eq!(touches.len(), 1, "{anon}");
        assert_eq!(&touches[0].partner_id.to_string(), partner, "{anon}");
    }
    let sale = json!({"value": 300, "currency": "EUR", "anonymous_id": "a1"});
    let sale = app.post("/conversions", &shop.ingest, &sale).await;
    assert_eq!(
        credited(sale.ok(201)),
        vec![(shop.seed.bob.id.clone(), 300)]
    );

    let before = app.event_count(program).await;
    let unknown = json!({"type": "page_view", "anonymous_id": "a1", "via": "mallory"});
    app.post("/events", &shop.ingest, &unknown)
        .await
        .assert_error(422, Some("via"), "a via naming nobody");
    assert_eq!(app.event_count(program).await, before);
}

async fn lead_events_count_once_per_partner_and_person(app: TestApp) {
    let shop = shop(&app).await;
    let pid = ProgramId::parse(&shop.seed.program_id).unwrap();
    let alice = PartnerId::parse(&shop.seed.alice.id).unwrap();
    let bob = PartnerId::parse(&shop.seed.bob.id).unwrap();
    let tid = app.click_link(&shop.alice_code).await;
    let batch = json!({"batch": [
        {"type": "page_view", "anonymous_id": "a1", "click_id": tid},
        {"type": "lead", "anonymous_id": "a1", "email": "jo@example.com"},
        {"type": "demo_request", "anonymous_id": "a1"},
    ]});
    app.post("/events", &shop.ingest, &batch).await.ok(202);
    for _ in 0..2 {
        let again = json!({"type": "signup", "email": "jo@example.com"});
        app.post("/events", &shop.ingest, &again).await.ok(202);
    }
    assert_eq!(app.store.count_leads(&pid, &alice).await.unwrap(), 1);

    // Another person brought by Alice is another lead; Bob has none.
    let other = json!({"batch": [
        {"type": "page_view", "anonymous_id": "a2", "via": "alice"},
        {"type": "lead", "anonymous_id": "a2"},
    ]});
    app.post("/events", &shop.ingest, &other).await.ok(202);
    assert_eq!(app.store.count_leads(&pid, &alice).await.unwrap(), 2);
    assert_eq!(app.store.count_leads(&pid, &bob).await.unwrap(), 0);
}

async fn a_click_id_of_another_program_credits_nobody(app: TestApp) {
    let shop = shop(&app).await;
    let other = app.create_program("Other").await;
    let kim = app.create_partner(str_of(&other, "id"), "kim").await;
    let kims = app.create_link(str_of(&kim, "id"), json!({})).await;
    let foreign = app.click_link(str_of(&kims, "code")).await;

    let sale = json!({"external_id": "o-1", "value": 700, "currency": "EUR", "click_id": foreign});
    let sale = app.post("/conversions", &shop.ingest, &sale).await;
    let sale = sale.ok(201);
    assert_eq!(
        credited(sale),
        vec![],
        "Kim is not a partner of this program"
    );
    assert!(!sale.to_string().contains(str_of(&kim, "id")));
}

// --- postback ------------------------------------------------------------------

async fn a_postback_records_a_conversion_credited_to_the_clicks_partner(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let token = app.postback_token(program).await;
    assert_eq!(
        app.postback_token(program).await,
        token,
        "the token stays the same"
    );
    let tid = app.click_link(&shop.alice_code).await;
    let query = |token: &str, order: &str, status: &str| {
        format!(
            "/postback?program_id={program}&token={token}&click_id={tid}&amount=49.99\
             &currency=EUR&order_id={order}&status={status}"
        )
    };

    let first = app.visit(&query(&token, "o-1", "pending")).await;
    let conversion = first.ok(200).clone();
    assert_eq!(conversion["value"], 4999);
    assert_eq!(conversion["status"], "pending");
    assert_eq!(conversion["external_id"], "o-1");
    assert_eq!(
        credited(&conversion),
        vec![(shop.seed.alice.id.clone(), 4999)]
    );

    let again = app.visit(&query(&token, "o-1", "pending")).await;
    assert_eq!(
        again.ok(200)["id"],
        conversion["id"],
        "same order, same conversion"
    );
    assert_eq!(app.conversion_count(program).await, 1);

    for (case, path) in [
        ("a wrong token", query("not-the-token", "o-2", "approved")),
        (
            "no token",
            format!("/postback?program_id={program}&amount=1&order_id=o-2"),
        ),
        (
            "an unknown program",
            format!("/postback?program_id=prg_nosuchprogram&token={token}&amount=1&order_id=o-2"),
        ),
    ] {
        let reply = app.visit(&path).await;
        reply.assert_error(401, None, case);
    }
    assert_eq!(
        app.conversion_count(program).await,
        1,
        "nothing written by refused postbacks"
    );

    // POST with a form body, and a rejected status.
    let form = format!(
        "program_id={program}&token={token}&click_id={tid}&amount=10&currency=EUR&order_id=o-3&status=rejected"
    );
    let posted = app
        .client
        .post(app.url("/postback"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 200);
    let posted: Value = posted.json().await.unwrap();
    assert_eq!(
        (posted["value"].as_i64(), posted["status"].as_str()),
        (Some(1000), Some("rejected"))
    );
    assert_eq!(app.conversion_count(program).await, 2);

    // Malformed amounts and statuses name their parameter.
    for (case, path, field) in [
        (
            "three decimals",
            query(&token, "o-4", "approved").replace("49.99", "49.999"),
            "amount",
        ),
        ("an unknown status", query(&token, "o-4", "paid"), "status"),
        (
            "a negative amount",
            query(&token, "o-4", "approved").replace("49.99", "-5"),
            "amount",
        ),
        (
            "another currency",
            query(&token, "o-4", "approved").replace("EUR", "USD"),
            "currency",
        ),
    ] {
        app.visit(&path).await.assert_error(422, Some(field), case);
    }
    assert_eq!(app.conversion_count(program).await, 2);
}

// --- validation ------------------------------------------------------------------

async fn malformed_events_are_4xx_naming_the_field_and_store_nothing(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let ok = json!({"type": "page_view", "anonymous_id": "a1"});
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        (
            "a bad type in a batch",
            json!({"batch": [ok, {"type": "purchase", "anonymous_id": "a1"}]}),
            422,
            Some("batch[1].type"),
        ),
        (
            "a bad email",
            json!({"type": "signup", "email": "not-an-email"}),
            422,
            Some("email"),
        ),
        (
            "a bad email in a batch",
            json!({"batch": [ok, ok, {"type": "signup", "email": "nope"}]}),
            422,
            Some("batch[2].email"),
        ),
        (
            "an unknown field",
            json!({"type": "page_view", "anonymous_id": "a1", "colour": "red"}),
            400,
            Some("colour"),
        ),
        (
            "an unknown field in a batch",
            json!({"batch": [ok, {"type": "page_view", "colour": "red"}]}),
            400,
            Some("batch[1].colour"),
        ),
        (
            "a type that is not a string",
            json!({"batch": [ok, {"type": 5, "anonymous_id": "a1"}]}),
            400,
            Some("batch[1].type"),
        ),
        (
            "a missing type",
            json!({"anonymous_id": "a1"}),
            400,
            Some("type"),
        ),
        (
            "a bad click id",
            json!({"type": "page_view", "anonymous_id": "a1", "click_id": "abc"}),
            422,
            Some("click_id"),
        ),
        (
            "a time in the future",
            json!({"type": "page_view", "anonymous_id": "a1", "occurred_at": "2999-01-01T00:00:00Z"}),
            422,
            Some("occurred_at"),
        ),
        (
            "a batch that is not an array",
            json!({"batch": {"type": "page_view"}}),
            400,
            Some("batch"),
        ),
        ("an empty batch", json!({"batch": []}), 400, Some("batch")),
    ];
    for (case, body, status, field) in cases {
        app.post("/events", &shop.ingest, &body)
            .await
            .assert_error(status, field, case);
    }
    app.post_raw("/events", &shop.ingest, "{not json")
        .await
        .assert_error(400, None, "malformed JSON");
    assert_eq!(
        app.event_count(program).await,
        0,
        "no event of a refused request was stored"
    );
}

async fn malformed_conversions_are_4xx_naming_the_field_and_store_nothing(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let with = |extra: Value| {
        let mut body = json!({"external_id": "o-1", "value": 1000, "currency": "EUR",
                              "email": "jo@example.com"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "another currency",
            with(json!({"currency": "USD"})),
            422,
            "currency",
        ),
        (
            "no such currency",
            with(json!({"currency": "XXY"})),
            422,
            "currency",
        ),
        ("a negative value", with(json!({"value": -1})), 422, "value"),
        (
            "a fractional value",
            with(json!({"value": 10.5})),
            400,
            "value",
        ),
        ("a bad email", with(json!({"email": "jo@"})), 422, "email"),
        (
            "a bad click id",
            with(json!({"click_id": "12345"})),
            422,
            "click_id",
        ),
        (
            "an unknown field",
            with(json!({"amount": 5})),
            400,
            "amount",
        ),
        ("a missing value", json!({"currency": "EUR"}), 400, "value"),
        (
            "an unknown status",
            with(json!({"status": "paid"})),
            422,
            "status",
        ),
        (
            "a bad product",
            with(
                json!({"products": [{"sku": "A", "amount": 5}, {"sku": "B", "quantity": 0, "amount": 5}]}),
            ),
            422,
            "products[1].quantity",
        ),
        (
            "a bad coupon",
            with(json!({"coupon": "no spaces"})),
            422,
            "coupon",
        ),
        (
            "a bad time",
            with(json!({"occurred_at": "yesterday"})),
            422,
            "occurred_at",
        ),
    ];
    for (case, body, status, field) in cases {
        app.post("/conversions", &shop.ingest, &body)
            .await
            .assert_error(status, Some(field), case);
    }
    assert_eq!(
        app.conversion_count(program).await,
        0,
        "nothing was written"
    );
    let pid = ProgramId::parse(program).unwrap();
    let email_key = format!(
        "email_hash:{}",
        tribute_core::partner::email_hash("jo@example.com")
    );
    assert_eq!(
        app.store.person_of(&pid, &email_key).await.unwrap(),
        None,
        "a refused conversion leaves no identity behind"
    );
    // The same external id is still free.
    app.post("/conversions", &shop.ingest, &with(json!({})))
        .await
        .ok(201);
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
