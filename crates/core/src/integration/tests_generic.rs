//! Tests of [`super::generic`]: a CRM's payloads read through mappings.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{generic, Inbound, RefundKind};

const CLICK: &str = "clk_00ABCdef12345678ghijkl";

fn crm_mapping() -> Value {
    json!({
        "external_id": "/deal/id",
        "kind": "/event",
        "kind_values": {"deal.won": "conversion", "deal.refunded": "refund", "contact.created": "lead"},
        "value": "/deal/amount",
        "value_unit": "major",
        "currency": "/deal/currency",
        "default_currency": "USD",
        "email": "/contact/email",
        "user_id": "/contact/id",
        "click_id": "/contact/custom/tid",
        "coupon": "/deal/promo",
        "occurred_at": "/deal/closed_at",
        "refund_of": "/deal/order_ref",
        "metadata": "/deal/custom"
    })
}

fn crm_payload(event: &str) -> Value {
    json!({
        "event": event,
        "deal": {
            "id": "D-1042",
            "amount": "1499.90",
            "currency": "eur",
            "promo": "PARTNER15",
            "closed_at": "2024-03-01T12:00:00Z",
            "order_ref": "D-1042",
            "custom": {"segment": "enterprise", "seats": 25, "score": 0.5, "nested": {"x": 1}}
        },
        "contact": {"id": 77, "email": "cto@bigco.example", "custom": {"tid": CLICK}}
    })
}

fn one(settings: &Value, json: &Value) -> Inbound {
    let mut out = generic::interpret(settings, json).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

#[test]
fn crm_deal_won_in_major_units_becomes_a_conversion() {
    let Inbound::Conversion(c) = one(&crm_mapping(), &crm_payload("deal.won")) else {
        panic!("not a conversion");
    };
    assert_eq!(c.external_id, "D-1042");
    assert_eq!(c.value, 149990);
    assert_eq!(c.currency, "EUR");
    assert_eq!(c.ids.email.as_deref(), Some("cto@bigco.example"));
    assert_eq!(c.ids.user_id.as_deref(), Some("77"));
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
    assert_eq!(c.coupon.as_deref(), Some("PARTNER15"));
    assert_eq!(
        c.occurred_at,
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).single()
    );
    assert_eq!(
        c.metadata.len(),
        2,
        "strings, whole numbers, booleans only: {:?}",
        c.metadata
    );
    assert_eq!(c.metadata["segment"], "enterprise");
    assert_eq!(c.metadata["seats"], 25);
}

#[test]
fn crm_refund_refunds_the_order_at_refund_of() {
    let mut payload = crm_payload("deal.refunded");
    payload["deal"]["id"] = json!("R-9");
    payload["deal"]["amount"] = json!(200);
    let Inbound::Refund(r) = one(&crm_mapping(), &payload) else {
        panic!("not a refund");
    };
    assert_eq!(r.external_id, "R-9");
    assert_eq!(r.of, vec!["D-1042"]);
    assert_eq!((r.amount, r.currency.as_str()), (20000, "EUR"));
    assert_eq!(r.kind, RefundKind::Refund);
    assert!(!r.cumulative);
}

#[test]
fn refund_without_refund_of_refunds_the_order_named_by_its_own_id() {
    let settings = json!({"external_id": "/order", "value": "/cents", "default_currency": "EUR",
                          "default_kind": "refund"});
    let Inbound::Refund(r) = one(&settings, &json!({"order": 17, "cents": 500})) else {
        panic!("not a refund");
    };
    assert_eq!(
        (r.external_id.as_str(), r.of.as_slice()),
        ("17", &["17".to_owned()][..])
    );
    assert_eq!(r.amount, 500);
}

#[test]
fn crm_contact_created_is_a_lead() {
    let Inbound::Lead(l) = one(&crm_mapping(), &crm_payload("contact.created")) else {
        panic!("not a lead");
    };
    assert_eq!(l.external_id, "D-1042");
    assert_eq!(l.ids.email.as_deref(), Some("cto@bigco.example"));
    assert_eq!(l.click_id.as_deref(), Some(CLICK));
}

#[test]
fn unmapped_or_missing_kind_is_ignored_and_literal_kind_names_are_understood() {
    let out = one(&crm_mapping(), &crm_payload("deal.lost"));
    assert!(
        matches!(out, Inbound::Ignored(ref r) if r.contains("deal.lost")),
        "{out:?}"
    );
    let mut payload = crm_payload("x");
    payload.as_object_mut().unwrap().remove("event");
    assert!(matches!(one(&crm_mapping(), &payload), Inbound::Ignored(_)));
    assert!(matches!(one(&crm_mapping(), &crm_payload("chargeback")),
        Inbound::Refund(ref r) if r.kind == RefundKind::Chargeback));
    assert!(matches!(
        one(&crm_mapping(), &crm_payload("conversion")),
        Inbound::Conversion(_)
    ));
}

#[test]
fn minor_units_are_the_default_and_unix_seconds_are_a_time() {
    let settings = json!({"external_id": "/id", "value": "/total", "currency": "/cur",
                          "occurred_at": "/ts"});
    let Inbound::Conversion(c) = one(
        &settings,
        &json!({"id": "o1", "total": "1250", "cur": "JPY", "ts": 1_700_000_000}),
    ) else {
        panic!("not a conversion");
    };
    assert_eq!((c.value, c.currency.as_str()), (1250, "JPY"));
    assert_eq!(c.occurred_at, Utc.timestamp_opt(1_700_000_000, 0).single());
}

#[test]
fn missing_or_bad_body_values_name_the_pointer() {
    let settings = crm_mapping();
    for (case, edit, field) in [
        ("no id", "/deal/id", "body/deal/id"),
        ("no amount", "/deal/amount", "body/deal/amount"),
    ] {
        let mut p = crm_payload("deal.won");
        *p.pointer_mut(edit).unwrap() = Value::Null;
        assert_eq!(
            generic::interpret(&settings, &p).unwrap_err().field,
            field,
            "case {case}"
        );
    }
    for (case, path, value, field) in [
        (
            "too many decimals",
            "/deal/amount",
            json!("1499.905"),
            "body/deal/amount",
        ),
        ("negative", "/deal/amount", json!(-5), "body/deal/amount"),
        (
            "bad currency",
            "/deal/currency",
            json!("EURO"),
            "body/deal/currency",
        ),
        (
            "bad time",
            "/deal/closed_at",
            json!("soon"),
            "body/deal/closed_at",
        ),
    ] {
        let mut p = crm_payload("deal.won");
        *p.pointer_mut(path).unwrap() = value;
        assert_eq!(
            generic::interpret(&settings, &p).unwrap_err().field,
            field,
            "case {case}"
        );
    }
}

#[test]
fn default_currency_applies_when_the_body_has_none() {
    let mut p = crm_payload("deal.won");
    p["deal"]["currency"] = Value::Null;
    let Inbound::Conversion(c) = one(&crm_mapping(), &p) else {
        panic!()
    };
    assert_eq!(c.currency, "USD");
}

#[test]
fn generic_mapping_is_checked_naming_the_key() {
    assert!(generic::check_settings(&crm_mapping()).is_ok());
    let with = |k: &str, v: Value| {
        let mut m = crm_mapping();
        m[k] = v;
        m
    };
    let without = |k: &str| {
        let mut m = crm_mapping();
        m.as_object_mut().unwrap().remove(k);
        m
    };
    for (case, settings, field) in [
        ("no mapping", Value::Null, "mapping"),
        (
            "no external id",
            without("external_id"),
            "mapping.external_id",
        ),
        ("no value", without("value"), "mapping.value"),
        (
            "pointer without slash",
            with("email", json!("contact.email")),
            "mapping.email",
        ),
        (
            "bad unit",
            with("value_unit", json!("cents")),
            "mapping.value_unit",
        ),
        (
            "bad kind",
            with("kind_values", json!({"won": "sale"})),
            "mapping.kind_values.won",
        ),
        (
            "bad default kind",
            with("default_kind", json!("sale")),
            "mapping.default_kind",
        ),
        (
            "bad currency",
            with("default_currency", json!("XYZ")),
            "mapping.default_currency",
        ),
        ("unknown key", with("amount", json!("/a")), "mapping.amount"),
        (
            "bad header",
            with("signature_header", json!("x sig")),
            "mapping.signature_header",
        ),
        (
            "short tolerance",
            with("tolerance_seconds", json!(10)),
            "mapping.tolerance_seconds",
        ),
    ] {
        assert_eq!(
            generic::check_settings(&settings).unwrap_err().field,
            field,
            "case {case}"
        );
    }
    let leads_only = json!({"external_id": "/id", "default_kind": "lead", "email": "/email"});
    assert!(generic::check_settings(&leads_only).is_ok());
}

proptest! {
    #[test]
    fn major_and_minor_units_agree_for_any_amount(minor in 0i64..=1_000_000_000_000, as_number: bool) {
        let major = format!("{}.{:02}", minor / 100, minor % 100);
        let read = |unit: &str, value: Value| {
            let settings = json!({"external_id": "/id", "value": "/v", "value_unit": unit,
                                  "default_currency": "USD"});
            match generic::interpret(&settings, &json!({"id": "o", "v": value})).unwrap().remove(0) {
                Inbound::Conversion(c) => c.value,
                other => panic!("{other:?}"),
            }
        };
        let minor_value = if as_number { json!(minor) } else { json!(minor.to_string()) };
        prop_assert_eq!(read("major", json!(major)), minor);
        prop_assert_eq!(read("minor", minor_value), minor);
    }
}
