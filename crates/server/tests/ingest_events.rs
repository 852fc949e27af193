//! Black-box tests of event ingestion: single and batched events with
//! duplicates reported, `via` touches, leads counted once per partner and
//! person, click ids of other programs, and the postback URL.

#[macro_use]
mod common;

use serde_json::{json, Value};
use tribute_core::ids::{PartnerId, ProgramId};

use common::shop::{credited, shop};
use common::{str_of, TestApp};

on_both_backends!(
    events_are_accepted_singly_and_in_batches_and_repeats_are_reported_as_duplicates,
    a_via_naming_a_partner_slug_is_a_touch_and_an_unknown_via_is_refused,
    lead_events_count_once_per_partner_and_person,
    a_postback_records_a_conversion_credited_to_the_clicks_partner,
    a_click_id_of_another_program_credits_nobody,
);

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
