//! Black-box tests of the Segment-compatible endpoints (`/v1/track`,
//! `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/alias`, `/v1/group`,
//! `/v1/batch`): the real Segment Python SDK pointed at a running Tribute,
//! and hand-built requests for write keys, size limits, malformed payloads,
//! lead and conversion mapping, stitching and idempotency. Each scenario
//! runs on SQLite and on PostgreSQL.

#[macro_use]
mod common;
#[path = "segment/helpers.rs"]
mod helpers;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use tribute_core::apikey::Scope;
use tribute_core::partner::Email;

use common::{insert_key, str_of, TestApp};
use helpers::{
    assert_success, click, python_sdk_available, run_send_py, segment, segment_raw, Setup,
};

on_both_backends!(
    python_sdk_identify_and_order_completed_make_one_conversion_credited_to_the_clicked_partner,
    every_endpoint_answers_success_true_and_stores_the_message,
    write_key_must_be_an_ingest_key_sent_as_basic_username_or_in_the_body,
    messages_over_32_kb_are_refused_with_400_and_bodies_over_the_limit_with_413,
    malformed_messages_are_refused_naming_the_field_and_nothing_is_written,
    signed_up_counts_one_lead_per_partner_and_person,
    lead_and_conversion_names_follow_the_program_mapping,
    alias_stitches_previous_id_with_user_id,
    same_batch_twice_writes_no_duplicate_event_or_conversion,
    order_completed_takes_total_products_and_coupon,
    client_clock_skew_is_corrected_with_sent_at,
);

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The slugs a conversion is credited to.
fn credited(conversion: &Value) -> Vec<&str> {
    conversion["partners"]
        .as_array()
        .expect("partners")
        .iter()
        .map(|p| str_of(p, "slug"))
        .collect()
}

// --- the real SDK ----------------------------------------------------------

async fn python_sdk_identify_and_order_completed_make_one_conversion_credited_to_the_clicked_partner(
    app: TestApp,
) {
    if !python_sdk_available("python_sdk_identify_and_order_completed") {
        return;
    }
    let s = Setup::new(&app).await;
    let tid = click(&app, &s.alice).await;
    // A second partner touched someone else: it must not get the credit.
    click(&app, &s.bob).await;
    let email = "Ada.Lovelace@Example.com";
    let args: Vec<String> = [
        "--host",
        &app.address,
        "--write-key",
        &s.write_key,
        "--tid",
        &tid,
        "--run",
        "py1",
        "--timestamp",
        &now_iso(),
        "--email",
        email,
        "--order-id",
        "order-1001",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();

    run_send_py(args.clone()).await;

    let conversions = s.conversions(&app).await;
    assert_eq!(conversions.len(), 1, "one conversion: {conversions:?}");
    let c = &conversions[0];
    assert_eq!(c["external_id"], "segment:order-1001");
    assert_eq!(c["value"], 4999, "49.99 EUR in cents: {c}");
    assert_eq!(c["currency"], "EUR");
    assert_eq!(
        c["products"],
        json!([{"sku": "PRO-1", "quantity": 1, "amount": 4999}])
    );
    assert_eq!(
        credited(c),
        vec!["alice"],
        "credited to the clicked partner: {c}"
    );
    assert_eq!(c["partners"][0]["amount"], 4999);
    let events = s.events(&app).await;
    // page, identify and the track itself.
    assert_eq!(events, 3, "three events stored");

    // The e-mail address is kept only as its hash, linked to the person.
    let person = app
        .store
        .person_of(&s.program_id, "user_id:py1-user")
        .await
        .expect("looking up the person")
        .expect("the user is known");
    let keys = app
        .store
        .identity_keys_of(&person)
        .await
        .expect("identity keys");
    let hash = Email::parse(email).expect("an email").hash();
    assert!(
        keys.contains(&format!("email_hash:{hash}")),
        "email hash linked: {keys:?}"
    );
    assert!(
        keys.contains(&format!("click_id:{tid}")),
        "click linked: {keys:?}"
    );
    assert!(
        keys.iter().all(|k| !k.to_lowercase().contains("lovelace")),
        "no e-mail in clear: {keys:?}"
    );

    // The same batch again (same messageIds, as a retrying SDK sends it).
    run_send_py(args).await;
    let again = s.conversions(&app).await;
    assert_eq!(again.len(), 1, "no duplicate conversion: {again:?}");
    assert_eq!(again[0]["id"], c["id"]);
    assert_eq!(s.events(&app).await, events, "no duplicate event");
}

// --- protocol --------------------------------------------------------------

async fn every_endpoint_answers_success_true_and_stores_the_message(app: TestApp) {
    let s = Setup::new(&app).await;
    let cases: [(&str, Value, i64); 7] = [
        (
            "/v1/track",
            json!({"userId": "u1", "event": "Button Clicked", "properties": {"color": "red"}, "messageId": "m-track"}),
            1,
        ),
        (
            "/v1/identify",
            json!({"userId": "u1", "anonymousId": "a1", "traits": {"email": "u1@example.com"}, "messageId": "m-identify"}),
            1,
        ),
        (
            "/v1/page",
            json!({"anonymousId": "a1", "name": "Home", "properties": {"url": "https://acme.test/"}, "messageId": "m-page"}),
            1,
        ),
        (
            "/v1/screen",
            json!({"userId": "u1", "name": "Settings", "messageId": "m-screen"}),
            1,
        ),
        // Two links: previousId as an anonymous id and as an earlier user id.
        (
            "/v1/alias",
            json!({"previousId": "a1", "userId": "u1", "messageId": "m-alias"}),
            2,
        ),
        (
            "/v1/group",
            json!({"userId": "u1", "groupId": "acme-inc", "traits": {"plan": "team"}, "messageId": "m-group"}),
            1,
        ),
        (
            "/v1/batch",
            json!({"batch": [
                {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "m-b1"},
                {"type": "page", "anonymousId": "a2", "messageId": "m-b2"}
            ], "sentAt": now_iso()}),
            2,
        ),
    ];
    let mut expected = 0;
    for (path, body, stored) in cases {
        let reply = segment(&app, path, &s.write_key, &body).await;
        assert_success(&reply, path);
        expected += stored;
        assert_eq!(s.events(&app).await, expected, "{path}: events stored");
    }
    assert!(
        s.conversions(&app).await.is_empty(),
        "no conversion from these"
    );
}

async fn write_key_must_be_an_ingest_key_sent_as_basic_username_or_in_the_body(app: TestApp) {
    let s = Setup::new(&app).await;
    let body = json!({"userId": "u1", "event": "Viewed"});

    let none = segment_raw(&app, "/v1/track", None, body.to_string()).await;
    none.assert_error(401, None, "no key");
    assert_eq!(none.body["error"]["code"], "unauthorized");

    let wrong = segment(&app, "/v1/track", "trb_ingest_notakey", &body).await;
    wrong.assert_error(401, None, "unknown key");

    let garbage = app
        .client
        .post(app.url("/v1/track"))
        .header("authorization", "Basic %%%not-base64")
        .json(&body)
        .send()
        .await
        .expect("sending");
    helpers::reply_of(garbage)
        .await
        .assert_error(401, None, "undecodable Basic credentials");

    // Keys that are not write keys: an admin key must not be pasted into
    // front-end code, and a partner key cannot send events.
    segment(&app, "/v1/track", &app.admin_key, &body)
        .await
        .assert_error(403, None, "admin key");
    segment(&app, "/v1/track", &s.alice.key, &body)
        .await
        .assert_error(403, None, "partner key");
    let unbound = insert_key(&app.store, Scope::Ingest, None, None).await;
    segment(&app, "/v1/track", &unbound, &body)
        .await
        .assert_error(403, None, "ingest key bound to no program");
    assert_eq!(s.events(&app).await, 0, "refused requests wrote nothing");

    assert_success(
        &segment(&app, "/v1/track", &s.write_key, &body).await,
        "ingest key as Basic username",
    );
    // Some SDKs put the write key in the body: accepted without a header.
    let in_body = json!({"batch": [{"type": "track", "userId": "u1", "event": "Viewed"}], "writeKey": s.write_key});
    assert_success(
        &segment_raw(&app, "/v1/batch", None, in_body.to_string()).await,
        "writeKey in the body",
    );
    assert_eq!(s.events(&app).await, 2);
}

async fn messages_over_32_kb_are_refused_with_400_and_bodies_over_the_limit_with_413(app: TestApp) {
    let s = Setup::new(&app).await;
    let blob = |bytes: usize| "x".repeat(bytes);
    let message = |i: usize, bytes: usize| {
        json!({"type": "track", "userId": format!("u{i}"), "event": "Viewed",
               "messageId": format!("m{i}"), "properties": {"blob": blob(bytes)}})
    };

    let single = segment(&app, "/v1/track", &s.write_key, &message(0, 33 * 1024)).await;
    single.assert_error(413, None, "one request over 32 KB");
    assert!(
        single.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("32 KB"),
        "{}",
        single.text
    );

    let in_batch = json!({"batch": [message(1, 100), message(2, 33 * 1024)]});
    let reply = segment(&app, "/v1/batch", &s.write_key, &in_batch).await;
    reply.assert_error(400, Some("batch[1]"), "a batch message over 32 KB");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("32 KB"),
        "{}",
        reply.text
    );

    // 20 messages of 30 KB: each within its limit, 600 KB together.
    let big: Vec<Value> = (0..20).map(|i| message(i, 30 * 1024)).collect();
    let reply = segment(&app, "/v1/batch", &s.write_key, &json!({"batch": big})).await;
    reply.assert_error(413, None, "a batch over 500 KB");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("500 KB"),
        "{}",
        reply.text
    );
    assert_eq!(s.events(&app).await, 0, "oversized requests wrote nothing");

    // Just under the limits is accepted.
    let near: Vec<Value> = (0..15).map(|i| message(i, 31 * 1024)).collect();
    assert_success(
        &segment(&app, "/v1/batch", &s.write_key, &json!({"batch": near})).await,
        "15 messages of 31 KB",
    );
    assert_eq!(s.events(&app).await, 15);
}

async fn malformed_messages_are_refused_naming_the_field_and_nothing_is_written(app: TestApp) {
    let s = Setup::new(&app).await;
    // Every batch starts with a good order, so "nothing written" means
    // the whole request was refused, not just the bad message.
    let order = json!({"type": "track", "userId": "u1", "event": "Order Completed",
        "messageId": "good-order", "properties": {"order_id": "o-1", "revenue": 10, "currency": "EUR"}});
    let in_a_year = (Utc::now() + Duration::days(365)).to_rfc3339();
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "unknown type",
            json!({"type": "bogus", "userId": "u1"}),
            Some("batch[1].type"),
        ),
        (
            "missing type",
            json!({"userId": "u1", "event": "X"}),
            Some("batch[1].type"),
        ),
        (
            "track without event",
            json!({"type": "track", "userId": "u1"}),
            Some("batch[1].event"),
        ),
        (
            "no identity",
            json!({"type": "track", "event": "X"}),
            Some("batch[1].userId"),
        ),
        (
            "userId an object",
            json!({"type": "track", "event": "X", "userId": {"id": 1}}),
            Some("batch[1].userId"),
        ),
        (
            "properties an array",
            json!({"type": "track", "event": "X", "userId": "u1", "properties": [1]}),
            Some("batch[1].properties"),
        ),
        (
            "bad timestamp",
            json!({"type": "page", "userId": "u1", "timestamp": "yesterday"}),
            Some("batch[1].timestamp"),
        ),
        (
            "timestamp in a year",
            json!({"type": "page", "userId": "u1", "timestamp": in_a_year}),
            Some("batch[1].timestamp"),
        ),
        (
            "bad revenue",
            json!({"type": "track", "userId": "u1", "event": "Order Completed",
            "properties": {"order_id": "o-2", "revenue": "lots"}}),
            Some("batch[1].properties.revenue"),
        ),
        (
            "revenue finer than cents",
            json!({"type": "track", "userId": "u1", "event": "Order Completed",
            "properties": {"order_id": "o-2", "revenue": 1.999}}),
            Some("batch[1].properties.revenue"),
        ),
        (
            "other currency",
            json!({"type": "track", "userId": "u1", "event": "Order Completed",
            "properties": {"order_id": "o-2", "revenue": 5, "currency": "USD"}}),
            Some("batch[1].properties.currency"),
        ),
        (
            "negative revenue",
            json!({"type": "track", "userId": "u1", "event": "Order Completed",
            "properties": {"order_id": "o-2", "revenue": -5}}),
            Some("batch[1].properties.revenue"),
        ),
        (
            "product quantity 0",
            json!({"type": "track", "userId": "u1", "event": "Order Completed",
            "properties": {"order_id": "o-2", "products": [{"sku": "A", "quantity": 0, "price": 1}]}}),
            Some("batch[1].properties.products[0].quantity"),
        ),
        (
            "bad coupon",
            json!({"type": "track", "userId": "u1", "event": "Order Completed",
            "properties": {"order_id": "o-2", "revenue": 5, "coupon": "no spaces!"}}),
            Some("batch[1].properties.coupon"),
        ),
        (
            "bad click id",
            json!({"type": "track", "userId": "u1", "event": "X", "properties": {"tid": "nope"}}),
            Some("batch[1].properties.tid"),
        ),
        (
            "bad email",
            json!({"type": "identify", "userId": "u1", "traits": {"email": "not-an-address"}}),
            Some("batch[1].traits.email"),
        ),
        (
            "alias without previousId",
            json!({"type": "alias", "userId": "u1"}),
            Some("batch[1].previousId"),
        ),
        ("message not an object", json!("track"), Some("batch[1]")),
    ];
    for (case, bad, field) in cases {
        let body = json!({"batch": [order.clone(), bad]});
        segment(&app, "/v1/batch", &s.write_key, &body)
            .await
            .assert_error(400, field, case);
    }
    let whole: Vec<(&str, &str, String, Option<&str>)> = vec![
        ("not JSON", "/v1/batch", "{\"batch\": [".into(), None),
        ("empty body", "/v1/track", String::new(), None),
        (
            "batch not an array",
            "/v1/batch",
            json!({"batch": {"type": "track"}}).to_string(),
            Some("batch"),
        ),
        (
            "bad batch sentAt",
            "/v1/batch",
            json!({"batch": [order.clone()], "sentAt": "soon"}).to_string(),
            Some("sentAt"),
        ),
        (
            "type against the path",
            "/v1/track",
            json!({"type": "identify", "userId": "u1"}).to_string(),
            Some("type"),
        ),
        (
            "single track without event",
            "/v1/track",
            json!({"userId": "u1"}).to_string(),
            Some("event"),
        ),
        (
            "single page with a bad context url",
            "/v1/page",
            json!({"userId": "u1", "context": {"page": {"url": 3}}}).to_string(),
            Some("context.page.url"),
        ),
    ];
    for (case, path, body, field) in whole {
        segment_raw(&app, path, Some(&s.write_key), body)
            .await
            .assert_error(400, field, case);
    }
    assert_eq!(s.events(&app).await, 0, "no event written");
    assert!(
        s.conversions(&app).await.is_empty(),
        "no conversion written"
    );
}

// --- mapping -----------------------------------------------------------------

async fn signed_up_counts_one_lead_per_partner_and_person(app: TestApp) {
    let s = Setup::new(&app).await;
    let tid = click(&app, &s.alice).await;
    let body = json!({"sentAt": now_iso(), "batch": [
        {"type": "page", "anonymousId": "v1", "messageId": "p1",
         "context": {"page": {"url": format!("https://acme.test/?tid={tid}")}}},
        {"type": "track", "anonymousId": "v1", "event": "Signed Up", "messageId": "s1"},
        // The same person signs up again, then is a lead again under their user id.
        {"type": "track", "anonymousId": "v1", "event": "Signed Up", "messageId": "s2"},
        {"type": "track", "userId": "user-1", "anonymousId": "v1", "event": "Lead Created", "messageId": "s3"},
        // Someone else lands through bob's `?via=` link and signs up.
        {"type": "page", "anonymousId": "v2", "messageId": "p2",
         "context": {"page": {"url": format!("https://acme.test/?via={}", s.bob.slug)}}},
        {"type": "track", "anonymousId": "v2", "event": "Signed Up", "messageId": "s4"},
    ]});
    assert_success(
        &segment(&app, "/v1/batch", &s.write_key, &body).await,
        "leads",
    );
    assert_eq!(
        s.leads(&app, &s.alice).await,
        1,
        "alice: one lead for one person"
    );
    assert_eq!(s.leads(&app, &s.bob).await, 1, "bob: one lead through via");

    // A third person clicks alice's link and only clicks a button: no lead.
    let tid3 = click(&app, &s.alice).await;
    let body = json!({"batch": [
        {"type": "track", "anonymousId": "v3", "event": "Button Clicked", "messageId": "b1",
         "context": {"page": {"url": format!("https://acme.test/?tid={tid3}")}}},
    ]});
    assert_success(
        &segment(&app, "/v1/batch", &s.write_key, &body).await,
        "custom",
    );
    assert_eq!(
        s.leads(&app, &s.alice).await,
        1,
        "a custom event is not a lead"
    );
    assert!(s.conversions(&app).await.is_empty());
}

async fn lead_and_conversion_names_follow_the_program_mapping(app: TestApp) {
    let s = Setup::new(&app).await;
    app.patch(
        &format!("/programs/{}/tracking", s.program_id),
        &app.admin_key,
        &json!({"lead_events": ["Trial Started"], "conversion_events": ["Subscription Paid"]}),
    )
    .await
    .ok(200);
    let tid = click(&app, &s.alice).await;
    let page_url = format!("https://acme.test/?tid={tid}");
    let body = json!({"batch": [
        {"type": "track", "anonymousId": "v1", "event": "Trial Started", "messageId": "t1",
         "context": {"page": {"url": page_url}}},
        // Default names mean nothing once the owner mapped others.
        {"type": "track", "anonymousId": "v1", "event": "Order Completed", "messageId": "t2",
         "properties": {"order_id": "ignored", "revenue": 99}},
        {"type": "track", "anonymousId": "v1", "event": "Subscription Paid", "messageId": "t3",
         "properties": {"order_id": "sub-1", "revenue": "12.50"}},
    ]});
    assert_success(
        &segment(&app, "/v1/batch", &s.write_key, &body).await,
        "mapped",
    );
    assert_eq!(s.leads(&app, &s.alice).await, 1, "Trial Started is a lead");
    let conversions = s.conversions(&app).await;
    assert_eq!(
        conversions.len(),
        1,
        "only Subscription Paid converts: {conversions:?}"
    );
    assert_eq!(conversions[0]["external_id"], "segment:sub-1");
    assert_eq!(conversions[0]["value"], 1250);
    assert_eq!(credited(&conversions[0]), vec!["alice"]);
}

async fn alias_stitches_previous_id_with_user_id(app: TestApp) {
    let s = Setup::new(&app).await;
    let tid = click(&app, &s.alice).await;
    let page = json!({"anonymousId": "anon-7", "messageId": "a-page",
        "context": {"page": {"url": format!("https://acme.test/landing?tid={tid}")}}});
    assert_success(
        &segment(&app, "/v1/page", &s.write_key, &page).await,
        "page",
    );
    let alias = json!({"previousId": "anon-7", "userId": "user-7", "messageId": "a-alias"});
    assert_success(
        &segment(&app, "/v1/alias", &s.write_key, &alias).await,
        "alias",
    );
    // The user later changes ids: previousId is then an earlier user id.
    let again = json!({"previousId": "user-7", "userId": "user-7-new", "messageId": "a-alias-2"});
    assert_success(
        &segment(&app, "/v1/alias", &s.write_key, &again).await,
        "second alias",
    );

    let person = |key: String| {
        let store = app.store.clone();
        let program = s.program_id.clone();
        async move {
            store
                .person_of(&program, &key)
                .await
                .expect("looking up")
                .unwrap_or_else(|| panic!("{key} is known"))
        }
    };
    let anon = person("anonymous_id:anon-7".into()).await;
    assert_eq!(
        person("user_id:user-7".into()).await,
        anon,
        "alias joined the ids"
    );
    assert_eq!(
        person("user_id:user-7-new".into()).await,
        anon,
        "user id change joined"
    );

    // An order under the newest user id alone is credited to the click.
    let order = json!({"userId": "user-7-new", "event": "Order Completed", "messageId": "a-order",
        "properties": {"order_id": "o-7", "revenue": 20, "currency": "EUR"}});
    assert_success(
        &segment(&app, "/v1/track", &s.write_key, &order).await,
        "order",
    );
    let conversions = s.conversions(&app).await;
    assert_eq!(conversions.len(), 1);
    assert_eq!(
        credited(&conversions[0]),
        vec!["alice"],
        "{}",
        conversions[0]
    );
}

async fn same_batch_twice_writes_no_duplicate_event_or_conversion(app: TestApp) {
    let s = Setup::new(&app).await;
    let tid = click(&app, &s.alice).await;
    let body = json!({"sentAt": now_iso(), "batch": [
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "d1",
         "traits": {"email": "buyer@example.com"},
         "context": {"page": {"url": format!("https://acme.test/?tid={tid}")}}},
        {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "d2"},
        // No order id: the messageId makes the conversion idempotent.
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "d3",
         "properties": {"revenue": 15}},
    ]});
    for round in ["first", "second"] {
        assert_success(
            &segment(&app, "/v1/batch", &s.write_key, &body).await,
            round,
        );
    }
    assert_eq!(s.events(&app).await, 3, "three events, once");
    assert_eq!(s.leads(&app, &s.alice).await, 1);
    let conversions = s.conversions(&app).await;
    assert_eq!(conversions.len(), 1, "one conversion: {conversions:?}");
    assert_eq!(conversions[0]["external_id"], "segment:d3");
    assert_eq!(conversions[0]["value"], 1500);
    assert_eq!(credited(&conversions[0]), vec!["alice"]);
}

async fn order_completed_takes_total_products_and_coupon(app: TestApp) {
    let s = Setup::new(&app).await;
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": s.bob.id, "code": "BOB10"}),
    )
    .await
    .ok(201);
    let order = json!({"anonymousId": "shopper", "event": "Order Completed", "messageId": "c1",
    "context": {"traits": {"email": "shopper@example.com"}},
    "properties": {"total": "30.00", "coupon": "bob10", "products": [
        {"product_id": 7, "price": 10, "quantity": 2},
        {"sku": "GIFT", "price": "10.00"}
    ]}});
    assert_success(
        &segment(&app, "/v1/track", &s.write_key, &order).await,
        "order",
    );
    let conversions = s.conversions(&app).await;
    assert_eq!(conversions.len(), 1);
    let c = &conversions[0];
    assert_eq!(c["value"], 3000, "total when there is no revenue");
    assert_eq!(c["currency"], "EUR", "the program's currency by default");
    assert_eq!(c["external_id"], "segment:c1", "the messageId, namespaced");
    assert_eq!(c["coupon"], "BOB10");
    assert_eq!(
        c["products"],
        json!([{"sku": "7", "quantity": 2, "amount": 2000}, {"sku": "GIFT", "quantity": 1, "amount": 1000}])
    );
    assert_eq!(credited(c), vec!["bob"], "the coupon is bob's touch: {c}");
}

async fn client_clock_skew_is_corrected_with_sent_at(app: TestApp) {
    let s = Setup::new(&app).await;
    // A client whose clock is an hour fast: its times are an hour ahead,
    // sentAt included, so the message happened 2 s before it was received.
    let fast = Utc::now() + Duration::hours(1);
    let body = json!({"sentAt": fast.to_rfc3339(), "batch": [
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "k1",
         "timestamp": (fast - Duration::seconds(2)).to_rfc3339(),
         "properties": {"order_id": "skew-1", "revenue": 1}},
    ]});
    let before = Utc::now();
    assert_success(
        &segment(&app, "/v1/batch", &s.write_key, &body).await,
        "skewed",
    );
    let after = Utc::now();
    let conversions = s.conversions(&app).await;
    let at: DateTime<Utc> = str_of(&conversions[0], "occurred_at")
        .parse()
        .expect("a time");
    assert!(
        at >= before - Duration::seconds(3) && at <= after,
        "occurred_at {at} corrected to about 2 s before receipt ({before}..{after})"
    );

    // Without sentAt there is nothing to correct by: an hour ahead is refused.
    let body = json!({"batch": [
        {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "k2",
         "timestamp": fast.to_rfc3339()},
    ]});
    segment(&app, "/v1/batch", &s.write_key, &body)
        .await
        .assert_error(400, Some("batch[0].timestamp"), "an hour ahead, no sentAt");

    // A sentAt far ahead cannot push the corrected time before the year 2000.
    let body = json!({"sentAt": "2090-01-01T00:00:00Z", "batch": [
        {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "k3",
         "timestamp": "2001-01-01T00:00:00Z"},
    ]});
    segment(&app, "/v1/batch", &s.write_key, &body)
        .await
        .assert_error(400, Some("batch[0].sentAt"), "corrected out of bounds");
}
