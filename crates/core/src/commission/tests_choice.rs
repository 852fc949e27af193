//! Table-driven tests of the choice between rules (precedence, events,
//! leads), caps, tier multipliers, explanations, credit splits and team
//! overrides.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::tests::{amount_of, eur, partner, pct, rule, sale};
use super::*;
use crate::ids::{CommissionId, LinkId, PartnerId, ProgramId};
use crate::money::Money;

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
fn cap_periods_end_where_the_next_day_week_and_month_begin() {
    let at = Utc.with_ymd_and_hms(2025, 1, 31, 23, 59, 0).unwrap(); // a Friday
    let midnight = |m: u32, d: u32| Utc.with_ymd_and_hms(2025, m, d, 0, 0, 0).unwrap();
    assert_eq!(CapPeriod::Day.end(at), Some(midnight(2, 1)));
    assert_eq!(
        CapPeriod::Week.end(at),
        Some(midnight(2, 3)),
        "the next Monday"
    );
    assert_eq!(CapPeriod::Month.end(at), Some(midnight(2, 1)));
    assert_eq!(CapPeriod::AllTime.end(at), None);
    for p in [CapPeriod::Day, CapPeriod::Week, CapPeriod::Month] {
        assert_eq!(
            p.start(p.end(at).unwrap()),
            p.end(at),
            "{p:?} ends where the next begins"
        );
    }
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
fn linear_attribution_of_three_touches_splits_the_commission_as_its_money_split() {
    use crate::attribution::{attribute, ModelConfig, ModelKind, Touch, TouchKind};
    let conv = sale(99_999);
    let touch = |id: &str, p: &str, days: i64| Touch {
        id: id.into(),
        partner_id: PartnerId::parse(p).unwrap(),
        channel: p.into(),
        at: conv.paid_at - chrono::TimeDelta::days(days),
        kind: TouchKind::Click,
        is_bot: false,
        partner_suspended: false,
    };
    let touches = [
        touch("t1", "ptn_a", 9),
        touch("t2", "ptn_b", 5),
        touch("t3", "ptn_c", 1),
    ];
    let a = attribute(
        &touches,
        conv.paid_at,
        &ModelConfig::new(ModelKind::Linear),
        None,
    )
    .unwrap();
    let credited = Credited::from_attribution(&a, |id| PartnerFacts::new(id.clone()));
    let parts = split_by_credit(&[pct("rwr_s", 2000)], &conv, &credited).unwrap();
    // 20 % of 999.99 = 200.00 (19 999.8 rounds up), split as the attribution splits it.
    let got: Vec<(PartnerId, i64)> = parts
        .iter()
        .map(|c| (c.partner_id.clone(), c.amount.minor))
        .collect();
    assert_eq!(got, a.split(20_000));
    assert_eq!(got.iter().map(|(_, m)| m).sum::<i64>(), 20_000);
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
