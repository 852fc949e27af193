//! Verified and unverified identifiers over HTTP: a publishable key (the
//! snippet's, a Segment write key in a page) cannot merge its browser, with
//! its partner's clicks, into a customer the owner's backend has named, so
//! that partner is not credited for the customer's purchases; and the
//! browser's own identify still lets a server conversion by e-mail credit
//! the partner who brought the visitor, on a first purchase and when the
//! customer comes back through another partner.

#[macro_use]
mod common;

use chrono::Utc;
use serde_json::{json, Value};
use tribute_core::apikey::{ApiKey, KeyKind, NewKey, Scope};
use tribute_core::ids::{ApiKeyId, ProgramId};

use common::shop::{credited, shop, Shop};
use common::snippet::collect;
use common::{Reply, TestApp};

on_both_backends!(
    a_publishable_segment_identify_with_a_customers_email_credits_not_the_attackers_partner,
    a_snippet_identify_with_a_customers_email_credits_not_the_attackers_partner,
    a_browser_identify_then_a_server_conversion_by_email_credits_the_clicking_partner,
    a_returning_customers_new_click_is_credited_after_the_owner_named_them,
);

const VICTIM: &str = "victim@example.com";

/// A publishable ingest key of the shop's program, as `tribute key create
/// --scope ingest` makes one for a web page.
async fn publishable_key(app: &TestApp, shop: &Shop) -> String {
    let new = NewKey::publishable();
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope: Scope::Ingest,
        kind: KeyKind::Publishable,
        partner_id: None,
        program_id: Some(ProgramId::parse(&shop.seed.program_id).expect("a program id")),
        name: Some("web page".into()),
        created_at: Utc::now(),
        revoked_at: None,
    };
    app.store
        .insert_api_key(&key, &new.hash)
        .await
        .expect("inserting a publishable key");
    new.token
}

/// A Segment call (`/v1/page`, `/v1/identify`) with `write_key` as Basic user.
async fn segment(app: &TestApp, path: &str, write_key: &str, body: Value) -> Reply {
    let response = app
        .client
        .post(app.url(path))
        .basic_auth(write_key, Some(""))
        .json(&body)
        .send()
        .await
        .expect("posting to Segment's API");
    Reply::read(response).await
}

/// The browser `anonymous_id` lands through click `tid` and is identified
/// with `email`, both through Segment with `write_key`.
async fn segment_browser(
    app: &TestApp,
    write_key: &str,
    anonymous_id: &str,
    tid: &str,
    email: &str,
) {
    let page = json!({"anonymousId": anonymous_id,
        "context": {"page": {"url": format!("https://acme.test/landing?tid={tid}")}}});
    segment(app, "/v1/page", write_key, page).await.ok(200);
    let identify = json!({"anonymousId": anonymous_id, "traits": {"email": email}});
    segment(app, "/v1/identify", write_key, identify)
        .await
        .ok(200);
}

/// The owner's backend reports order `order` of `email` with its secret key.
async fn server_sale(app: &TestApp, shop: &Shop, order: &str, email: &str) -> Value {
    let sale = json!({"external_id": order, "value": 10_000, "currency": "EUR", "email": email});
    app.post("/conversions", &shop.ingest, &sale)
        .await
        .ok(201)
        .clone()
}

fn partners_of(conversion: &Value) -> Vec<String> {
    credited(conversion).into_iter().map(|(p, _)| p).collect()
}

async fn a_publishable_segment_identify_with_a_customers_email_credits_not_the_attackers_partner(
    app: TestApp,
) {
    let shop = shop(&app).await;
    let public = publishable_key(&app, &shop).await;
    // The victim buys: the owner's backend names them by e-mail (verified).
    let first = server_sale(&app, &shop, "o-1", VICTIM).await;
    assert!(partners_of(&first).is_empty(), "{first}");
    // The attacker clicks bob's link, then claims the victim's e-mail from
    // their own browser with the key read out of the shop's page.
    let tid = app.click_link(&shop.bob_code).await;
    segment_browser(&app, &public, "attacker-browser", &tid, VICTIM).await;
    // The victim buys again: bob brought nobody.
    let second = server_sale(&app, &shop, "o-2", VICTIM).await;
    assert!(
        partners_of(&second).is_empty(),
        "bob is credited for the victim's purchase: {second}"
    );
}

async fn a_snippet_identify_with_a_customers_email_credits_not_the_attackers_partner(app: TestApp) {
    let shop = shop(&app).await;
    let public = publishable_key(&app, &shop).await;
    server_sale(&app, &shop, "o-1", VICTIM).await;
    let tid = app.click_link(&shop.bob_code).await;
    let body = json!({"key": public, "events": [
        {"type": "page_view", "event_id": "e-1", "anonymous_id": "attacker-browser", "click_id": tid},
        {"type": "identify", "event_id": "e-2", "anonymous_id": "attacker-browser", "email": VICTIM},
    ]});
    let reply = collect(&app, Some("https://acme.test"), &body.to_string()).await;
    assert_eq!(reply.ok(200)["accepted"], 2, "{}", reply.text);
    let second = server_sale(&app, &shop, "o-2", VICTIM).await;
    assert!(
        partners_of(&second).is_empty(),
        "bob is credited for the victim's purchase: {second}"
    );
}

async fn a_browser_identify_then_a_server_conversion_by_email_credits_the_clicking_partner(
    app: TestApp,
) {
    let shop = shop(&app).await;
    let public = publishable_key(&app, &shop).await;
    let tid = app.click_link(&shop.alice_code).await;
    segment_browser(&app, &public, "customer-browser", &tid, "buyer@example.com").await;
    let sale = server_sale(&app, &shop, "o-1", "buyer@example.com").await;
    assert_eq!(
        partners_of(&sale),
        vec![shop.seed.alice.id.clone()],
        "{sale}"
    );
}

async fn a_returning_customers_new_click_is_credited_after_the_owner_named_them(app: TestApp) {
    let shop = shop(&app).await;
    let public = publishable_key(&app, &shop).await;
    let first_tid = app.click_link(&shop.alice_code).await;
    segment_browser(
        &app,
        &public,
        "customer-browser",
        &first_tid,
        "buyer@example.com",
    )
    .await;
    let first = server_sale(&app, &shop, "o-1", "buyer@example.com").await;
    assert_eq!(
        partners_of(&first),
        vec![shop.seed.alice.id.clone()],
        "{first}"
    );
    // The same browser comes back through bob's link; the last touch earns.
    let second_tid = app.click_link(&shop.bob_code).await;
    let page = json!({"anonymousId": "customer-browser",
        "context": {"page": {"url": format!("https://acme.test/landing?tid={second_tid}")}}});
    segment(&app, "/v1/page", &public, page).await.ok(200);
    let second = server_sale(&app, &shop, "o-2", "buyer@example.com").await;
    assert_eq!(
        partners_of(&second),
        vec![shop.seed.bob.id.clone()],
        "{second}"
    );
}
