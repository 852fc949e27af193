//! Tests of [`super::hubspot`]: workflow webhooks of deals, flat, as CRM
//! objects and in the legacy nested form, and app subscription events.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::{hubspot, Inbound, InboundConversion};

const CLICK: &str = "clk_00ABCdef12345678ghijkl";

fn conversions(settings: &Value, json: &Value) -> Vec<InboundConversion> {
    hubspot::interpret(settings, json)
        .unwrap()
        .into_iter()
        .map(|i| match i {
            Inbound::Conversion(c) => c,
            other => panic!("expected a conversion, got {other:?}"),
        })
        .collect()
}

#[test]
fn flat_won_deal_becomes_a_conversion_in_major_units() {
    let deal = json!({
        "hs_object_id": "9876543210",
        "dealname": "ACME renewal",
        "dealstage": "closedwon",
        "pipeline": "default",
        "amount": "1200.50",
        "deal_currency_code": "EUR",
        "email": "buyer@acme.example",
        "tribute_click_id": CLICK,
        "closedate": "1709287200000"
    });
    let c = &conversions(&Value::Null, &deal)[0];
    assert_eq!(c.external_id, "hubspot-deal:9876543210");
    assert_eq!(c.value, 120050);
    assert_eq!(c.currency, "EUR");
    assert_eq!(c.ids.email.as_deref(), Some("buyer@acme.example"));
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
    assert_eq!(
        c.occurred_at,
        Utc.timestamp_millis_opt(1_709_287_200_000).single()
    );
    assert_eq!(c.metadata["hubspot_pipeline"], "default");
}

#[test]
fn legacy_nested_deal_is_read_from_its_property_values() {
    let deal = json!({
        "portalId": 62515,
        "objectType": "DEAL",
        "objectId": 1234567,
        "isDeleted": false,
        "properties": {
            "dealname": {"value": "Big deal", "timestamp": 1709287200000u64, "source": "CRM_UI", "versions": []},
            "dealstage": {"value": "closedwon", "timestamp": 1709287200000u64, "source": "CRM_UI", "versions": []},
            "amount": {"value": "980", "timestamp": 1709287200000u64, "source": "CRM_UI", "versions": []},
            "deal_currency_code": {"value": "USD", "timestamp": 1709287200000u64, "source": "CRM_UI", "versions": []},
            "closedate": {"value": "1709287200000", "timestamp": 1709287200000u64, "source": "CRM_UI", "versions": []},
            "email": {"value": "", "timestamp": 1709287200000u64, "source": "CRM_UI", "versions": []}
        }
    });
    let c = &conversions(&Value::Null, &deal)[0];
    assert_eq!(c.external_id, "hubspot-deal:1234567");
    assert_eq!((c.value, c.currency.as_str()), (98000, "USD"));
    assert_eq!(c.ids.email, None, "a blank property is absent");
}

#[test]
fn crm_object_shaped_deal_with_numeric_amount_is_read() {
    let deal = json!({"id": "55", "properties": {"hs_object_id": "55", "dealstage": "closedwon", "amount": 99.9}});
    let c = &conversions(&json!({"default_currency": "GBP"}), &deal)[0];
    assert_eq!(c.external_id, "hubspot-deal:55");
    assert_eq!((c.value, c.currency.as_str()), (9990, "GBP"));
}

#[test]
fn array_of_deals_reads_each_and_names_the_failing_one() {
    let deals = json!([
        {"dealId": 1, "dealstage": "closedwon", "amount": "10", "deal_currency_code": "EUR"},
        {"dealId": 2, "dealstage": "appointmentscheduled", "amount": "10", "deal_currency_code": "EUR"}
    ]);
    let out = hubspot::interpret(&Value::Null, &deals).unwrap();
    assert!(
        matches!(
            out.as_slice(),
            [Inbound::Conversion(_), Inbound::Ignored(_)]
        ),
        "{out:?}"
    );

    let bad = json!([
        {"dealId": 1, "dealstage": "closedwon", "amount": "10", "deal_currency_code": "EUR"},
        {"dealId": 2, "dealstage": "closedwon", "amount": "ten", "deal_currency_code": "EUR"}
    ]);
    assert_eq!(
        hubspot::interpret(&Value::Null, &bad).unwrap_err().field,
        "[1].amount"
    );
}

#[test]
fn custom_property_names_and_won_stages_are_honoured() {
    let settings = json!({
        "won_stage": ["closedwon", "12345678"],
        "amount_property": "net_value",
        "currency_property": "ccy",
        "email_property": "contact_email",
        "click_id_property": "tid"
    });
    let deal = json!({"hs_object_id": 7, "dealstage": "12345678", "net_value": "50", "ccy": "CHF",
                      "contact_email": "a@b.example", "tid": CLICK, "amount": "999"});
    let c = &conversions(&settings, &deal)[0];
    assert_eq!((c.value, c.currency.as_str()), (5000, "CHF"));
    assert_eq!(c.ids.email.as_deref(), Some("a@b.example"));
    assert_eq!(c.click_id.as_deref(), Some(CLICK));
}

#[test]
fn deal_in_another_stage_is_ignored() {
    let deal = json!({"hs_object_id": "1", "dealstage": "contractsent", "amount": "10"});
    let out = hubspot::interpret(&Value::Null, &deal).unwrap();
    assert!(matches!(out.as_slice(), [Inbound::Ignored(r)] if r.contains("contractsent")));
}

#[test]
fn won_deal_without_a_currency_or_default_names_the_currency_property() {
    let deal = json!({"hs_object_id": "1", "dealstage": "closedwon", "amount": "10"});
    let err = hubspot::interpret(&Value::Null, &deal).unwrap_err();
    assert_eq!(err.field, "deal_currency_code");
    let deal = json!({"hs_object_id": "1", "dealstage": "closedwon", "deal_currency_code": "EUR"});
    assert_eq!(
        hubspot::interpret(&Value::Null, &deal).unwrap_err().field,
        "amount"
    );
}

#[test]
fn app_subscription_events_are_ignored_saying_to_use_a_workflow_webhook() {
    let events = json!([{
        "eventId": 100, "subscriptionId": 1234, "portalId": 62515, "appId": 1160452,
        "occurredAt": 1709287200000u64, "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0, "objectId": 123, "changeSource": "CRM_UI",
        "propertyName": "dealstage", "propertyValue": "closedwon"
    }]);
    match hubspot::interpret(&Value::Null, &events)
        .unwrap()
        .as_slice()
    {
        [Inbound::Ignored(reason)] => {
            assert!(
                reason.contains("no deal amount") && reason.contains("workflow"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hubspot_settings_are_checked_naming_the_key() {
    assert!(hubspot::check_settings(&Value::Null).is_ok());
    assert!(
        hubspot::check_settings(&json!({"won_stage": "closedwon", "default_currency": "eur"}))
            .is_ok()
    );
    for (case, settings, field) in [
        ("unknown key", json!({"stage": "x"}), "mapping.stage"),
        (
            "bad currency",
            json!({"default_currency": "EURO"}),
            "mapping.default_currency",
        ),
        (
            "empty stage list",
            json!({"won_stage": []}),
            "mapping.won_stage",
        ),
        (
            "blank property",
            json!({"amount_property": " "}),
            "mapping.amount_property",
        ),
    ] {
        assert_eq!(
            hubspot::check_settings(&settings).unwrap_err().field,
            field,
            "case {case}"
        );
    }
}
