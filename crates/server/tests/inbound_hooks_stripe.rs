//! Black-box tests of Stripe deliveries to `POST /hooks/stripe/{id}`,
//! signed as Stripe signs them (`t=…,v1=hex(HMAC-SHA256(secret, "{t}.{body}"))`)
//! and checked with Stripe's own Python library
//! (`tests/hooks/stripe_sign_check.py`, `stripe.Webhook.construct_event`),
//! so Tribute is shown to accept what Stripe's library accepts and to
//! refuse what it refuses. A completed checkout and a subscription's
//! renewal invoice are credited to the clicked partner; partial refunds
//! (cumulative or listed) and a dispute reverse the sale; a tampered,
//! stale, replayed or misaddressed delivery writes nothing. Each scenario
//! runs on SQLite and on PostgreSQL.

#[macro_use]
mod common;
#[path = "hooks/mod.rs"]
mod hooks;

use chrono::Utc;
use serde_json::{json, Value};
use tribute_core::ids::ConversionId;

use common::{str_of, TestApp};
use hooks::{
    assert_answer, click, conversion, conversions, credited, deliver, integration, last_delivery,
    refunds, result_ids, stripe_library_accepts, stripe_library_available, stripe_signature,
    ten_percent, Hook, UNKNOWN_ID,
};

on_both_backends!(
    a_checkout_and_its_subscription_renewal_are_credited_to_the_clicked_partner,
    renewals_are_credited_when_the_first_invoice_arrives_before_its_checkout,
    partial_refunds_and_a_dispute_reverse_the_stripe_sales_they_name,
    concurrent_cumulative_refunds_refund_the_largest_total_once,
    tampered_stale_replayed_or_misaddressed_stripe_deliveries_write_nothing,
);

const SECRET: &str = "whsec_tribute_test_5e2b0c8f";

/// Now, as Stripe writes an object's time: whole seconds, rounded up here
/// so that a sale made just after the test's click is not dated before it
/// (a click in the same second would then count as after the sale).
fn stripe_time() -> i64 {
    (Utc::now().timestamp_millis() + 999).div_euclid(1000)
}

/// A Stripe event of `kind` about `object`, as Stripe serializes one.
fn event(id: &str, kind: &str, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": stripe_time(),
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
        "data": {"object": object},
    })
    .to_string()
}

/// A paid checkout session for `amount` cents, with `fields` on top.
fn session(id: &str, amount: i64, fields: Value) -> Value {
    let mut s = json!({
        "id": id,
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": amount,
        "currency": "eur",
        "created": stripe_time(),
        "customer": null,
        "customer_details": {"email": "ada@example.com"},
        "client_reference_id": null,
        "invoice": null,
        "subscription": null,
        "payment_intent": null,
        "metadata": {},
    });
    for (k, v) in fields.as_object().expect("session fields") {
        s[k] = v.clone();
    }
    s
}

/// Sign `body` now and deliver it to `hook`.
async fn send(app: &TestApp, hook: &Hook, body: &str) -> common::Reply {
    let signature = stripe_signature(&hook.secret, Utc::now().timestamp(), body);
    deliver(
        app,
        &hook.path(),
        body,
        &[("Stripe-Signature".into(), signature)],
    )
    .await
}

struct Setup {
    program_id: String,
    alice: String,
    bob: String,
    hook: Hook,
}

async fn setup(app: &TestApp) -> Setup {
    let seed = app.seed().await;
    ten_percent(app, &seed.program_id).await;
    let hook = integration(app, &seed.program_id, "stripe", SECRET, None).await;
    Setup {
        program_id: seed.program_id,
        alice: seed.alice.id,
        bob: seed.bob.id,
        hook,
    }
}

async fn a_checkout_and_its_subscription_renewal_are_credited_to_the_clicked_partner(app: TestApp) {
    let s = setup(&app).await;
    let tid = click(&app, &s.alice).await;
    // Bob's click belongs to someone else: it must not get the credit.
    click(&app, &s.bob).await;
    let checkout = event(
        "evt_checkout_1",
        "checkout.session.completed",
        session(
            "cs_test_1",
            2_900,
            json!({"mode": "subscription", "customer": "cus_ada", "client_reference_id": tid,
                   "invoice": "in_first", "subscription": "sub_ada"}),
        ),
    );
    let signature = stripe_signature(SECRET, Utc::now().timestamp(), &checkout);
    if stripe_library_available("stripe_checkout_signature") {
        let (accepted, said) = stripe_library_accepts(&checkout, &signature, SECRET).await;
        assert!(accepted, "Stripe's library refuses our signature: {said}");
    }
    let answer = deliver(
        &app,
        &s.hook.path(),
        &checkout,
        &[("Stripe-Signature".into(), signature)],
    )
    .await;
    let answer = assert_answer(&answer, "processed", "the checkout");
    let first = conversion(&app, &s.program_id, "in_first").await;
    assert_eq!(
        result_ids(&answer, "conversion_id"),
        vec![str_of(&first, "id")]
    );
    assert_eq!(
        (first["value"].as_i64(), first["currency"].as_str()),
        (Some(2_900), Some("EUR"))
    );
    assert_eq!(credited(&first), vec![s.alice.clone()], "{first}");

    // The first invoice is paid by that checkout: the same sale, not a second one.
    let first_invoice = json!({"id": "in_first", "object": "invoice", "amount_paid": 2_900,
        "currency": "eur", "customer": "cus_ada", "billing_reason": "subscription_create",
        "payment_intent": "pi_first", "charge": "ch_first", "subscription": "sub_ada",
        "status_transitions": {"paid_at": stripe_time()}});
    let same = send(
        &app,
        &s.hook,
        &event("evt_inv_1", "invoice.paid", first_invoice),
    )
    .await;
    let same = assert_answer(&same, "processed", "the first invoice");
    assert_eq!(same["result"][0]["replayed"], true, "{same}");
    assert_eq!(app.conversion_count(&s.program_id).await, 1);

    // A month later Stripe charges the customer again: the invoice names
    // only the customer, who is known through the checkout.
    let renewal = json!({"id": "in_second", "object": "invoice", "amount_paid": 2_900,
        "currency": "eur", "customer": "cus_ada", "customer_email": "ada@example.com",
        "billing_reason": "subscription_cycle", "payment_intent": "pi_second",
        "charge": "ch_second",
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": "sub_ada", "metadata": {}}},
        "lines": {"object": "list", "data": [{"id": "il_1", "amount": 2_900, "quantity": 1,
                  "pricing": {"price_details": {"product": "prod_pro"}}}]},
        "status_transitions": {"paid_at": stripe_time()}});
    let answer = send(&app, &s.hook, &event("evt_inv_2", "invoice.paid", renewal)).await;
    assert_answer(&answer, "processed", "the renewal");
    let second = conversion(&app, &s.program_id, "in_second").await;
    assert_eq!(
        credited(&second),
        vec![s.alice.clone()],
        "through cus_ada: {second}"
    );
    // The API does not show a sale's metadata; reward rules read it.
    let stored = app
        .store
        .conversion(&ConversionId::parse(str_of(&second, "id")).expect("an id"))
        .await
        .expect("loading the conversion")
        .expect("the conversion");
    assert_eq!(stored.metadata.get("recurring"), Some(&json!(true)));
    assert_eq!(
        stored.metadata.get("billing_reason"),
        Some(&json!("subscription_cycle"))
    );
    assert_eq!(
        second["products"],
        json!([{"sku": "prod_pro", "quantity": 1, "amount": 2_900}])
    );
    assert_eq!(app.conversion_count(&s.program_id).await, 2);

    // An event type Tribute does not act on is logged as ignored.
    let other = event("evt_other", "payment_intent.created", json!({"id": "pi_x"}));
    assert_answer(
        &send(&app, &s.hook, &other).await,
        "ignored",
        "another type",
    );
    last_delivery(&app, &s.hook, "ignored", true).await;
    assert_eq!(app.conversion_count(&s.program_id).await, 2);
}

async fn renewals_are_credited_when_the_first_invoice_arrives_before_its_checkout(app: TestApp) {
    // Stripe does not deliver events in order: the first invoice's
    // `invoice.paid`, which names only the customer, often comes first.
    let s = setup(&app).await;
    let tid = click(&app, &s.alice).await;
    let invoice = |id: &str, reason: &str| {
        json!({"id": id, "object": "invoice", "amount_paid": 1_500, "currency": "eur",
               "customer": "cus_lin", "billing_reason": reason, "subscription": "sub_lin",
               "created": stripe_time()})
    };
    let first = event(
        "evt_i1",
        "invoice.paid",
        invoice("in_lin_1", "subscription_create"),
    );
    assert_answer(
        &send(&app, &s.hook, &first).await,
        "processed",
        "the first invoice",
    );
    let checkout = session(
        "cs_lin",
        1_500,
        json!({"mode": "subscription", "customer": "cus_lin", "client_reference_id": tid,
               "invoice": "in_lin_1", "subscription": "sub_lin"}),
    );
    let checkout = event("evt_c1", "checkout.session.completed", checkout);
    let answer = send(&app, &s.hook, &checkout).await;
    let answer = assert_answer(&answer, "processed", "the checkout, second");
    assert_eq!(answer["result"][0]["replayed"], true, "one sale: {answer}");
    assert_eq!(app.conversion_count(&s.program_id).await, 1);

    let renewal = event(
        "evt_i2",
        "invoice.paid",
        invoice("in_lin_2", "subscription_cycle"),
    );
    assert_answer(
        &send(&app, &s.hook, &renewal).await,
        "processed",
        "the renewal",
    );
    let second = conversion(&app, &s.program_id, "in_lin_2").await;
    assert_eq!(
        credited(&second),
        vec![s.alice.clone()],
        "through cus_lin: {second}"
    );
}

async fn partial_refunds_and_a_dispute_reverse_the_stripe_sales_they_name(app: TestApp) {
    let s = setup(&app).await;
    let tid = click(&app, &s.bob).await;
    let one_off = session(
        "cs_test_2",
        10_000,
        json!({"payment_intent": "pi_bob", "metadata": {"tribute_click_id": tid}}),
    );
    let answer = send(
        &app,
        &s.hook,
        &event("evt_c2", "checkout.session.completed", one_off),
    )
    .await;
    assert_answer(&answer, "processed", "the checkout");
    let sale = conversion(&app, &s.program_id, "pi_bob").await;
    assert_eq!(credited(&sale), vec![s.bob.clone()], "by metadata: {sale}");

    // Recent API versions do not list the refunds: each event carries the
    // total refunded so far, and only what is new is refunded.
    let charge = |total: i64| {
        json!({"id": "ch_bob", "object": "charge", "amount": 10_000, "amount_refunded": total,
               "currency": "eur", "payment_intent": "pi_bob", "refunded": false})
    };
    let first = event("evt_r1", "charge.refunded", charge(2_500));
    assert_answer(
        &send(&app, &s.hook, &first).await,
        "processed",
        "2 500 refunded",
    );
    let second = event("evt_r2", "charge.refunded", charge(4_000));
    let answer = send(&app, &s.hook, &second).await;
    let answer = assert_answer(&answer, "processed", "4 000 refunded in all");
    assert_eq!(
        answer["result"][0]["amount"], 1_500,
        "only the new part: {answer}"
    );
    // Stripe retrying the second event, and another event with the same total.
    assert_answer(&send(&app, &s.hook, &second).await, "duplicate", "a retry");
    let again = event("evt_r3", "charge.refunded", charge(4_000));
    assert_answer(
        &send(&app, &s.hook, &again).await,
        "ignored",
        "the same total",
    );
    let listed = refunds(&app, &sale).await;
    let mut amounts: Vec<i64> = listed.iter().filter_map(|r| r["amount"].as_i64()).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, vec![1_500, 2_500], "{listed:?}");
    assert!(listed.iter().all(|r| r["kind"] == "refund"), "{listed:?}");
    let reversed: i64 = listed.iter().filter_map(|r| r["reversed"].as_i64()).sum();
    assert_eq!(reversed, 400, "10 % of the 40.00 refunded: {listed:?}");

    // Older API versions list each refund: one per id, however often seen.
    let tid = click(&app, &s.alice).await;
    let sale = session(
        "cs_test_3",
        8_000,
        json!({"payment_intent": "pi_alice", "client_reference_id": tid}),
    );
    let answer = send(
        &app,
        &s.hook,
        &event("evt_c3", "checkout.session.completed", sale),
    )
    .await;
    assert_answer(&answer, "processed", "the second checkout");
    let sale = conversion(&app, &s.program_id, "pi_alice").await;
    let listed_charge = |refunds: Value| {
        json!({"id": "ch_alice", "object": "charge", "amount": 8_000, "currency": "eur",
               "payment_intent": "pi_alice", "amount_refunded": 0,
               "refunds": {"object": "list", "data": refunds}})
    };
    let re1 = json!({"id": "re_1", "amount": 1_000, "currency": "eur", "status": "succeeded"});
    let re2 = json!({"id": "re_2", "amount": 500, "currency": "eur", "status": "succeeded"});
    let failed = json!({"id": "re_3", "amount": 700, "currency": "eur", "status": "failed"});
    let body = event("evt_r4", "charge.refunded", listed_charge(json!([re1])));
    assert_answer(&send(&app, &s.hook, &body).await, "processed", "re_1");
    let body = event(
        "evt_r5",
        "charge.refunded",
        listed_charge(json!([re1, re2, failed])),
    );
    let answer = send(&app, &s.hook, &body).await;
    let answer = assert_answer(&answer, "processed", "re_1 and re_2");
    let replayed: Vec<bool> = answer["result"]
        .as_array()
        .expect("a result list")
        .iter()
        .filter_map(|r| r["replayed"].as_bool())
        .collect();
    assert_eq!(
        replayed,
        vec![true, false],
        "re_1 again, re_2 new: {answer}"
    );
    let mut ids: Vec<String> = refunds(&app, &sale)
        .await
        .iter()
        .map(|r| str_of(r, "external_id").to_owned())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec!["re_1", "re_2"],
        "the failed refund gave nothing back"
    );

    // The customer's bank disputes what is left: a chargeback.
    let dispute = json!({"id": "dp_1", "object": "dispute", "amount": 6_500, "currency": "eur",
        "charge": "ch_alice", "payment_intent": "pi_alice", "reason": "fraudulent",
        "status": "needs_response"});
    let body = event("evt_d1", "charge.dispute.created", dispute);
    assert_answer(
        &send(&app, &s.hook, &body).await,
        "processed",
        "the dispute",
    );
    let listed = refunds(&app, &sale).await;
    let chargeback = listed
        .iter()
        .find(|r| r["kind"] == "chargeback")
        .unwrap_or_else(|| panic!("no chargeback in {listed:?}"));
    assert_eq!(chargeback["external_id"], "dp_1");
    assert_eq!(chargeback["applied"], 6_500, "{chargeback}");
    assert!(
        str_of(chargeback, "reason").contains("fraudulent"),
        "{chargeback}"
    );

    // A refund of a sale Tribute never saw is understood and ignored.
    let unknown = json!({"id": "ch_other", "amount": 100, "amount_refunded": 100,
                         "currency": "eur", "payment_intent": "pi_other"});
    let body = event("evt_r6", "charge.refunded", unknown);
    assert_answer(
        &send(&app, &s.hook, &body).await,
        "ignored",
        "an unknown sale",
    );
    assert_eq!(app.conversion_count(&s.program_id).await, 2);
}

async fn concurrent_cumulative_refunds_refund_the_largest_total_once(app: TestApp) {
    // Stripe sends events concurrently: two partial refunds of one charge
    // in quick succession arrive together, each with the total so far.
    let s = setup(&app).await;
    for round in 0..5 {
        let (pi, ch) = (format!("pi_race_{round}"), format!("ch_race_{round}"));
        let sale = session(
            &format!("cs_race_{round}"),
            10_000,
            json!({"payment_intent": pi}),
        );
        let body = event(
            &format!("evt_sale_{round}"),
            "checkout.session.completed",
            sale,
        );
        assert_answer(&send(&app, &s.hook, &body).await, "processed", "the sale");
        let refunded = |total: i64| {
            let charge = json!({"id": ch, "amount": 10_000, "amount_refunded": total,
                                "currency": "eur", "payment_intent": pi});
            event(&format!("evt_{ch}_{total}"), "charge.refunded", charge)
        };
        let (a, b) = (refunded(2_500), refunded(4_000));
        let (ra, rb) = tokio::join!(send(&app, &s.hook, &a), send(&app, &s.hook, &b));
        assert_eq!(
            (ra.status.as_u16(), rb.status.as_u16()),
            (200, 200),
            "{} {}",
            ra.text,
            rb.text
        );
        let listed = refunds(&app, &conversion(&app, &s.program_id, &pi).await).await;
        let total: i64 = listed.iter().filter_map(|r| r["amount"].as_i64()).sum();
        assert_eq!(total, 4_000, "round {round}: {listed:?}");
    }
}

async fn tampered_stale_replayed_or_misaddressed_stripe_deliveries_write_nothing(app: TestApp) {
    let s = setup(&app).await;
    let tid = click(&app, &s.alice).await;
    let body = event(
        "evt_checkout_9",
        "checkout.session.completed",
        session("cs_test_9", 5_000, json!({"client_reference_id": tid})),
    );
    let now = Utc::now().timestamp();
    let signature = stripe_signature(SECRET, now, &body);
    let header = |v: &str| vec![("Stripe-Signature".to_owned(), v.to_owned())];
    let library = stripe_library_available("stripe_refusals");

    // The amount raised after signing.
    let tampered = body.replace("\"amount_total\":5000", "\"amount_total\":500000");
    assert_ne!(tampered, body);
    if library {
        let (accepted, said) = stripe_library_accepts(&tampered, &signature, SECRET).await;
        assert!(
            !accepted,
            "Stripe's library accepts a tampered body: {said}"
        );
    }
    deliver(&app, &s.hook.path(), &tampered, &header(&signature))
        .await
        .assert_error(401, None, "a tampered body");
    let rejected = last_delivery(&app, &s.hook, "rejected", false).await;
    assert!(
        rejected["delivery_key"].is_null() && rejected["result"].is_null(),
        "{rejected}"
    );
    // Signed with another secret, or not at all.
    let forged = stripe_signature("whsec_someone_else", now, &body);
    deliver(&app, &s.hook.path(), &body, &header(&forged))
        .await
        .assert_error(401, None, "another secret");
    deliver(&app, &s.hook.path(), &body, &[])
        .await
        .assert_error(401, None, "no signature");
    deliver(&app, &s.hook.path(), &body, &header("v1=abc"))
        .await
        .assert_error(400, Some("signature"), "no timestamp in the header");

    // Correctly signed ten minutes ago: Stripe's library refuses it too.
    let stale = stripe_signature(SECRET, now - 600, &body);
    if library {
        let (accepted, said) = stripe_library_accepts(&body, &stale, SECRET).await;
        assert!(
            !accepted,
            "Stripe's library accepts a stale signature: {said}"
        );
    }
    let reply = deliver(&app, &s.hook.path(), &body, &header(&stale)).await;
    reply.assert_error(400, Some("signature"), "a stale timestamp");
    assert!(reply.text.contains("stale"), "{}", reply.text);
    last_delivery(&app, &s.hook, "rejected", false).await;
    assert_eq!(
        app.conversion_count(&s.program_id).await,
        0,
        "nothing written"
    );
    assert_eq!(hooks::deliveries(&app, &s.hook).await.len(), 5);

    // The genuine delivery, then Stripe's retries of the same event.
    if library {
        let (accepted, said) = stripe_library_accepts(&body, &signature, SECRET).await;
        assert!(accepted, "Stripe's library refuses our signature: {said}");
    }
    let first = deliver(&app, &s.hook.path(), &body, &header(&signature)).await;
    let first = assert_answer(&first, "processed", "the genuine delivery");
    let replay = deliver(&app, &s.hook.path(), &body, &header(&signature)).await;
    let replay = assert_answer(&replay, "duplicate", "the same request again");
    assert_eq!(replay["delivery_id"], first["delivery_id"]);
    let resigned = stripe_signature(SECRET, now + 1, &body);
    let retry = deliver(&app, &s.hook.path(), &body, &header(&resigned)).await;
    assert_answer(&retry, "duplicate", "the same event signed again");
    assert_eq!(app.conversion_count(&s.program_id).await, 1, "one sale");
    assert_eq!(
        hooks::deliveries(&app, &s.hook).await.len(),
        6,
        "replays add no row"
    );

    // Hook URLs that do not exist: an unknown id, another kind's path, junk.
    let before = conversions(&app, &s.program_id).await.len();
    for (case, path) in [
        (
            "an unknown integration",
            format!("/hooks/stripe/{UNKNOWN_ID}"),
        ),
        (
            "the id under another kind",
            format!("/hooks/shopify/{}", s.hook.id),
        ),
        (
            "the id under generic",
            format!("/hooks/generic/{}", s.hook.id),
        ),
        ("an unknown kind", format!("/hooks/paypal/{}", s.hook.id)),
        ("a malformed id", "/hooks/stripe/not-an-id".to_owned()),
    ] {
        let other = body.replace("evt_checkout_9", "evt_checkout_10");
        let signature = stripe_signature(SECRET, Utc::now().timestamp(), &other);
        deliver(&app, &path, &other, &header(&signature))
            .await
            .assert_error(404, None, case);
    }
    assert_eq!(conversions(&app, &s.program_id).await.len(), before);
    assert_eq!(
        hooks::deliveries(&app, &s.hook).await.len(),
        6,
        "nothing logged"
    );
}
