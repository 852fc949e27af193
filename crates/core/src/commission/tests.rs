//! Table-driven tests of rule parsing, each rule kind, durations and
//! conditions (and the helpers the other commission tests share).

use chrono::{DateTime, Months, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::*;
use crate::ids::{PartnerId, ProgramId};
use crate::money::{Currency, Money};
use crate::tracking::Product;

pub(super) fn program() -> ProgramId {
    ProgramId::parse("prg_test").unwrap()
}

pub(super) fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

pub(super) fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

pub(super) fn sale(value: i64) -> ConversionFacts {
    ConversionFacts {
        program_id: program(),
        event: RuleEvent::Sale,
        value: Money::new(value, eur()),
        reported_currency: eur(),
        products: Vec::new(),
        first_payment_at: None,
        paid_at: day(2025, 1, 15),
        metadata: Map::new(),
        customer_country: None,
        customer_source: None,
        units: 1,
    }
}

pub(super) fn partner(id: &str) -> PartnerFacts {
    PartnerFacts::new(PartnerId::parse(id).unwrap())
}

/// A stored rule from the API shape, under `id`, version 1.
pub(super) fn rule(id: &str, terms: Value) -> RewardRule {
    let mut v = terms;
    let obj = v.as_object_mut().unwrap();
    obj.insert("id".into(), json!(id));
    obj.insert("program_id".into(), json!(program()));
    obj.insert("version".into(), json!(1));
    obj.entry("name").or_insert(json!(id));
    RewardRule::from_json(&v).unwrap_or_else(|e| panic!("rule {id}: {e}"))
}

pub(super) fn pct(id: &str, bps: u32) -> RewardRule {
    rule(
        id,
        json!({"event": "sale", "kind": "percentage", "rate_bps": bps, "duration": "lifetime"}),
    )
}

pub(super) fn amount_of(
    rules: &[RewardRule],
    conv: &ConversionFacts,
    p: &PartnerFacts,
) -> Option<i64> {
    decide(rules, conv, p).unwrap().map(|c| c.amount.minor)
}

fn line(sku: &str, quantity: i64, amount: i64) -> Product {
    Product {
        sku: sku.into(),
        quantity,
        amount,
    }
}

#[test]
fn rules_read_back_what_they_write() {
    let r = rule(
        "rwr_a",
        json!({"event": "sale", "kind": "fixed", "amount": 500, "duration": {"months": 12},
               "conditions": {"all": [{"field": "sale.sku", "op": "in", "value": ["pro"]},
                                      {"any": [{"field": "customer.country", "op": "eq", "value": "de"},
                                               {"field": "sale.metadata.plan", "op": "gte", "value": 3}]}]},
               "scope": {"group": "agencies"}, "cap": {"amount": 10000, "period": "month"}}),
    );
    assert_eq!(RewardRule::from_json(&r.to_json()).unwrap(), r);
    let via_serde: RewardRule = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(via_serde, r);
    assert_eq!(r.terms.duration, Duration::Months(12));
    assert_eq!(r.terms.scope, Scope::Group("agencies".into()));
}

#[test]
fn bad_rules_name_the_field_that_is_wrong() {
    let base = json!({"name": "r", "event": "sale", "kind": "percentage", "rate_bps": 1000});
    let cases: &[(&str, Value, &str)] = &[
        ("no event", json!({"event": null}), "event"),
        ("unknown event", json!({"event": "refund"}), "event"),
        ("unknown kind", json!({"kind": "tiered"}), "kind"),
        ("rate over 100%", json!({"rate_bps": 10001}), "rate_bps"),
        ("negative rate", json!({"rate_bps": -1}), "rate_bps"),
        ("amount on a percentage", json!({"amount": 5}), "amount"),
        (
            "fixed without amount",
            json!({"kind": "fixed", "rate_bps": null}),
            "amount",
        ),
        (
            "rate on a fixed rule",
            json!({"kind": "fixed", "amount": 5}),
            "rate_bps",
        ),
        (
            "zero months",
            json!({"duration": {"months": 0}}),
            "duration.months",
        ),
        (
            "unknown duration",
            json!({"duration": "forever"}),
            "duration",
        ),
        (
            "duration on a lead",
            json!({"event": "lead", "duration": "once"}),
            "duration",
        ),
        ("blank name", json!({"name": " "}), "name"),
        ("unknown field", json!({"rate": 5}), "rate"),
        ("bad scope", json!({"scope": {"team": "x"}}), "scope"),
        (
            "wrong id kind",
            json!({"scope": {"partner_id": "lnk_x"}}),
            "scope.partner_id",
        ),
        (
            "cap period",
            json!({"cap": {"amount": 5, "period": "year"}}),
            "cap.period",
        ),
        (
            "negative cap",
            json!({"cap": {"amount": -5, "period": "day"}}),
            "cap.amount",
        ),
        (
            "unknown condition field",
            json!({"conditions": {"all": [{"field": "sale.colour", "op": "eq", "value": "red"}]}}),
            "conditions.all[0].field",
        ),
        (
            "ordering a text",
            json!({"conditions": {"any": [{"field": "sale.sku", "op": "gt", "value": "a"}]}}),
            "conditions.any[0].op",
        ),
        (
            "a list for a number",
            json!({"conditions": {"field": "sale.value", "op": "in", "value": [1]}}),
            "conditions.op",
        ),
        (
            "text for a number",
            json!({"conditions": {"field": "sale.value", "op": "gt", "value": "10"}}),
            "conditions.value",
        ),
        (
            "bad currency in a list",
            json!({"conditions": {"field": "sale.currency", "op": "in", "value": ["EUR", "EURO"]}}),
            "conditions.value[1]",
        ),
        (
            "bad payment kind",
            json!({"conditions": {"field": "sale.payment", "op": "eq", "value": "renewal"}}),
            "conditions.value",
        ),
        (
            "empty group",
            json!({"conditions": {"all": []}}),
            "conditions.all",
        ),
        (
            "all and any together",
            json!({"conditions": {"all": [], "any": []}}),
            "conditions",
        ),
        (
            "too deep",
            json!({"conditions": {"all": [{"any": [{"all": [{"any": [{"all": [{"any": [
                {"field": "sale.value", "op": "gt", "value": 1}]}]}]}]}]}]}}),
            "conditions.all[0].any[0].all[0].any[0].all[0]",
        ),
    ];
    for (case, patch, field) in cases {
        let mut v = base.clone();
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        let err = RuleTerms::from_json(&v).expect_err(case);
        assert_eq!(err.field, *field, "case {case}: {err}");
    }
}

#[test]
fn each_rule_kind_pays_what_it_says_rounding_half_up() {
    let mut conv = sale(0);
    conv.products = vec![line("pro", 1, 1005), line("team", 3, 3002)];
    let fixed_per_unit = json!({"field": "sale.sku", "op": "in", "value": ["pro", "team"]});
    let cases: &[(&str, Value, i64, i64)] = &[
        // (case, terms, value, expected)
        (
            "percentage of the value",
            json!({"kind": "percentage", "rate_bps": 2500}),
            10_000,
            2_500,
        ),
        (
            "a half unit rounds up",
            json!({"kind": "percentage", "rate_bps": 2500}),
            1_002,
            251,
        ),
        (
            "below a half rounds down",
            json!({"kind": "percentage", "rate_bps": 2500}),
            1_001,
            250,
        ),
        (
            "zero percent",
            json!({"kind": "percentage", "rate_bps": 0}),
            1_001,
            0,
        ),
        (
            "fixed ignores the value",
            json!({"kind": "fixed", "amount": 700}),
            123_456,
            700,
        ),
        // 1005·10% = 100.5 → 101; 3002·10% = 300.2 → 300: per line, then summed.
        (
            "percentage line by line",
            json!({"kind": "percentage", "rate_bps": 1000,
            "conditions": fixed_per_unit}),
            4_007,
            401,
        ),
        (
            "fixed per unit of each matching line",
            json!({"kind": "fixed", "amount": 50,
            "conditions": {"field": "sale.sku", "op": "eq", "value": "team"}}),
            4_007,
            150,
        ),
    ];
    for (case, terms, value, expected) in cases {
        let mut t = terms.clone();
        t["event"] = json!("sale");
        let r = rule("rwr_k", t);
        conv.value.minor = *value;
        assert_eq!(
            amount_of(&[r], &conv, &partner("ptn_a")),
            Some(*expected),
            "case {case}"
        );
    }
}

#[test]
fn a_line_rule_explains_each_line_and_skips_a_sale_without_matching_lines() {
    let r = rule(
        "rwr_l",
        json!({"event": "sale", "kind": "percentage", "rate_bps": 1000,
        "conditions": {"field": "sale.sku", "op": "eq", "value": "pro"}}),
    );
    let mut conv = sale(3_000);
    conv.products = vec![line("basic", 1, 1_000), line("pro", 2, 2_000)];
    let c = decide(std::slice::from_ref(&r), &conv, &partner("ptn_a"))
        .unwrap()
        .unwrap();
    assert_eq!(c.explanation.base, 2_000);
    assert_eq!(c.explanation.lines.len(), 1);
    assert_eq!(
        (
            c.explanation.lines[0].index,
            c.explanation.lines[0].commission
        ),
        (1, 200)
    );
    conv.products = vec![line("basic", 1, 3_000)];
    assert_eq!(
        amount_of(std::slice::from_ref(&r), &conv, &partner("ptn_a")),
        None
    );
    conv.products.clear();
    assert_eq!(
        amount_of(&[r], &conv, &partner("ptn_a")),
        None,
        "no lines, no sku"
    );
}

#[test]
fn durations_pay_the_payments_of_a_subscription_they_cover() {
    let first = day(2025, 1, 31);
    // Monthly payments 0..=13 months after the first (Jan 31 → Feb 28 …).
    let payment = |n: u32| first.checked_add_months(Months::new(n)).unwrap();
    let cases: &[(&str, Value, &[u32])] = &[
        ("once", json!("once"), &[0]),
        ("three months", json!({"months": 3}), &[0, 1, 2]),
        (
            "twelve months",
            json!({"months": 12}),
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        ),
        (
            "lifetime",
            json!("lifetime"),
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
        ),
    ];
    for (case, duration, paid) in cases {
        let r = rule(
            "rwr_d",
            json!({"event": "sale", "kind": "fixed", "amount": 100,
            "duration": duration}),
        );
        for n in 0..=13u32 {
            let mut conv = sale(1_000);
            conv.first_payment_at = (n > 0).then_some(first);
            conv.paid_at = payment(n);
            let pays = amount_of(std::slice::from_ref(&r), &conv, &partner("ptn_a")).is_some();
            assert_eq!(pays, paid.contains(&n), "case {case}, payment {n}");
        }
    }
}

#[test]
fn a_currency_condition_reads_the_currency_the_sale_was_reported_in_not_the_converted_one() {
    let usd_only = rule(
        "rwr_usd",
        json!({"event": "sale", "kind": "fixed", "amount": 1,
               "conditions": {"field": "sale.currency", "op": "eq", "value": "USD"}}),
    );
    // Reported in USD, converted into the program's EUR before the rules run.
    let mut converted = sale(5_000);
    converted.reported_currency = Currency::parse("USD").unwrap();
    assert_eq!(converted.value.currency, eur());
    assert!(amount_of(
        std::slice::from_ref(&usd_only),
        &converted,
        &partner("ptn_a")
    )
    .is_some());
    // Reported in EUR: the USD rule does not pay.
    assert!(amount_of(&[usd_only], &sale(5_000), &partner("ptn_a")).is_none());
}

fn facts_for_conditions() -> (ConversionFacts, PartnerFacts) {
    let mut conv = sale(5_000);
    conv.customer_country = Some("de".into());
    conv.metadata.insert("plan".into(), json!("pro"));
    conv.metadata.insert("seats".into(), json!(12));
    let mut p = partner("ptn_a");
    p.tier = Some("gold".into());
    p.group = Some("agencies".into());
    p.revenue_to_date = 90_000;
    (conv, p)
}

#[test]
fn condition_groups_combine_tests_with_and_or_nesting() {
    let t = |field: &str, op: &str, value: Value| json!({"field": field, "op": op, "value": value});
    let cases: Vec<(&str, Value, bool)> = vec![
        (
            "a single true test",
            t("customer.country", "eq", json!("DE")),
            true,
        ),
        (
            "country in lower case input",
            t("customer.country", "in", json!(["fr", "de"])),
            true,
        ),
        (
            "all true",
            json!({"all": [t("partner.tier", "eq", json!("gold")),
            t("sale.value", "gte", json!(5000))]}),
            true,
        ),
        (
            "all with one false",
            json!({"all": [t("partner.tier", "eq", json!("gold")),
            t("sale.value", "gt", json!(5000))]}),
            false,
        ),
        (
            "any with one true",
            json!({"any": [t("partner.group", "eq", json!("influencers")),
            t("sale.metadata.plan", "eq", json!("pro"))]}),
            true,
        ),
        (
            "any all false",
            json!({"any": [t("partner.group", "eq", json!("influencers")),
            t("sale.currency", "ne", json!("EUR"))]}),
            false,
        ),
        (
            "and of ors",
            json!({"all": [
            {"any": [t("customer.country", "eq", json!("FR")), t("partner.revenue", "gt", json!(50000))]},
            {"any": [t("sale.metadata.seats", "gte", json!(10)), t("partner.tier", "eq", json!("silver"))]}]}),
            true,
        ),
        (
            "or of ands",
            json!({"any": [
            {"all": [t("customer.country", "eq", json!("FR")), t("partner.tier", "eq", json!("gold"))]},
            {"all": [t("sale.payment", "eq", json!("recurring")), t("partner.tier", "eq", json!("gold"))]}]}),
            false,
        ),
        ("new payment", t("sale.payment", "eq", json!("new")), true),
        (
            "metadata number as text",
            t("sale.metadata.seats", "eq", json!("12")),
            true,
        ),
        (
            "unknown source never matches ne",
            t("customer.source", "ne", json!("ads")),
            false,
        ),
        (
            "unknown metadata never matches not_in",
            t("sale.metadata.coupon", "not_in", json!(["x"])),
            false,
        ),
        (
            "text metadata is not a number",
            t("sale.metadata.plan", "gt", json!(1)),
            false,
        ),
        (
            "partner conversions",
            t("partner.conversions", "lt", json!(1)),
            true,
        ),
    ];
    let (conv, p) = facts_for_conditions();
    for (case, cond, expected) in cases {
        let r = rule(
            "rwr_c",
            json!({"event": "sale", "kind": "fixed", "amount": 1, "conditions": cond}),
        );
        assert_eq!(
            amount_of(&[r], &conv, &p).is_some(),
            expected,
            "case {case}"
        );
    }
}

#[test]
fn a_fixed_click_reward_pays_every_click_of_a_run_then_the_cap_cuts_the_total() {
    let r = rule(
        "rwr_clicks",
        json!({"name": "per click", "event": "click", "kind": "fixed", "amount": 5,
               "cap": {"amount": 120, "period": "day"}}),
    );
    let mut run = sale(0);
    run.event = RuleEvent::Click;
    run.units = 30;
    let mut p = partner("ptn_a");
    p.multiplier_bps = 15_000;
    let c = decide(std::slice::from_ref(&r), &run, &p).unwrap().unwrap();
    // 30 clicks × 5 = 150, × 1.5 = 225, cut to the day's cap of 120.
    assert_eq!(c.explanation.gross, 150);
    assert_eq!(c.explanation.multiplied, 225);
    assert_eq!(c.amount.minor, 120);
    run.units = 0;
    assert_eq!(decide(&[r], &run, &p).unwrap_err().field, "units");
}
