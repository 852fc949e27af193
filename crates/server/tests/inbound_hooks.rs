//! Black-box tests of inbound integrations: the admin API
//! (`/api/v1/integrations`: create, show, change, delete, validation), the
//! generic provider (`POST /hooks/generic/{id}`, a JSON Pointer mapping
//! with a configured signature, timestamp and delivery id header), the
//! delivery log, and a failed delivery retried by hand. Stripe, Shopify
//! and HubSpot deliveries are in `inbound_hooks_stripe.rs` and
//! `inbound_hooks_shopify_hubspot.rs`. Each scenario runs on SQLite and on
//! PostgreSQL.

#[macro_use]
mod common;
#[path = "hooks/mod.rs"]
mod hooks;

use chrono::{Duration, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use common::{str_of, TestApp, PUBLIC_URL};
use hooks::{
    assert_answer, click, conversion, credited, deliver, deliveries, hmac_sha256, integration,
    last_delivery, refunds, result_ids, ten_percent, Hook, UNKNOWN_ID,
};

on_both_backends!(
    integrations_are_created_shown_changed_and_deleted_and_their_secret_is_never_shown,
    bad_integrations_are_refused_with_422_naming_the_field,
    a_generic_delivery_becomes_a_conversion_and_a_refund_through_its_mapping,
    tampered_stale_replayed_or_misaddressed_generic_deliveries_write_nothing,
    a_failed_delivery_is_logged_and_processed_when_retried_after_the_rate_is_added,
);

const SECRET: &str = "acme-signing-secret-1f0e";

/// The generic mapping of the tests' billing system: JSON Pointers into
/// its payload, amounts in major units, and its own header names.
fn mapping() -> Value {
    json!({
        "external_id": "/id",
        "kind": "/event",
        "kind_values": {"order.paid": "conversion", "order.refunded": "refund"},
        "value": "/amount",
        "value_unit": "major",
        "currency": "/currency",
        "click_id": "/visitor/tid",
        "email": "/customer/email",
        "refund_of": "/order_id",
        "metadata": "/custom",
        "signature_header": "X-Acme-Signature",
        "timestamp_header": "X-Acme-Timestamp",
        "id_header": "X-Acme-Delivery",
    })
}

/// The billing system's headers: `sha256=hex(HMAC(secret, "{ts}.{body}"))`.
fn signed(secret: &str, delivery: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body.as_bytes()]);
    vec![
        (
            "X-Acme-Signature".into(),
            format!("sha256={}", hex::encode(mac)),
        ),
        ("X-Acme-Timestamp".into(), ts),
        ("X-Acme-Delivery".into(), delivery.into()),
    ]
}

/// Sign `body` now as delivery `delivery` and post it to `hook`.
async fn send(app: &TestApp, hook: &Hook, delivery: &str, body: &str) -> common::Reply {
    let headers = signed(&hook.secret, delivery, Utc::now().timestamp(), body);
    deliver(app, &hook.path(), body, &headers).await
}

fn paid(order: &str, amount: &str, currency: &str, tid: &str) -> String {
    json!({"event": "order.paid", "id": order, "amount": amount, "currency": currency,
           "visitor": {"tid": tid}, "customer": {"email": "lin@example.com"},
           "custom": {"plan": "pro", "seats": 3, "nested": {"dropped": true}}})
    .to_string()
}

// --- the admin API -----------------------------------------------------------------

async fn integrations_are_created_shown_changed_and_deleted_and_their_secret_is_never_shown(
    app: TestApp,
) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    let made = app
        .post(
            "/integrations",
            &app.admin_key,
            &json!({"program_id": program, "kind": "generic", "secret": SECRET,
                    "mapping": mapping()}),
        )
        .await;
    assert!(
        !made.text.contains(SECRET),
        "the secret is shown: {}",
        made.text
    );
    let made = made.ok(201).clone();
    let id = str_of(&made, "id");
    assert!(id.starts_with("int_"), "{made}");
    assert_eq!(made["kind"], "generic");
    assert_eq!(made["program_id"], json!(program));
    assert_eq!(made["hook_url"], format!("{PUBLIC_URL}/hooks/generic/{id}"));
    assert_eq!(made["secret_hint"], "…1f0e");
    assert_eq!(made["mapping"], mapping());

    let shown = app
        .get(&format!("/integrations/{id}"), &app.admin_key)
        .await;
    assert!(!shown.text.contains(SECRET), "{}", shown.text);
    assert_eq!(shown.ok(200)["hook_url"], made["hook_url"]);
    let listed = app
        .get(
            &format!("/integrations?program_id={program}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(common::ids(listed.ok(200)), vec![id]);
    // Partners see nothing of it.
    app.get(&format!("/integrations/{id}"), &seed.alice.key)
        .await
        .assert_error(403, None, "a partner key");

    // A new secret: deliveries signed with the old one are refused.
    let hook = Hook {
        id: id.to_owned(),
        kind: "generic",
        secret: SECRET.to_owned(),
        program_id: program.clone(),
    };
    let tid = click(&app, &seed.alice.id).await;
    let body = paid("ord-1", "10.00", "EUR", &tid);
    assert_answer(
        &send(&app, &hook, "d-1", &body).await,
        "processed",
        "first secret",
    );
    let changed = app
        .patch(
            &format!("/integrations/{id}"),
            &app.admin_key,
            &json!({"secret": "a-brand-new-secret-9b9b"}),
        )
        .await;
    assert_eq!(changed.ok(200)["secret_hint"], "…9b9b");
    assert_eq!(changed.body["mapping"], mapping(), "the mapping is kept");
    send(&app, &hook, "d-2", &paid("ord-2", "10.00", "EUR", &tid))
        .await
        .assert_error(401, None, "the old secret");
    let rotated = Hook {
        secret: "a-brand-new-secret-9b9b".into(),
        ..hook.clone()
    };
    let body = paid("ord-2", "10.00", "EUR", &tid);
    assert_answer(
        &send(&app, &rotated, "d-2", &body).await,
        "processed",
        "new secret",
    );
    app.patch(
        &format!("/integrations/{id}"),
        &app.admin_key,
        &json!({"mapping": {"external_id": "/id"}}),
    )
    .await
    .assert_error(422, Some("mapping.value"), "a mapping without a value");

    let gone = app
        .api(
            Method::DELETE,
            &format!("/integrations/{id}"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(gone.status.as_u16(), 204, "{}", gone.text);
    app.get(&format!("/integrations/{id}"), &app.admin_key)
        .await
        .assert_error(404, None, "a deleted integration");
    app.get(&format!("/integrations/{id}/deliveries"), &app.admin_key)
        .await
        .assert_error(404, None, "a deleted integration's log");
    send(&app, &rotated, "d-3", &paid("ord-3", "10.00", "EUR", &tid))
        .await
        .assert_error(404, None, "a delivery to a deleted integration");
    assert_eq!(app.conversion_count(program).await, 2);
}

async fn bad_integrations_are_refused_with_422_naming_the_field(app: TestApp) {
    let seed = app.seed().await;
    let program = seed.program_id.as_str();
    let cases = [
        ("an unknown kind", json!({"kind": "paypal"}), "kind"),
        ("a short secret", json!({"secret": "short"}), "secret"),
        ("a blank secret", json!({"secret": "        "}), "secret"),
        (
            "a secret with a control character",
            json!({"secret": "abc\u{1}defghij"}),
            "secret",
        ),
        (
            "an unknown Stripe mapping key",
            json!({"kind": "stripe", "mapping": {"colour": "red"}}),
            "mapping.colour",
        ),
        (
            "an unknown Shopify mapping key",
            json!({"kind": "shopify", "mapping": {"tolerance": 60}}),
            "mapping.tolerance",
        ),
        (
            "a Shopify tolerance under a minute",
            json!({"kind": "shopify", "mapping": {"tolerance_seconds": 5}}),
            "mapping.tolerance_seconds",
        ),
        (
            "a HubSpot won stage that is not a stage",
            json!({"kind": "hubspot", "mapping": {"won_stage": 7}}),
            "mapping.won_stage",
        ),
        (
            "an unknown generic mapping key",
            json!({"mapping": {"external_id": "/id", "value": "/amount", "amout": "/x"}}),
            "mapping.amout",
        ),
        (
            "a generic pointer that is not a pointer",
            json!({"mapping": {"external_id": "id", "value": "/amount"}}),
            "mapping.external_id",
        ),
        (
            "a generic unit that is neither",
            json!({"mapping": {"external_id": "/id", "value": "/v", "value_unit": "cents"}}),
            "mapping.value_unit",
        ),
        (
            "a generic header name with a space",
            json!({"mapping": {"external_id": "/id", "value": "/v",
                               "signature_header": "X Sig"}}),
            "mapping.signature_header",
        ),
        (
            "a generic integration without a mapping",
            json!({"mapping": null}),
            "mapping.external_id",
        ),
        (
            "a mapping that is not an object",
            json!({"mapping": ["/id"]}),
            "mapping",
        ),
        (
            "an unknown program",
            json!({"program_id": "prg_00000000000000000000"}),
            "program_id",
        ),
    ];
    for (case, fields, field) in cases {
        let mut body = json!({"program_id": program, "kind": "generic", "secret": SECRET,
                              "mapping": mapping()});
        for (k, v) in fields.as_object().expect("fields") {
            body[k] = v.clone();
        }
        app.post("/integrations", &app.admin_key, &body)
            .await
            .assert_error(422, Some(field), case);
    }
    app.post(
        "/integrations",
        &seed.alice.key,
        &json!({"program_id": program, "kind": "stripe", "secret": SECRET}),
    )
    .await
    .assert_error(403, None, "a partner key");
    assert_eq!(app.count("/integrations").await, 0, "nothing was created");
    for path in [
        format!("/integrations/{UNKNOWN_ID}"),
        format!("/integrations/{UNKNOWN_ID}/deliveries"),
    ] {
        app.get(&path, &app.admin_key)
            .await
            .assert_error(404, None, &path);
    }
}

// --- the generic provider -------------------------------------------------------

async fn a_generic_delivery_becomes_a_conversion_and_a_refund_through_its_mapping(app: TestApp) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    ten_percent(&app, program).await;
    let hook = integration(&app, program, "generic", SECRET, Some(mapping())).await;
    let tid = click(&app, &seed.bob.id).await;

    let answer = send(&app, &hook, "d-1", &paid("ord-7", "12.50", "EUR", &tid)).await;
    let answer = assert_answer(&answer, "processed", "order.paid");
    let sale = conversion(&app, program, "ord-7").await;
    assert_eq!(
        result_ids(&answer, "conversion_id"),
        vec![str_of(&sale, "id")]
    );
    assert_eq!(
        (sale["value"].as_i64(), sale["currency"].as_str()),
        (Some(1_250), Some("EUR"))
    );
    assert_eq!(credited(&sale), vec![seed.bob.id.clone()], "{sale}");

    let refund = json!({"event": "order.refunded", "id": "rf-1", "order_id": "ord-7",
                        "amount": "2.50", "currency": "EUR"})
    .to_string();
    let answer = send(&app, &hook, "d-2", &refund).await;
    let answer = assert_answer(&answer, "processed", "order.refunded");
    assert_eq!(answer["result"][0]["action"], "refund", "{answer}");
    let listed = refunds(&app, &sale).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0]["external_id"].as_str(),
            listed[0]["amount"].as_i64()
        ),
        (Some("rf-1"), Some(250))
    );
    assert_eq!(listed[0]["reversed"], 25, "10 % of 2.50");

    // An event the mapping does not name, and a refund of an unknown order.
    let other = json!({"event": "order.viewed", "id": "ord-7"}).to_string();
    assert_answer(
        &send(&app, &hook, "d-3", &other).await,
        "ignored",
        "unmapped kind",
    );
    let orphan = refund.replace("ord-7", "ord-404").replace("rf-1", "rf-2");
    assert_answer(
        &send(&app, &hook, "d-4", &orphan).await,
        "ignored",
        "unknown order",
    );

    // The log lists every delivery with its status, newest first.
    let log = deliveries(&app, &hook).await;
    let statuses: Vec<&str> = log.iter().map(|d| str_of(d, "status")).collect();
    assert_eq!(
        statuses,
        vec!["ignored", "ignored", "processed", "processed"]
    );
    let keys: Vec<&str> = log.iter().map(|d| str_of(d, "delivery_key")).collect();
    assert_eq!(keys, vec!["d-4", "d-3", "d-2", "d-1"]);
    assert!(log
        .iter()
        .all(|d| d["verified"] == true && d["error"].is_null()));
    assert_eq!(log[3]["result"][0]["action"], "conversion", "{log:?}");
    assert_eq!(log[1]["result"][0]["action"], "ignored", "{log:?}");
    assert!(
        log.iter().all(|d| d.get("body").is_none()),
        "no bodies shown"
    );
    assert_eq!(app.conversion_count(program).await, 1);
}

async fn tampered_stale_replayed_or_misaddressed_generic_deliveries_write_nothing(app: TestApp) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    let hook = integration(&app, program, "generic", SECRET, Some(mapping())).await;
    let tid = click(&app, &seed.alice.id).await;
    let body = paid("ord-9", "99.00", "EUR", &tid);
    let now = Utc::now().timestamp();
    let headers = signed(SECRET, "d-9", now, &body);

    deliver(
        &app,
        &hook.path(),
        &body.replace("99.00", "9900.00"),
        &headers,
    )
    .await
    .assert_error(401, None, "a tampered body");
    last_delivery(&app, &hook, "rejected", false).await;
    // The timestamp is signed: moving it breaks the signature.
    let mut moved = headers.clone();
    moved[1].1 = (now + 1).to_string();
    deliver(&app, &hook.path(), &body, &moved)
        .await
        .assert_error(401, None, "a changed timestamp");
    deliver(&app, &hook.path(), &body, &headers[1..])
        .await
        .assert_error(401, None, "no signature");
    let mut junk = headers.clone();
    junk[0].1 = "sha256=not hex or base64!".into();
    deliver(&app, &hook.path(), &body, &junk)
        .await
        .assert_error(400, Some("signature"), "a malformed signature");
    // Genuine, but signed ten minutes ago (the window is five).
    let stale = signed(SECRET, "d-9", now - 600, &body);
    deliver(&app, &hook.path(), &body, &stale)
        .await
        .assert_error(400, Some("signature"), "a stale timestamp");
    let log = deliveries(&app, &hook).await;
    assert_eq!(log.len(), 5, "{log:?}");
    assert!(log
        .iter()
        .all(|d| d["status"] == "rejected" && d["verified"] == false));
    assert!(log.iter().all(|d| d["error"].as_str().is_some()), "{log:?}");
    assert_eq!(app.conversion_count(program).await, 0, "nothing written");

    let first = deliver(&app, &hook.path(), &body, &headers).await;
    let first = assert_answer(&first, "processed", "the genuine delivery");
    // The sender retries: the same X-Acme-Delivery, signed anew.
    let retry = signed(SECRET, "d-9", now + 2, &body);
    let replay = deliver(&app, &hook.path(), &body, &retry).await;
    let replay = assert_answer(&replay, "duplicate", "the same delivery id");
    assert_eq!(replay["delivery_id"], first["delivery_id"]);
    assert_eq!(replay["first_status"], "processed", "{replay}");
    assert_eq!(app.conversion_count(program).await, 1);
    assert_eq!(deliveries(&app, &hook).await.len(), 6);

    for (case, path) in [
        (
            "an unknown integration",
            format!("/hooks/generic/{UNKNOWN_ID}"),
        ),
        (
            "the id under another kind",
            format!("/hooks/stripe/{}", hook.id),
        ),
        (
            "the id under shopify",
            format!("/hooks/shopify/{}", hook.id),
        ),
    ] {
        let headers = signed(SECRET, "d-10", Utc::now().timestamp(), &body);
        deliver(&app, &path, &body, &headers)
            .await
            .assert_error(404, None, case);
    }
    assert_eq!(app.conversion_count(program).await, 1);
    assert_eq!(deliveries(&app, &hook).await.len(), 6, "nothing logged");
}

async fn a_failed_delivery_is_logged_and_processed_when_retried_after_the_rate_is_added(
    app: TestApp,
) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    let hook = integration(&app, program, "generic", SECRET, Some(mapping())).await;
    let tid = click(&app, &seed.alice.id).await;

    // The program keeps EUR and has no USD rate yet.
    let body = paid("ord-usd", "40.00", "USD", &tid);
    send(&app, &hook, "d-usd", &body)
        .await
        .assert_error(422, Some("currency"), "no USD rate");
    let failed = last_delivery(&app, &hook, "failed", true).await;
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    assert_eq!(failed["attempts"], 1);
    assert_eq!(app.conversion_count(program).await, 0);
    let retry = format!(
        "/integrations/{}/deliveries/{}/retry",
        hook.id,
        str_of(&failed, "id")
    );
    // The sender's own retry of a failed delivery processes it again.
    send(&app, &hook, "d-usd", &body).await.assert_error(
        422,
        Some("currency"),
        "the sender's retry without a rate",
    );
    app.post(&retry, &app.admin_key, &json!({}))
        .await
        .assert_error(422, Some("currency"), "a retry still without a rate");
    assert_eq!(
        last_delivery(&app, &hook, "failed", true).await["attempts"],
        3
    );

    let yesterday = (Utc::now() - Duration::days(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
    app.post(
        "/fx-rates",
        &app.admin_key,
        &json!({"program_id": program, "from_currency": "USD", "to_currency": "EUR",
                "rate": "0.9", "effective_at": yesterday}),
    )
    .await
    .ok(201);
    let done = app.post(&retry, &app.admin_key, &json!({})).await;
    let done = assert_answer(&done, "processed", "the retry by hand");
    assert_eq!(done["delivery_id"], failed["id"]);
    let sale = conversion(&app, program, "ord-usd").await;
    assert_eq!(
        result_ids(&done, "conversion_id"),
        vec![str_of(&sale, "id")]
    );
    assert_eq!(
        (sale["value"].as_i64(), sale["currency"].as_str()),
        (Some(3_600), Some("EUR"))
    );
    assert_eq!(credited(&sale), vec![seed.alice.id.clone()], "{sale}");
    let log = deliveries(&app, &hook).await;
    assert_eq!(log.len(), 1, "the same delivery, not a new one: {log:?}");
    assert_eq!(
        (log[0]["status"].as_str(), log[0]["attempts"].as_i64()),
        (Some("processed"), Some(4))
    );
    assert!(log[0]["error"].is_null(), "{log:?}");

    // Processed: the sender's retry is a duplicate, and so is another by hand.
    let again = send(&app, &hook, "d-usd", &body).await;
    assert_answer(&again, "duplicate", "the sender's retry");
    let by_hand = app.post(&retry, &app.admin_key, &json!({})).await;
    let by_hand = assert_answer(&by_hand, "processed", "a second retry by hand");
    assert_eq!(by_hand["result"][0]["replayed"], true, "{by_hand}");
    assert_eq!(app.conversion_count(program).await, 1);

    // A rejected delivery has nothing to process; unknown ids are 404.
    let forged = signed(
        "not-the-secret-at-all",
        "d-x",
        Utc::now().timestamp(),
        &body,
    );
    deliver(&app, &hook.path(), &body, &forged)
        .await
        .assert_error(401, None, "a forged delivery");
    let rejected = last_delivery(&app, &hook, "rejected", false).await;
    let path = format!(
        "/integrations/{}/deliveries/{}/retry",
        hook.id,
        str_of(&rejected, "id")
    );
    app.post(&path, &app.admin_key, &json!({}))
        .await
        .assert_error(409, Some("delivery_id"), "retrying a rejected delivery");
    let other = integration(&app, program, "stripe", "whsec_other_integration", None).await;
    for (case, path) in [
        (
            "an unknown delivery",
            format!(
                "/integrations/{}/deliveries/ind_000000000000000000/retry",
                hook.id
            ),
        ),
        (
            "another integration's delivery",
            format!(
                "/integrations/{}/deliveries/{}/retry",
                other.id,
                str_of(&failed, "id")
            ),
        ),
        (
            "an unknown integration",
            format!(
                "/integrations/{UNKNOWN_ID}/deliveries/{}/retry",
                str_of(&failed, "id")
            ),
        ),
    ] {
        app.post(&path, &app.admin_key, &json!({}))
            .await
            .assert_error(404, None, case);
    }
    app.post(&retry, &seed.alice.key, &json!({}))
        .await
        .assert_error(403, None, "a partner key");
}

/// The hand-written HMAC the tests sign with is HMAC-SHA256 (RFC 4231,
/// test cases 2 and 6: a short key and one longer than a block).
#[test]
fn the_tests_hmac_matches_rfc_4231() {
    let short = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
    assert_eq!(
        hex::encode(short),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let long = hmac_sha256(
        &[0xaa; 131],
        &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
    );
    assert_eq!(
        hex::encode(long),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}
