//! Tests of [`super::shopify`] with REST Admin API webhook payloads.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::{interpret, shopify, Inbound, InboundConversion, IntegrationKind, RefundKind};
use crate::tracking::Product;

const CLICK: &str = "clk_00ABCdef12345678ghijkl";

fn order() -> Value {
    json!({
        "id": 820982911946154508u64,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "app_id": null,
        "browser_ip": "216.191.105.146",
        "buyer_accepts_marketing": false,
        "cancel_reason": null,
        "cancelled_at": null,
        "confirmed": true,
        "contact_email": "jon@example.com",
        "created_at": "2024-03-01T09:58:04-05:00",
        "currency": "USD",
        "current_total_price": "199.65",
        "customer": {
            "id": 115310627314723954u64,
            "email": "john@example.com",
            "first_name": "John",
            "last_name": "Smith",
            "admin_graphql_api_id": "gid://shopify/Customer/115310627314723954"
        },
        "discount_codes": [{"code": "PARTNER10", "amount": "20.00", "type": "percentage"}],
        "email": "jon@example.com",
        "financial_status": "paid",
        "landing_site": "/products/socks?utm_source=x",
        "name": "#9999",
        "note": null,
        "note_attributes": [
            {"name": "gift_wrap", "value": "yes"},
            {"name": "tribute_click_id", "value": CLICK}
        ],
        "order_number": 1000,
        "processed_at": "2024-03-01T10:00:00-05:00",
        "source_name": "web",
        "subtotal_price": "179.60",
        "test": false,
        "total_discounts": "20.00",
        "total_price": "199.65",
        "total_tax": "0.00",
        "line_items": [
            {"id": 487817672276298554u64, "product_id": 788032119674292922u64, "variant_id": 642667041472713922u64,
             "name": "Socks - Small", "price": "59.90", "quantity": 2, "sku": "SOCK-S", "title": "Socks"},
            {"id": 976318377106520349u64, "product_id": 632910392u64, "variant_id": null,
             "name": "Hat", "price": "59.80", "quantity": 1, "sku": "", "title": "Hat"}
        ]
    })
}

fn conversion(json: &Value) -> InboundConversion {
    match shopify::interpret(&Value::Null, "orders/paid", json)
        .unwrap()
        .as_slice()
    {
        [Inbound::Conversion(c)] => c.clone(),
        other => panic!("expected one conversion, got {other:?}"),
    }
}

#[test]
fn paid_order_with_a_discount_code_and_note_attribute_becomes_a_conversion() {
    let c = conversion(&order());
    assert_eq!(c.external_id, "820982911946154508");
    assert_eq!(
        c.refs,
        vec!["gid://shopify/Order/820982911946154508", "#9999"]
    );
    assert_eq!(c.value, 19965);
    assert_eq!(c.currency, "USD");
    assert_eq!(c.ids.email.as_deref(), Some("jon@example.com"));
    assert_eq!(c.ids.customer_id.as_deref(), Some("115310627314723954"));
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
    assert_eq!(c.coupon.as_deref(), Some("PARTNER10"));
    assert_eq!(
        c.occurred_at,
        Utc.with_ymd_and_hms(2024, 3, 1, 15, 0, 0).single()
    );
    assert_eq!(
        c.products,
        vec![
            Product {
                sku: "SOCK-S".into(),
                quantity: 2,
                amount: 11980
            },
            Product {
                sku: "632910392".into(),
                quantity: 1,
                amount: 5980
            },
        ]
    );
    assert_eq!(c.metadata["shopify_source"], "web");
}

#[test]
fn order_without_a_note_attribute_takes_the_tid_of_its_landing_site() {
    for (case, site) in [
        ("path and query", format!("/?utm_source=p&tid={CLICK}")),
        (
            "full url",
            format!("https://shop.example.com/products/x?tid={CLICK}"),
        ),
    ] {
        let mut o = order();
        o["note_attributes"] = json!([]);
        o["landing_site"] = json!(site);
        assert_eq!(
            conversion(&o).click_id.as_deref(),
            Some(CLICK),
            "case {case}"
        );
    }
}

#[test]
fn note_attribute_named_tid_is_read_too() {
    let mut o = order();
    o["note_attributes"] = json!([{"name": "tid", "value": CLICK}]);
    o["landing_site"] = Value::Null;
    assert_eq!(conversion(&o).click_id.as_deref(), Some(CLICK));
}

#[test]
fn order_without_an_email_uses_its_customers_and_without_processed_at_its_creation() {
    let mut o = order();
    o["email"] = json!("");
    o["processed_at"] = Value::Null;
    let c = conversion(&o);
    assert_eq!(c.ids.email.as_deref(), Some("john@example.com"));
    assert_eq!(
        c.occurred_at,
        Utc.with_ymd_and_hms(2024, 3, 1, 14, 58, 4).single()
    );
}

#[test]
fn order_totals_follow_the_currencys_exponent() {
    let mut o = order();
    o["currency"] = json!("JPY");
    o["total_price"] = json!("12000");
    o["line_items"] = json!([]);
    let c = conversion(&o);
    assert_eq!((c.value, c.currency.as_str()), (12000, "JPY"));
}

#[test]
fn order_errors_name_the_field() {
    for (case, key, value, field) in [
        ("no total", "total_price", Value::Null, "total_price"),
        ("junk total", "total_price", json!("ten"), "total_price"),
        ("bad currency", "currency", json!("ZZZ"), "currency"),
        (
            "bad time",
            "processed_at",
            json!("yesterday"),
            "processed_at",
        ),
    ] {
        let mut o = order();
        o[key] = value;
        let err = shopify::interpret(&Value::Null, "orders/paid", &o).expect_err(case);
        assert_eq!(err.field, field, "case {case}");
    }
}

fn refund() -> Value {
    json!({
        "id": 509562969,
        "order_id": 820982911946154508u64,
        "created_at": "2024-03-02T10:00:00-05:00",
        "note": "wrong size",
        "user_id": 548380009,
        "processed_at": "2024-03-02T10:00:00-05:00",
        "restock": true,
        "admin_graphql_api_id": "gid://shopify/Refund/509562969",
        "refund_line_items": [{"id": 104689539, "line_item_id": 487817672276298554u64, "quantity": 1, "subtotal": 59.9}],
        "transactions": [
            {"id": 179259969, "order_id": 820982911946154508u64, "kind": "refund", "gateway": "bogus",
             "status": "success", "amount": "41.94", "currency": "USD"},
            {"id": 179259970, "order_id": 820982911946154508u64, "kind": "refund", "gateway": "bogus",
             "status": "failure", "amount": "10.00", "currency": "USD"},
            {"id": 179259971, "order_id": 820982911946154508u64, "kind": "refund", "gateway": "gift_card",
             "status": "success", "amount": "17.96", "currency": "USD"}
        ],
        "order_adjustments": []
    })
}

#[test]
fn refund_sums_its_successful_refund_transactions() {
    match shopify::interpret(&Value::Null, "refunds/create", &refund())
        .unwrap()
        .as_slice()
    {
        [Inbound::Refund(r)] => {
            assert_eq!(r.external_id, "509562969");
            assert_eq!(r.of, vec!["820982911946154508"]);
            assert_eq!(r.amount, 5990);
            assert_eq!(r.currency, "USD");
            assert_eq!(r.kind, RefundKind::Refund);
            assert_eq!(r.reason, "refunded in Shopify: wrong size");
            assert!(!r.cumulative);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn restock_only_refund_without_a_successful_transaction_is_ignored() {
    let mut r = refund();
    r["transactions"] = json!([]);
    let out = shopify::interpret(&Value::Null, "refunds/create", &r).unwrap();
    assert_eq!(
        out,
        vec![Inbound::Ignored(
            "refund with no successful transaction".into()
        )]
    );
}

#[test]
fn refund_transaction_without_a_currency_is_an_error_naming_it() {
    let mut r = refund();
    r["transactions"][0]["currency"] = Value::Null;
    let err = shopify::interpret(&Value::Null, "refunds/create", &r).unwrap_err();
    assert_eq!(err.field, "transactions[0].currency");
}

#[test]
fn other_topics_are_ignored() {
    for topic in ["orders/create", "orders/cancelled", "customers/create"] {
        let out = shopify::interpret(&Value::Null, topic, &order()).unwrap();
        assert!(
            matches!(out.as_slice(), [Inbound::Ignored(_)]),
            "topic {topic}"
        );
    }
}

#[test]
fn interpret_needs_the_shopify_topic() {
    let body = serde_json::to_vec(&order()).unwrap();
    let err = interpret(IntegrationKind::Shopify, &Value::Null, None, &body).unwrap_err();
    assert_eq!(err.field, "x-shopify-topic");
    let out = interpret(
        IntegrationKind::Shopify,
        &Value::Null,
        Some("orders/paid"),
        &body,
    )
    .unwrap();
    assert!(matches!(out.as_slice(), [Inbound::Conversion(_)]));
}

#[test]
fn shopify_settings_know_only_the_tolerance() {
    assert!(shopify::check_settings(&Value::Null).is_ok());
    assert!(shopify::check_settings(&json!({"tolerance_seconds": 3600})).is_ok());
    for (case, settings, field) in [
        (
            "too short",
            json!({"tolerance_seconds": 5}),
            "mapping.tolerance_seconds",
        ),
        (
            "not a number",
            json!({"tolerance_seconds": "1h"}),
            "mapping.tolerance_seconds",
        ),
        (
            "unknown key",
            json!({"currency": "USD"}),
            "mapping.currency",
        ),
    ] {
        assert_eq!(
            shopify::check_settings(&settings).unwrap_err().field,
            field,
            "case {case}"
        );
    }
}
