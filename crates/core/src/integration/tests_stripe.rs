//! Tests of [`super::stripe`] with events shaped as Stripe sends them.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::{interpret, stripe, Inbound, IntegrationKind, RefundKind};

const CLICK: &str = "clk_00ABCdef12345678ghijkl";

fn event(kind: &str, object: Value) -> Value {
    json!({
        "id": "evt_1OqXyZ2eZvKYlo2C0a1b2c3d",
        "object": "event",
        "api_version": "2023-10-16",
        "created": 1_700_000_100,
        "data": {"object": object},
        "livemode": true,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind
    })
}

fn read(json: &Value) -> Vec<Inbound> {
    stripe::interpret(json).unwrap()
}

fn session(overrides: Value) -> Value {
    let mut s = json!({
        "id": "cs_live_a1B2c3D4",
        "object": "checkout.session",
        "amount_subtotal": 5000,
        "amount_total": 4500,
        "client_reference_id": null,
        "created": 1_700_000_000,
        "currency": "eur",
        "customer": "cus_PQR123",
        "customer_details": {"email": "jenny@example.com", "name": "Jenny Rosen", "phone": null, "tax_exempt": "none"},
        "customer_email": null,
        "invoice": null,
        "livemode": true,
        "metadata": {"tribute_click_id": CLICK, "plan": "pro", "tribute_coupon": "SPRING10"},
        "mode": "payment",
        "payment_intent": "pi_3OqXyZ2eZvKYlo2C1",
        "payment_status": "paid",
        "status": "complete",
        "subscription": null,
        "total_details": {"amount_discount": 500, "amount_shipping": 0, "amount_tax": 0}
    });
    for (k, v) in overrides.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

fn conversion(out: Vec<Inbound>) -> super::InboundConversion {
    match out.as_slice() {
        [Inbound::Conversion(c)] => c.clone(),
        other => panic!("expected one conversion, got {other:?}"),
    }
}

#[test]
fn paid_checkout_session_becomes_a_conversion_keyed_by_its_payment_intent() {
    let c = conversion(read(&event(
        "checkout.session.completed",
        session(json!({})),
    )));
    assert_eq!(c.external_id, "pi_3OqXyZ2eZvKYlo2C1");
    assert_eq!(c.refs, vec!["cs_live_a1B2c3D4".to_owned()]);
    assert_eq!(c.value, 4500);
    assert_eq!(c.currency, "EUR");
    assert_eq!(c.ids.customer_id.as_deref(), Some("cus_PQR123"));
    assert_eq!(c.ids.email.as_deref(), Some("jenny@example.com"));
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
    assert_eq!(c.coupon.as_deref(), Some("SPRING10"));
    assert_eq!(c.occurred_at, Utc.timestamp_opt(1_700_000_000, 0).single());
    assert_eq!(c.metadata["plan"], "pro");
    assert_eq!(c.metadata["stripe_mode"], "payment");
    assert_eq!(c.metadata["stripe_livemode"], true);
}

#[test]
fn subscription_checkout_session_is_keyed_by_its_first_invoice_like_the_invoice_paid_event() {
    let s = session(json!({
        "mode": "subscription",
        "payment_intent": null,
        "invoice": "in_1OqA",
        "subscription": "sub_1OqA",
        "metadata": {}
    }));
    let c = conversion(read(&event("checkout.session.completed", s)));
    assert_eq!(c.external_id, "in_1OqA");
    assert_eq!(
        c.refs,
        vec!["cs_live_a1B2c3D4".to_owned(), "sub_1OqA".to_owned()]
    );
    let inv = conversion(read(&event(
        "invoice.paid",
        invoice(json!({"billing_reason": "subscription_create"})),
    )));
    assert_eq!(inv.external_id, c.external_id);
}

#[test]
fn checkout_client_reference_id_is_a_click_id_when_it_parses_as_one_else_an_anonymous_id() {
    let s = session(json!({"client_reference_id": CLICK, "metadata": {}}));
    let c = conversion(read(&event("checkout.session.completed", s)));
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
    assert_eq!(c.ids.anonymous_id, None);

    let s = session(json!({"client_reference_id": "a4f1c2d3-anon", "metadata": {}}));
    let c = conversion(read(&event("checkout.session.completed", s)));
    assert_eq!(c.click_id, None);
    assert_eq!(c.ids.anonymous_id.as_deref(), Some("a4f1c2d3-anon"));
}

#[test]
fn checkout_click_id_falls_back_to_an_expanded_customers_metadata() {
    let s = session(json!({
        "metadata": {},
        "customer": {"id": "cus_X", "object": "customer", "metadata": {"tribute_click_id": CLICK}},
        "customer_details": null,
        "customer_email": "buyer@example.com"
    }));
    let c = conversion(read(&event("checkout.session.completed", s)));
    assert_eq!(c.ids.customer_id.as_deref(), Some("cus_X"));
    assert_eq!(c.ids.email.as_deref(), Some("buyer@example.com"));
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
}

#[test]
fn metadata_click_id_that_is_not_a_tribute_click_id_is_dropped_not_refused() {
    let s = session(json!({"metadata": {"tribute_click_id": "not-a-click"}}));
    let c = conversion(read(&event("checkout.session.completed", s)));
    assert_eq!(c.click_id, None);
}

#[test]
fn unpaid_or_free_checkout_sessions_are_ignored() {
    for (case, s) in [
        ("unpaid", session(json!({"payment_status": "unpaid"}))),
        (
            "free",
            session(json!({"payment_status": "no_payment_required", "amount_total": 0})),
        ),
    ] {
        let out = read(&event("checkout.session.completed", s));
        assert!(
            matches!(out.as_slice(), [Inbound::Ignored(_)]),
            "case {case}: {out:?}"
        );
    }
    let s = session(json!({"payment_status": "no_payment_required", "amount_total": 100}));
    assert!(matches!(
        read(&event("checkout.session.completed", s)).as_slice(),
        [Inbound::Conversion(_)]
    ));
}

#[test]
fn delayed_payment_success_is_the_same_conversion_as_the_completed_session() {
    let paid = conversion(read(&event(
        "checkout.session.async_payment_succeeded",
        session(json!({})),
    )));
    let done = conversion(read(&event(
        "checkout.session.completed",
        session(json!({})),
    )));
    assert_eq!(paid.external_id, done.external_id);
}

#[test]
fn checkout_session_errors_name_the_field_path() {
    for (case, s, field) in [
        (
            "no amount",
            session(json!({"amount_total": null})),
            "data.object.amount_total",
        ),
        (
            "fractional amount",
            session(json!({"amount_total": 12.5})),
            "data.object.amount_total",
        ),
        (
            "negative amount",
            session(json!({"amount_total": -1})),
            "data.object.amount_total",
        ),
        (
            "unknown currency",
            session(json!({"currency": "zzz"})),
            "data.object.currency",
        ),
    ] {
        let err = stripe::interpret(&event("checkout.session.completed", s)).expect_err(case);
        assert_eq!(err.field, field, "case {case}");
    }
}

fn invoice(overrides: Value) -> Value {
    let mut inv = json!({
        "id": "in_1OqA",
        "object": "invoice",
        "amount_due": 2900,
        "amount_paid": 2900,
        "amount_remaining": 0,
        "billing_reason": "subscription_cycle",
        "charge": "ch_3OqB",
        "created": 1_700_000_000,
        "currency": "usd",
        "customer": "cus_PQR123",
        "customer_email": "jenny@example.com",
        "metadata": {},
        "paid": true,
        "payment_intent": "pi_3OqB",
        "status": "paid",
        "status_transitions": {"finalized_at": 1_700_000_010, "paid_at": 1_700_000_020},
        "subscription": "sub_1OqA",
        "subscription_details": {"metadata": {"tribute_click_id": CLICK}},
        "lines": {
            "object": "list",
            "data": [{
                "id": "il_1OqA",
                "object": "line_item",
                "amount": 2900,
                "currency": "usd",
                "description": "1 × Pro (at $29.00 / month)",
                "metadata": {},
                "price": {"id": "price_1Pro", "object": "price", "product": "prod_Pro", "unit_amount": 2900},
                "quantity": 1,
                "type": "subscription"
            }],
            "has_more": false,
            "total_count": 1
        }
    });
    for (k, v) in overrides.as_object().unwrap() {
        inv[k] = v.clone();
    }
    inv
}

#[test]
fn subscriptions_later_invoice_is_a_recurring_conversion_found_by_its_subscription_click_id() {
    let c = conversion(read(&event("invoice.paid", invoice(json!({})))));
    assert_eq!(c.external_id, "in_1OqA");
    assert_eq!(c.value, 2900);
    assert_eq!(c.currency, "USD");
    assert_eq!(c.refs, vec!["pi_3OqB", "ch_3OqB", "sub_1OqA"]);
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
    assert_eq!(c.ids.customer_id.as_deref(), Some("cus_PQR123"));
    assert_eq!(c.ids.email.as_deref(), Some("jenny@example.com"));
    assert_eq!(c.metadata["recurring"], true);
    assert_eq!(c.metadata["billing_reason"], "subscription_cycle");
    assert_eq!(c.occurred_at, Utc.timestamp_opt(1_700_000_020, 0).single());
    assert_eq!(c.products.len(), 1);
    assert_eq!(c.products[0].sku, "prod_Pro");
    assert_eq!(c.products[0].amount, 2900);
}

#[test]
fn first_invoice_of_a_subscription_is_not_recurring() {
    let c = conversion(read(&event(
        "invoice.paid",
        invoice(json!({"billing_reason": "subscription_create"})),
    )));
    assert_eq!(c.metadata["recurring"], false);
}

#[test]
fn newer_invoices_without_payment_ids_read_the_subscription_from_their_parent() {
    let inv = invoice(json!({
        "charge": null, "payment_intent": null, "subscription": null,
        "subscription_details": null,
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": "sub_9", "metadata": {"tribute_click_id": CLICK}}},
        "lines": {"object": "list", "data": [{"id": "il_1", "amount": 2900, "quantity": 1,
                   "pricing": {"price_details": {"price": "price_1", "product": "prod_New"}}}]}
    }));
    let c = conversion(read(&event("invoice.paid", inv)));
    assert_eq!(c.refs, vec!["sub_9"]);
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
    assert_eq!(c.products[0].sku, "prod_New");
}

#[test]
fn invoice_click_id_falls_back_to_its_lines_metadata() {
    let mut inv = invoice(json!({"subscription_details": {"metadata": {}}}));
    inv["lines"]["data"][0]["metadata"] = json!({"tribute_click_id": CLICK});
    assert_eq!(
        conversion(read(&event("invoice.paid", inv)))
            .click_id
            .as_deref(),
        Some(CLICK)
    );
}

#[test]
fn invoice_with_a_credit_line_reports_no_products_rather_than_a_partial_list() {
    let mut inv = invoice(json!({}));
    inv["lines"]["data"].as_array_mut().unwrap().push(
        json!({"id": "il_credit", "amount": -500, "quantity": 1, "price": {"product": "prod_Pro"}}),
    );
    assert!(conversion(read(&event("invoice.paid", inv)))
        .products
        .is_empty());
}

#[test]
fn zero_amount_invoice_is_ignored() {
    let out = read(&event("invoice.paid", invoice(json!({"amount_paid": 0}))));
    assert_eq!(out, vec![Inbound::Ignored("zero-amount invoice".into())]);
}

fn charge(overrides: Value) -> Value {
    let mut ch = json!({
        "id": "ch_3OqC",
        "object": "charge",
        "amount": 10000,
        "amount_captured": 10000,
        "amount_refunded": 2500,
        "currency": "eur",
        "customer": "cus_PQR123",
        "invoice": null,
        "paid": true,
        "payment_intent": "pi_3OqC",
        "refunded": false,
        "status": "succeeded"
    });
    for (k, v) in overrides.as_object().unwrap() {
        ch[k] = v.clone();
    }
    ch
}

#[test]
fn partial_refund_listed_on_the_charge_is_one_refund_of_its_amount() {
    let ch = charge(
        json!({"refunds": {"object": "list", "has_more": false, "data": [
            {"id": "re_3OqC1", "object": "refund", "amount": 2500, "charge": "ch_3OqC", "currency": "eur",
             "payment_intent": "pi_3OqC", "reason": "requested_by_customer", "status": "succeeded"}
        ]}}),
    );
    match read(&event("charge.refunded", ch)).as_slice() {
        [Inbound::Refund(r)] => {
            assert_eq!(r.external_id, "re_3OqC1");
            assert_eq!(r.of, vec!["pi_3OqC", "ch_3OqC"]);
            assert_eq!(r.amount, 2500);
            assert_eq!(r.currency, "EUR");
            assert_eq!(r.kind, RefundKind::Refund);
            assert_eq!(r.reason, "refunded in Stripe: requested_by_customer");
            assert!(!r.cumulative);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn second_partial_refund_lists_both_refunds_and_failed_ones_are_skipped() {
    let ch = charge(json!({"amount_refunded": 4000, "refunds": {"data": [
        {"id": "re_2", "amount": 1500, "currency": "eur", "status": "succeeded"},
        {"id": "re_x", "amount": 700, "currency": "eur", "status": "failed"},
        {"id": "re_1", "amount": 2500, "currency": "eur", "status": "succeeded"}
    ]}}));
    let ids: Vec<_> = read(&event("charge.refunded", ch))
        .into_iter()
        .map(|i| match i {
            Inbound::Refund(r) => (r.external_id, r.amount),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        vec![("re_2".to_owned(), 1500), ("re_1".to_owned(), 2500)]
    );
}

#[test]
fn refund_on_a_charge_that_lists_no_refunds_is_the_cumulative_amount_refunded() {
    let ch = charge(json!({"invoice": "in_1OqA"}));
    match read(&event("charge.refunded", ch)).as_slice() {
        [Inbound::Refund(r)] => {
            assert_eq!(r.external_id, "ch_3OqC:refunded:2500");
            assert_eq!(r.of, vec!["pi_3OqC", "in_1OqA", "ch_3OqC"]);
            assert_eq!(r.amount, 2500);
            assert!(r.cumulative);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dispute_is_a_chargeback_of_its_payment() {
    let dp = json!({
        "id": "dp_1OqD",
        "object": "dispute",
        "amount": 10000,
        "charge": "ch_3OqC",
        "created": 1_700_000_000,
        "currency": "eur",
        "is_charge_refundable": false,
        "payment_intent": "pi_3OqC",
        "reason": "fraudulent",
        "status": "needs_response"
    });
    match read(&event("charge.dispute.created", dp)).as_slice() {
        [Inbound::Refund(r)] => {
            assert_eq!(r.external_id, "dp_1OqD");
            assert_eq!(r.of, vec!["pi_3OqC", "ch_3OqC"]);
            assert_eq!(r.amount, 10000);
            assert_eq!(r.currency, "EUR");
            assert_eq!(r.kind, RefundKind::Chargeback);
            assert_eq!(r.reason, "disputed in Stripe: fraudulent");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn customer_with_a_click_id_identifies_its_customer_id_and_email_together() {
    let cus = json!({
        "id": "cus_PQR123",
        "object": "customer",
        "email": "jenny@example.com",
        "metadata": {"tribute_click_id": CLICK, "tribute_anonymous_id": "anon-7"},
        "name": "Jenny Rosen"
    });
    match read(&event("customer.created", cus)).as_slice() {
        [Inbound::Identify(i)] => {
            assert_eq!(i.external_id, "cus_PQR123");
            assert_eq!(i.ids.customer_id.as_deref(), Some("cus_PQR123"));
            assert_eq!(i.ids.email.as_deref(), Some("jenny@example.com"));
            assert_eq!(i.ids.anonymous_id.as_deref(), Some("anon-7"));
            assert_eq!(i.click_id.as_deref(), Some(CLICK));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn customer_with_nothing_to_link_is_ignored() {
    let cus = json!({"id": "cus_1", "object": "customer", "email": null, "metadata": {}});
    assert!(matches!(
        read(&event("customer.updated", cus)).as_slice(),
        [Inbound::Ignored(_)]
    ));
}

#[test]
fn other_event_types_are_ignored_naming_the_type() {
    let out = read(&event("payment_intent.created", json!({"id": "pi_1"})));
    assert_eq!(
        out,
        vec![Inbound::Ignored(
            "stripe event type payment_intent.created is not acted on".into()
        )]
    );
}

#[test]
fn event_without_a_data_object_names_it() {
    let err = stripe::interpret(&json!({"id": "evt_1", "type": "invoice.paid"})).unwrap_err();
    assert_eq!(err.field, "data.object");
}

#[test]
fn stripe_settings_accept_nothing_but_an_empty_mapping() {
    assert!(stripe::check_settings(&Value::Null).is_ok());
    assert!(stripe::check_settings(&json!({})).is_ok());
    assert_eq!(
        stripe::check_settings(&json!({"currency": "EUR"}))
            .unwrap_err()
            .field,
        "mapping.currency"
    );
}

#[test]
fn interpret_reads_raw_bytes_and_refuses_what_is_not_json() {
    let body = serde_json::to_vec(&event("invoice.paid", invoice(json!({})))).unwrap();
    let out = interpret(IntegrationKind::Stripe, &Value::Null, None, &body).unwrap();
    assert!(matches!(out.as_slice(), [Inbound::Conversion(_)]));
    let err = interpret(IntegrationKind::Stripe, &Value::Null, None, b"<xml/>").unwrap_err();
    assert_eq!(err.field, "body");
}

#[test]
fn provider_metadata_a_conversion_would_refuse_is_dropped_and_tributes_own_facts_win() {
    let inv =
        invoice(json!({"metadata": {"recurring": "no", "note": "x".repeat(501), "team": "blue"}}));
    let c = conversion(read(&event("invoice.paid", inv)));
    assert_eq!(c.metadata["recurring"], true);
    assert!(!c.metadata.contains_key("note"));
    assert_eq!(c.metadata["team"], "blue");
}
