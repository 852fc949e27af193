//! Table-driven tests of rule parsing, each rule kind, durations,
//! conditions, precedence, caps, tier multipliers, credit splits and
//! overrides.

use chrono::{DateTime, Months, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::*;
use crate::ids::{CommissionId, LinkId, PartnerId, ProgramId};
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
        products: Vec::new(),
        first_payment_at: None,
        paid_at: day(2025, 1, 15),
        metadata: Map::new(),
        customer_country: None,
        customer_source: None,
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

fn pct(id: &str, bps: u32) -> RewardRule {
    rule(
        id,
        json!({"event": "sale", "kind": "percentage", "rate_bps": bps, "duration": "lifetime"}),
    )
}

fn amount_of(rules: &[RewardRule], conv: &ConversionFacts, p: &PartnerFacts) -> Option<i64> {
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
fn the_most_specific_scope_wins_then_the_highest_paying_then_the_lowest_id() {
    let link = LinkId::parse("lnk_one").unwrap();
    let mut p = partner("ptn_a");
    p.group = Some("agencies".into());
    p.links = vec![link.clone()];
    let scoped = |id: &str, bps: u32, scope: Value| {
        rule(
            id,
            json!({"event": "sale", "kind": "percentage", "rate_bps": bps,
            "duration": "lifetime", "scope": scope}),
        )
    };
    let program = scoped("rwr_p", 5000, json!("program"));
    let group = scoped("rwr_g", 3000, json!({"group": "agencies"}));
    let other_group = scoped("rwr_o", 4500, json!({"group": "influencers"}));
    let own = scoped("rwr_m", 2000, json!({"partner_id": "ptn_a"}));
    let by_link = scoped("rwr_l", 1000, json!({"link_id": link}));
    let low_id = pct("rwr_a", 5000);
    let cases: Vec<(&str, Vec<RewardRule>, &str)> = vec![
        (
            "link beats everything",
            vec![program.clone(), group.clone(), own.clone(), by_link.clone()],
            "rwr_l",
        ),
        (
            "partner beats group and program",
            vec![program.clone(), group.clone(), own.clone()],
            "rwr_m",
        ),
        (
            "group beats program",
            vec![program.clone(), group.clone()],
            "rwr_g",
        ),
        (
            "another group's rule does not apply",
            vec![program.clone(), other_group],
            "rwr_p",
        ),
        (
            "highest paying within a scope",
            vec![pct("rwr_x", 1000), pct("rwr_y", 1500)],
            "rwr_y",
        ),
        (
            "ties go to the lowest id",
            vec![program.clone(), low_id],
            "rwr_a",
        ),
    ];
    for (case, rules, expected) in cases {
        for order in [false, true] {
            let mut rules = rules.clone();
            if order {
                rules.reverse();
            }
            let c = decide(&rules, &sale(10_000), &p).unwrap().expect(case);
            assert_eq!(
                c.explanation.rule_id.as_str(),
                expected,
                "case {case}, reversed {order}"
            );
        }
    }
}

#[test]
fn a_specific_rule_that_does_not_apply_falls_back_to_a_broader_one() {
    let narrow = rule(
        "rwr_n",
        json!({"event": "sale", "kind": "percentage", "rate_bps": 5000,
        "duration": "once", "scope": {"partner_id": "ptn_a"}}),
    );
    let broad = pct("rwr_b", 1000);
    let mut conv = sale(10_000);
    let rules = [narrow, broad];
    assert_eq!(amount_of(&rules, &conv, &partner("ptn_a")), Some(5_000));
    conv.first_payment_at = Some(conv.paid_at - chrono::TimeDelta::days(30));
    assert_eq!(
        amount_of(&rules, &conv, &partner("ptn_a")),
        Some(1_000),
        "renewal"
    );
    assert_eq!(
        amount_of(&rules, &sale(10_000), &partner("ptn_b")),
        Some(1_000),
        "other partner"
    );
}

#[test]
fn rules_pay_only_on_their_event_and_their_program_and_leads_once_per_person() {
    let lead = rule(
        "rwr_lead",
        json!({"event": "lead", "kind": "fixed", "amount": 300}),
    );
    let mut conv = sale(0);
    conv.event = RuleEvent::Lead;
    let mut p = partner("ptn_a");
    assert_eq!(amount_of(std::slice::from_ref(&lead), &conv, &p), Some(300));
    p.lead_already_paid = true;
    assert_eq!(amount_of(std::slice::from_ref(&lead), &conv, &p), None);
    assert_eq!(
        amount_of(std::slice::from_ref(&lead), &sale(100), &partner("ptn_a")),
        None
    );
    let mut elsewhere = sale(100);
    elsewhere.program_id = ProgramId::parse("prg_other").unwrap();
    assert_eq!(
        amount_of(&[pct("rwr_s", 1000)], &elsewhere, &partner("ptn_a")),
        None
    );
}

#[test]
fn caps_cut_a_commission_to_what_the_period_leaves_and_never_more() {
    let capped = rule(
        "rwr_cap",
        json!({"event": "sale", "kind": "percentage", "rate_bps": 1000,
        "duration": "lifetime", "cap": {"amount": 5_000, "period": "month"}}),
    );
    let cases: &[(&str, Earned, i64, bool)] = &[
        (
            "under the cap",
            Earned {
                month: 1_000,
                ..Earned::default()
            },
            3_000,
            false,
        ),
        (
            "reaching the cap",
            Earned {
                month: 2_000,
                ..Earned::default()
            },
            3_000,
            false,
        ),
        (
            "cut by the cap",
            Earned {
                month: 4_000,
                ..Earned::default()
            },
            1_000,
            true,
        ),
        (
            "cap already reached",
            Earned {
                month: 5_000,
                ..Earned::default()
            },
            0,
            true,
        ),
        (
            "over the cap (an earlier rule)",
            Earned {
                month: 9_000,
                ..Earned::default()
            },
            0,
            true,
        ),
        (
            "other periods do not count",
            Earned {
                day: 9_000,
                week: 9_000,
                month: 0,
                all_time: 9_000,
            },
            3_000,
            false,
        ),
    ];
    for (case, earned, expected, limited) in cases {
        let mut p = partner("ptn_a");
        p.earned = *earned;
        let c = decide(std::slice::from_ref(&capped), &sale(30_000), &p)
            .unwrap()
            .unwrap();
        assert_eq!(c.amount.minor, *expected, "case {case}");
        assert_eq!(c.explanation.cap.unwrap().limited, *limited, "case {case}");
    }
}

#[test]
fn cap_periods_start_at_utc_midnight_of_the_day_monday_and_the_first() {
    let at = Utc.with_ymd_and_hms(2025, 3, 13, 17, 5, 0).unwrap(); // a Thursday
    let midnight = |d: u32| Utc.with_ymd_and_hms(2025, 3, d, 0, 0, 0).unwrap();
    assert_eq!(CapPeriod::Day.start(at), Some(midnight(13)));
    assert_eq!(CapPeriod::Week.start(at), Some(midnight(10)));
    assert_eq!(CapPeriod::Month.start(at), Some(midnight(1)));
    assert_eq!(CapPeriod::AllTime.start(at), None);
}

#[test]
fn the_tier_multiplier_scales_the_commission_before_the_cap() {
    let cases: &[(&str, u32, i64)] = &[
        ("no tier", 10_000, 1_001),
        ("gold ×1.2, half up", 12_000, 1_201), // 1001 · 1.2 = 1201.2
        ("bronze ×0.5, half up", 5_000, 501),  // 500.5
        ("suspended bonus ×0", 0, 0),
    ];
    for (case, bps, expected) in cases {
        let mut p = partner("ptn_a");
        p.multiplier_bps = *bps;
        assert_eq!(
            amount_of(&[pct("rwr_t", 1000)], &sale(10_010), &p),
            Some(*expected),
            "case {case}"
        );
    }
    let mut p = partner("ptn_a");
    p.multiplier_bps = MAX_MULTIPLIER_BPS + 1;
    assert_eq!(
        decide(&[pct("rwr_t", 1000)], &sale(1), &p)
            .unwrap_err()
            .field,
        "multiplier_bps"
    );
}

#[test]
fn the_explanation_names_rule_version_scope_base_rate_multiplier_and_cap() {
    let mut r = rule(
        "rwr_e",
        json!({"event": "sale", "kind": "percentage", "rate_bps": 2000,
        "cap": {"amount": 1_000, "period": "all_time"}, "scope": {"partner_id": "ptn_a"}}),
    );
    r.version = 3;
    let mut p = partner("ptn_a");
    p.multiplier_bps = 15_000;
    let c = decide(&[r], &sale(5_000), &p).unwrap().unwrap();
    let e = &c.explanation;
    assert_eq!(
        (e.rule_id.as_str(), e.rule_version, e.scope),
        ("rwr_e", 3, ScopeLevel::Partner)
    );
    assert_eq!(e.reward, Reward::Percentage { rate_bps: 2000 });
    assert_eq!(
        (e.base, e.gross, e.share, e.multiplied, e.amount),
        (5_000, 1_000, 1_000, 1_500, 1_000)
    );
    assert!(e.first_payment && e.cap.unwrap().limited);
    let back: Explanation = serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap();
    assert_eq!(&back, e);
}

#[test]
fn a_commission_split_by_linear_credit_gives_each_partner_a_third_to_the_unit() {
    let credited = |id: &str| Credited {
        partner: partner(id),
        weight: 1,
    };
    let parts = split_by_credit(
        &[pct("rwr_s", 1000)],
        &sale(100_000),
        &[credited("ptn_a"), credited("ptn_b"), credited("ptn_c")],
    )
    .unwrap();
    let amounts: Vec<i64> = parts.iter().map(|c| c.amount.minor).collect();
    assert_eq!(amounts, vec![3_334, 3_333, 3_333]);
    assert_eq!(parts[0].explanation.credit.as_ref().unwrap().pot, 10_000);
}

#[test]
fn partners_paid_by_different_rules_each_get_their_rules_share_of_their_credit() {
    let gold_only = rule(
        "rwr_g",
        json!({"event": "sale", "kind": "percentage", "rate_bps": 3000,
        "duration": "lifetime", "scope": {"group": "vip"}}),
    );
    let mut vip = partner("ptn_v");
    vip.group = Some("vip".into());
    let parts = split_by_credit(
        &[gold_only, pct("rwr_s", 1000)],
        &sale(10_000),
        &[
            Credited {
                partner: partner("ptn_a"),
                weight: 1,
            },
            Credited {
                partner: vip,
                weight: 2,
            },
            Credited {
                partner: partner("ptn_c"),
                weight: 1,
            },
        ],
    )
    .unwrap();
    // vip: 30 % of 10 000 · 2/4 = 1 500; the others share 10 % · 2/4 = 500.
    let amounts: Vec<(String, i64)> = parts
        .iter()
        .map(|c| (c.partner_id.to_string(), c.amount.minor))
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("ptn_a".into(), 250),
            ("ptn_v".into(), 1_500),
            ("ptn_c".into(), 250)
        ]
    );
}

#[test]
fn a_credited_partner_no_rule_pays_keeps_its_share_from_the_others() {
    let only_a = rule(
        "rwr_a",
        json!({"event": "sale", "kind": "fixed", "amount": 900,
        "scope": {"partner_id": "ptn_a"}}),
    );
    let parts = split_by_credit(
        &[only_a],
        &sale(10_000),
        &[
            Credited {
                partner: partner("ptn_a"),
                weight: 1,
            },
            Credited {
                partner: partner("ptn_b"),
                weight: 2,
            },
        ],
    )
    .unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].amount.minor, 300);
    let twice = [
        Credited {
            partner: partner("ptn_a"),
            weight: 1,
        },
        Credited {
            partner: partner("ptn_a"),
            weight: 1,
        },
    ];
    assert_eq!(
        split_by_credit(&[], &sale(1), &twice).unwrap_err().field,
        "partners"
    );
}

#[test]
fn a_two_level_override_pays_the_lead_and_the_leads_lead_naming_the_commission() {
    let (member, lead, top) = (
        PartnerId::parse("ptn_m").unwrap(),
        PartnerId::parse("ptn_l").unwrap(),
        PartnerId::parse("ptn_t").unwrap(),
    );
    let lead_of = |p: &PartnerId| match p.as_str() {
        "ptn_m" => Some(lead.clone()),
        "ptn_l" => Some(top.clone()),
        "ptn_t" => Some(member.clone()), // a loop back to the member
        _ => None,
    };
    assert_eq!(team_chain(&member, 1, lead_of), vec![lead.clone()]);
    let chain = team_chain(&member, 5, lead_of);
    assert_eq!(chain, vec![lead.clone(), top.clone()], "stops at the loop");
    let plan = OverridePlan::new(vec![1000, 500]).unwrap();
    let com = CommissionId::parse("com_1").unwrap();
    let o = overrides(&com, &member, Money::new(2_005, eur()), &chain, &plan);
    // Pool: 2005 · 15 % = 300.75 → 301, split 2:1 → 201 + 100.
    let got: Vec<(&str, u8, i64)> = o
        .iter()
        .map(|o| (o.partner_id.as_str(), o.level, o.amount.minor))
        .collect();
    assert_eq!(got, vec![("ptn_l", 1, 201), ("ptn_t", 2, 100)]);
    assert!(o
        .iter()
        .all(|o| o.derives_from == com && o.member_id == member));
    let one = overrides(
        &com,
        &member,
        Money::new(2_005, eur()),
        &chain,
        &OverridePlan::one_level(1000).unwrap(),
    );
    assert_eq!(one.len(), 1, "one level by default plan");
    assert_eq!(one[0].amount.minor, 201);
    assert!(overrides(&com, &member, Money::new(0, eur()), &chain, &plan).is_empty());
    assert_eq!(
        OverridePlan::new(vec![6000, 5000]).unwrap_err().field,
        "override_levels_bps"
    );
}
