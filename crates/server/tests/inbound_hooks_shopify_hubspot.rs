//! Black-box tests of Shopify and HubSpot deliveries to
//! `POST /hooks/{shopify,hubspot}/{id}`, signed as each provider signs
//! them: Shopify's base64 HMAC of the body with its webhook id and
//! triggered-at headers; HubSpot's v3 signature over method, the exact URL
//! called, body and millisecond timestamp. A paid order carrying a
//! partner's coupon or click id, and a won deal whose contact e-mail is
//! linked to a click, become conversions credited to that partner; a
//! Shopify refund refunds its order; a tampered, stale, replayed or
//! misaddressed delivery writes nothing. Each scenario runs on SQLite and
//! on PostgreSQL.

#[macro_use]
mod common;
#[path = "hooks/mod.rs"]
mod hooks;

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use common::{str_of, TestApp};
use hooks::{
    assert_answer, click, conversion, credited, deliver, deliveries, hubspot_headers, integration,
    last_delivery, refunds, shopify_headers, ten_percent, Hook, UNKNOWN_ID,
};

on_both_backends!(
    paid_shopify_orders_are_credited_by_coupon_or_click_id_and_refunds_refund_them,
    tampered_stale_replayed_or_misaddressed_shopify_deliveries_write_nothing,
    a_won_hubspot_deal_is_credited_through_its_contacts_email_and_other_stages_are_ignored,
    tampered_stale_replayed_or_misaddressed_hubspot_deliveries_write_nothing,
);

const SHOPIFY_SECRET: &str = "shpss_tribute_test_4d1f9a2c";
const HUBSPOT_SECRET: &str = "hubspot-client-secret-7c3e";

// --- Shopify -----------------------------------------------------------------

/// A paid order of two T-shirts at 24.95, with `fields` on top.
fn order(id: u64, fields: Value) -> String {
    let mut o = json!({
        "id": id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
        "name": format!("#{}", id % 10_000),
        "email": "jon@example.com",
        "currency": "EUR",
        "total_price": "49.90",
        "subtotal_price": "49.90",
        "financial_status": "paid",
        "processed_at": (Utc::now() + Duration::seconds(1)).to_rfc3339(),
        "discount_codes": [],
        "note_attributes": [],
        "landing_site": "/",
        "source_name": "web",
        "test": false,
        "customer": {"id": 115_310_627_314_723_954_u64, "email": "jon@example.com"},
        "line_items": [{"id": 1, "sku": "TEE-1", "product_id": 632_910_392, "quantity": 2,
                        "price": "24.95"}],
    });
    for (k, v) in fields.as_object().expect("order fields") {
        o[k] = v.clone();
    }
    o.to_string()
}

/// Deliver `body` of `topic` to a Shopify hook, triggered now; the answer.
async fn shopify(app: &TestApp, hook: &Hook, topic: &str, webhook_id: &str, body: &str) -> Value {
    let headers = shopify_headers(&hook.secret, topic, webhook_id, Utc::now(), body);
    let reply = deliver(app, &hook.path(), body, &headers).await;
    assert_eq!(reply.status.as_u16(), 200, "{topic}: {}", reply.text);
    reply.body
}

async fn paid_shopify_orders_are_credited_by_coupon_or_click_id_and_refunds_refund_them(
    app: TestApp,
) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    ten_percent(&app, program).await;
    let hook = integration(&app, program, "shopify", SHOPIFY_SECRET, None).await;
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": seed.bob.id, "code": "BOB10"}),
    )
    .await
    .ok(201);

    // Bob's coupon at checkout.
    let by_coupon = order(
        820_982_911_946_154_508,
        json!({"discount_codes": [{"code": "BOB10", "amount": "5.00", "type": "fixed_amount"}]}),
    );
    let answer = shopify(&app, &hook, "orders/paid", "wh-1", &by_coupon).await;
    assert_eq!(answer["status"], "processed", "{answer}");
    let sale = conversion(&app, program, "820982911946154508").await;
    assert_eq!(credited(&sale), vec![seed.bob.id.clone()], "{sale}");
    assert_eq!(
        (sale["value"].as_i64(), sale["currency"].as_str()),
        (Some(4_990), Some("EUR"))
    );
    assert_eq!(
        sale["products"],
        json!([{"sku": "TEE-1", "quantity": 2, "amount": 4_990}])
    );

    // Alice's click id, put in the cart's attributes by the storefront.
    let tid = click(&app, &seed.alice.id).await;
    let by_click = order(
        820_982_911_946_154_509,
        json!({"note_attributes": [{"name": "gift", "value": "no"},
                                   {"name": "tribute_click_id", "value": tid}]}),
    );
    let answer = shopify(&app, &hook, "orders/paid", "wh-2", &by_click).await;
    assert_eq!(answer["status"], "processed", "{answer}");
    let other = conversion(&app, program, "820982911946154509").await;
    assert_eq!(credited(&other), vec![seed.alice.id.clone()], "{other}");

    // A partial refund of the first order, then Shopify's retry of it.
    let refund = json!({"id": 929_361_464, "order_id": 820_982_911_946_154_508_u64,
        "note": "one shirt returned", "created_at": Utc::now().to_rfc3339(),
        "transactions": [
            {"id": 1, "kind": "refund", "status": "success", "amount": "24.95", "currency": "EUR"},
            {"id": 2, "kind": "refund", "status": "failure", "amount": "24.95", "currency": "EUR"}]})
    .to_string();
    let answer = shopify(&app, &hook, "refunds/create", "wh-3", &refund).await;
    assert_eq!(answer["status"], "processed", "{answer}");
    let again = shopify(&app, &hook, "refunds/create", "wh-3", &refund).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    let listed = refunds(&app, &sale).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0]["amount"].as_i64(), listed[0]["kind"].as_str()),
        (Some(2_495), Some("refund"))
    );
    assert_eq!(
        listed[0]["reversed"], 250,
        "10 % of 24.95, rounded: {listed:?}"
    );
    assert!(str_of(&listed[0], "reason").contains("one shirt returned"));

    // A topic Tribute does not act on.
    let answer = shopify(&app, &hook, "orders/create", "wh-4", &by_coupon).await;
    assert_eq!(answer["status"], "ignored", "{answer}");
    let log = deliveries(&app, &hook).await;
    let statuses: Vec<&str> = log.iter().map(|d| str_of(d, "status")).collect();
    assert_eq!(
        statuses,
        vec!["ignored", "processed", "processed", "processed"],
        "newest first"
    );
    assert_eq!(app.conversion_count(program).await, 2);
}

async fn tampered_stale_replayed_or_misaddressed_shopify_deliveries_write_nothing(app: TestApp) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    let hook = integration(&app, program, "shopify", SHOPIFY_SECRET, None).await;
    let tid = click(&app, &seed.alice.id).await;
    let body = order(
        5_001,
        json!({"note_attributes": [{"name": "tribute_click_id", "value": tid}]}),
    );
    let headers = shopify_headers(SHOPIFY_SECRET, "orders/paid", "wh-9", Utc::now(), &body);

    let tampered = body.replace("\"49.90\"", "\"4990.00\"");
    assert_ne!(tampered, body);
    deliver(&app, &hook.path(), &tampered, &headers)
        .await
        .assert_error(401, None, "a tampered body");
    last_delivery(&app, &hook, "rejected", false).await;
    let unsigned: Vec<_> = headers
        .iter()
        .filter(|(k, _)| k != "X-Shopify-Hmac-Sha256")
        .cloned()
        .collect();
    deliver(&app, &hook.path(), &body, &unsigned)
        .await
        .assert_error(401, None, "no HMAC");

    // Genuine, but triggered three days ago: past Shopify's 48-hour retries.
    let old = Utc::now() - Duration::days(3);
    let stale = shopify_headers(SHOPIFY_SECRET, "orders/paid", "wh-9", old, &body);
    deliver(&app, &hook.path(), &body, &stale)
        .await
        .assert_error(400, Some("signature"), "a stale X-Shopify-Triggered-At");
    last_delivery(&app, &hook, "rejected", false).await;
    assert_eq!(app.conversion_count(program).await, 0, "nothing written");

    let first = deliver(&app, &hook.path(), &body, &headers).await;
    let first = assert_answer(&first, "processed", "the genuine delivery");
    // Shopify's retry: the same X-Shopify-Webhook-Id, triggered a bit later.
    let later = Utc::now() + Duration::seconds(30);
    let retry = shopify_headers(SHOPIFY_SECRET, "orders/paid", "wh-9", later, &body);
    let replay = deliver(&app, &hook.path(), &body, &retry).await;
    let replay = assert_answer(&replay, "duplicate", "the same webhook id");
    assert_eq!(replay["delivery_id"], first["delivery_id"]);
    assert_eq!(app.conversion_count(program).await, 1);
    assert_eq!(deliveries(&app, &hook).await.len(), 4);

    for (case, path) in [
        (
            "an unknown integration",
            format!("/hooks/shopify/{UNKNOWN_ID}"),
        ),
        (
            "the id under another kind",
            format!("/hooks/stripe/{}", hook.id),
        ),
        (
            "the id under hubspot",
            format!("/hooks/hubspot/{}", hook.id),
        ),
    ] {
        let headers = shopify_headers(SHOPIFY_SECRET, "orders/paid", "wh-10", Utc::now(), &body);
        deliver(&app, &path, &body, &headers)
            .await
            .assert_error(404, None, case);
    }
    assert_eq!(app.conversion_count(program).await, 1);
    assert_eq!(deliveries(&app, &hook).await.len(), 4, "nothing logged");
}

// --- HubSpot -----------------------------------------------------------------

/// A deal as a workflow's "Send a webhook" action posts it.
fn deal(id: &str, stage: &str, email: &str) -> String {
    json!([{
        "hs_object_id": id,
        "dealname": format!("Deal {id}"),
        "dealstage": stage,
        "pipeline": "default",
        "amount": "1200.50",
        "deal_currency_code": "EUR",
        "email": email,
        "closedate": (Utc::now() + Duration::seconds(1)).timestamp_millis(),
    }])
    .to_string()
}

/// The URL the test calls, which HubSpot would sign.
fn called(app: &TestApp, hook: &Hook) -> String {
    app.url(&hook.path())
}

/// Sign `body` for `url` at `millis` and deliver it to `hook`.
async fn hubspot_at(
    app: &TestApp,
    hook: &Hook,
    url: &str,
    body: &str,
    millis: i64,
) -> common::Reply {
    let headers = hubspot_headers(&hook.secret, url, body, millis);
    deliver(app, &hook.path(), body, &headers).await
}

/// A program whose partner Alice's click is linked to `email` by an
/// identify event, and a HubSpot integration.
async fn hubspot_setup(app: &TestApp, email: &str) -> (common::Seed, Hook) {
    let seed = app.seed().await;
    let tid = click(app, &seed.alice.id).await;
    let ingest = app.ingest_key(&seed.program_id).await;
    let identify = json!({"type": "identify", "anonymous_id": "crm-visitor", "click_id": tid,
                          "email": email});
    app.post("/events", &ingest, &identify).await.ok(202);
    let hook = integration(app, &seed.program_id, "hubspot", HUBSPOT_SECRET, None).await;
    (seed, hook)
}

async fn a_won_hubspot_deal_is_credited_through_its_contacts_email_and_other_stages_are_ignored(
    app: TestApp,
) {
    let (seed, hook) = hubspot_setup(&app, "Grace@Example.com").await;
    let program = &seed.program_id;
    let url = called(&app, &hook);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let open = deal("9002", "appointmentscheduled", "grace@example.com");
    let reply = hubspot_at(&app, &hook, &url, &open, Utc::now().timestamp_millis()).await;
    let answer = assert_answer(&reply, "ignored", "a deal in another stage");
    assert!(
        answer["result"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("appointmentscheduled")),
        "{answer}"
    );
    assert_eq!(app.conversion_count(program).await, 0);

    let won = deal("9001", "closedwon", "grace@example.com");
    let reply = hubspot_at(&app, &hook, &url, &won, Utc::now().timestamp_millis()).await;
    assert_answer(&reply, "processed", "a won deal");
    let sale = conversion(&app, program, "hubspot-deal:9001").await;
    assert_eq!(
        (sale["value"].as_i64(), sale["currency"].as_str()),
        (Some(120_050), Some("EUR"))
    );
    assert_eq!(credited(&sale), vec![seed.alice.id.clone()], "{sale}");

    // The workflow firing again for the same deal is the same sale.
    let reply = hubspot_at(&app, &hook, &url, &won, Utc::now().timestamp_millis() + 5).await;
    let answer = assert_answer(&reply, "processed", "the deal sent again");
    assert_eq!(answer["result"][0]["replayed"], true, "{answer}");
    assert_eq!(app.conversion_count(program).await, 1);
    last_delivery(&app, &hook, "processed", true).await;
}

async fn tampered_stale_replayed_or_misaddressed_hubspot_deliveries_write_nothing(app: TestApp) {
    let (seed, hook) = hubspot_setup(&app, "grace@example.com").await;
    let program = &seed.program_id;
    let url = called(&app, &hook);
    let body = deal("9003", "closedwon", "grace@example.com");
    let now = Utc::now().timestamp_millis();
    let headers = hubspot_headers(HUBSPOT_SECRET, &url, &body, now);

    let tampered = body.replace("1200.50", "120000.50");
    deliver(&app, &hook.path(), &tampered, &headers)
        .await
        .assert_error(401, None, "a tampered body");
    last_delivery(&app, &hook, "rejected", false).await;
    // The signature covers the URL: one signed for another address fails.
    for (case, other) in [
        ("another port", url.replace("127.0.0.1:", "127.0.0.1:1")),
        ("another path", format!("{url}/x")),
        ("https", url.replace("http://", "https://")),
    ] {
        hubspot_at(&app, &hook, &other, &body, now)
            .await
            .assert_error(401, None, case);
    }
    // Signed correctly six minutes ago: outside HubSpot's five.
    let stale = now - 6 * 60 * 1000;
    let reply = hubspot_at(&app, &hook, &url, &body, stale).await;
    reply.assert_error(400, Some("signature"), "a stale timestamp");
    last_delivery(&app, &hook, "rejected", false).await;
    assert_eq!(app.conversion_count(program).await, 0, "nothing written");

    let first = deliver(&app, &hook.path(), &body, &headers).await;
    let first = assert_answer(&first, "processed", "the genuine delivery");
    let replay = deliver(&app, &hook.path(), &body, &headers).await;
    let replay = assert_answer(&replay, "duplicate", "the same request again");
    assert_eq!(replay["delivery_id"], first["delivery_id"]);
    assert_eq!(app.conversion_count(program).await, 1);
    assert_eq!(deliveries(&app, &hook).await.len(), 6);

    for (case, kind, id) in [
        ("an unknown integration", "hubspot", UNKNOWN_ID),
        ("the id under another kind", "generic", hook.id.as_str()),
    ] {
        let path = format!("/hooks/{kind}/{id}");
        let headers = hubspot_headers(HUBSPOT_SECRET, &app.url(&path), &body, now);
        deliver(&app, &path, &body, &headers)
            .await
            .assert_error(404, None, case);
    }
    assert_eq!(app.conversion_count(program).await, 1);
    assert_eq!(deliveries(&app, &hook).await.len(), 6, "nothing logged");
}
