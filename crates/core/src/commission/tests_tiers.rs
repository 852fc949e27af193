//! Tests of tiers: parsing the API shape, validating a program's set,
//! promotion, demotion, staying, manual tiers, reasons and multipliers.

use std::cell::RefCell;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests::eur;
use super::tiers::*;
use super::BPS_ONE;
use crate::money::{Currency, MAX_MINOR};

fn tier(v: Value) -> Tier {
    Tier::from_json(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// bronze (everyone, ×1), silver (5 conversions in 30 days, ×1.1), gold
/// (1000.00 revenue in 90 days, ×1.2), and a manual-only vip (×1.5).
fn ladder() -> Vec<Tier> {
    vec![
        tier(json!({"name": "gold", "multiplier_bps": 12000, "rank": 3,
                    "threshold": {"metric": "revenue", "min": 100_000, "window_days": 90}})),
        tier(json!({"name": "bronze", "multiplier_bps": 10000, "rank": 1,
                    "threshold": {"metric": "conversions", "min": 0, "window_days": 30}})),
        tier(json!({"name": "vip", "multiplier_bps": 15000, "rank": 9})),
        tier(json!({"name": "silver", "multiplier_bps": 11000, "rank": 2,
                    "threshold": {"metric": "conversions", "min": 5, "window_days": 30}})),
    ]
}

/// Statistics by window: `revenue` over 90 days, `conversions` over 30.
fn stats(revenue: i64, conversions: i64) -> impl Fn(u32) -> PartnerStats {
    move |w| match w {
        90 => PartnerStats {
            revenue,
            conversions: 0,
        },
        30 => PartnerStats {
            revenue: 0,
            conversions,
        },
        _ => panic!("no tier looks at {w} days"),
    }
}

fn change(from: Option<&str>, to: Option<&str>, reason: &str) -> Option<TierChange> {
    Some(TierChange {
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
        reason: reason.to_owned(),
    })
}

#[test]
fn the_api_shape_parses_and_round_trips() {
    let v = json!({"name": " gold ", "multiplier_bps": 12000, "rank": 2, "program_id": "prg_x",
                   "threshold": {"metric": "revenue", "min": 100000, "window_days": 90}});
    let t = Tier::from_json(&v).unwrap();
    assert_eq!(t.name, "gold");
    assert_eq!(
        t.threshold,
        Some(Threshold {
            metric: TierMetric::Revenue,
            min: 100_000,
            window_days: 90
        })
    );
    assert_eq!(Tier::from_json(&t.to_json()), Ok(t.clone()));
    let stored: Tier = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
    assert_eq!(stored, t);
    let manual = tier(json!({"name": "vip", "multiplier_bps": 0, "rank": 0, "threshold": null}));
    assert!(!manual.is_automatic());
    assert_eq!(manual.to_json()["threshold"], Value::Null);
    assert_eq!(
        serde_json::to_value(TierMetric::Conversions).unwrap(),
        json!("conversions")
    );
}

#[test]
fn api_shape_errors_name_the_field() {
    let ok = json!({"name": "gold", "multiplier_bps": 12000, "rank": 2,
                    "threshold": {"metric": "revenue", "min": 100000, "window_days": 90}});
    let with = |path: &[&str], v: Value| {
        let mut o = ok.clone();
        let mut at = &mut o;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        o
    };
    for (case, v, field) in [
        ("not an object", json!("gold"), "body"),
        ("unknown field", with(&["color"], json!("gold")), "color"),
        ("missing name", with(&["name"], Value::Null), "name"),
        ("blank name", with(&["name"], json!("  ")), "name"),
        ("long name", with(&["name"], json!("g".repeat(65))), "name"),
        (
            "control in name",
            with(&["name"], json!("go\u{0}ld")),
            "name",
        ),
        (
            "multiplier too high",
            with(&["multiplier_bps"], json!(100_001)),
            "multiplier_bps",
        ),
        (
            "negative multiplier",
            with(&["multiplier_bps"], json!(-1)),
            "multiplier_bps",
        ),
        (
            "missing multiplier",
            with(&["multiplier_bps"], Value::Null),
            "multiplier_bps",
        ),
        ("rank past u32", with(&["rank"], json!(1u64 << 32)), "rank"),
        ("fractional rank", with(&["rank"], json!(1.5)), "rank"),
        (
            "threshold not an object",
            with(&["threshold"], json!(5)),
            "threshold",
        ),
        (
            "unknown threshold field",
            with(&["threshold", "max"], json!(1)),
            "threshold.max",
        ),
        (
            "bad metric",
            with(&["threshold", "metric"], json!("clicks")),
            "threshold.metric",
        ),
        (
            "negative min",
            with(&["threshold", "min"], json!(-1)),
            "threshold.min",
        ),
        (
            "min past maximum",
            with(&["threshold", "min"], json!(MAX_MINOR + 1)),
            "threshold.min",
        ),
        (
            "window zero",
            with(&["threshold", "window_days"], json!(0)),
            "threshold.window_days",
        ),
        (
            "window too long",
            with(&["threshold", "window_days"], json!(3651)),
            "threshold.window_days",
        ),
        (
            "window missing",
            with(&["threshold", "window_days"], Value::Null),
            "threshold.window_days",
        ),
    ] {
        let err = Tier::from_json(&v).expect_err(case);
        assert_eq!(err.field, field, "case {case}: {err}");
    }
    let edge = with(&["threshold", "window_days"], json!(3650));
    assert_eq!(
        Tier::from_json(&edge)
            .unwrap()
            .threshold
            .unwrap()
            .window_days,
        3650
    );
}

#[test]
fn a_set_refuses_shared_names_and_ranks_naming_the_holder() {
    assert_eq!(validate_set(&ladder()), Ok(()));
    assert_eq!(validate_set(&[]), Ok(()));
    let mut same_rank = ladder();
    same_rank.push(tier(
        json!({"name": "platinum", "multiplier_bps": 13000, "rank": 3}),
    ));
    let err = validate_set(&same_rank).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.message.as_str()),
        ("rank", "3 is already the rank of tier `gold`")
    );
    let mut same_name = ladder();
    same_name.push(tier(
        json!({"name": "Silver", "multiplier_bps": 13000, "rank": 7}),
    ));
    let err = validate_set(&same_name).unwrap_err();
    assert_eq!(err.field, "name");
    assert!(err.message.contains("`silver`"), "{}", err.message);
    let mut invalid = ladder();
    invalid[0].multiplier_bps = 100_001;
    assert_eq!(validate_set(&invalid).unwrap_err().field, "multiplier_bps");
    invalid[0].multiplier_bps = 0;
    invalid[0].name = " gold".into();
    assert_eq!(validate_set(&invalid).unwrap_err().field, "name");
}

#[test]
fn a_partner_reaching_a_threshold_is_promoted_and_may_skip_ranks() {
    let t = ladder();
    assert_eq!(
        evaluate(&t, Some("bronze"), eur(), stats(0, 5)),
        change(
            Some("bronze"),
            Some("silver"),
            "conversions over the last 30 days is 5 ≥ 5 for silver"
        )
    );
    assert_eq!(
        evaluate(&t, Some("bronze"), eur(), stats(123_456, 1)),
        change(
            Some("bronze"),
            Some("gold"),
            "revenue over the last 90 days is 1234.56 EUR ≥ 1000.00 EUR for gold"
        )
    );
    assert_eq!(
        evaluate(&t, None, eur(), stats(0, 0)),
        change(
            None,
            Some("bronze"),
            "conversions over the last 30 days is 0 ≥ 0 for bronze"
        ),
        "a threshold of zero is a base tier everyone falls back to"
    );
}

#[test]
fn a_partner_falling_below_is_demoted_to_the_highest_tier_still_met() {
    let t = ladder();
    assert_eq!(
        evaluate(&t, Some("gold"), eur(), stats(99_999, 7)),
        change(
            Some("gold"),
            Some("silver"),
            "revenue over the last 90 days is 999.99 EUR, below 1000.00 EUR for gold; \
             conversions over the last 30 days is 7 ≥ 5 for silver"
        )
    );
    assert_eq!(
        evaluate(&t, Some("gold"), eur(), stats(-500, 0)).map(|c| c.to),
        Some(Some("bronze".to_owned())),
        "skipping silver"
    );
}

#[test]
fn without_any_threshold_met_the_partner_leaves_the_tiers() {
    let t: Vec<Tier> = ladder()
        .into_iter()
        .filter(|t| t.name != "bronze")
        .collect();
    assert_eq!(
        evaluate(&t, Some("silver"), eur(), stats(0, 3)),
        change(
            Some("silver"),
            None,
            "conversions over the last 30 days is 3, below 5 for silver"
        )
    );
    assert_eq!(
        evaluate(&t, None, eur(), stats(0, 3)),
        None,
        "no tier, and none earned"
    );
}

#[test]
fn a_partner_whose_tier_is_still_the_best_met_stays() {
    let t = ladder();
    assert_eq!(evaluate(&t, Some("silver"), eur(), stats(0, 6)), None);
    assert_eq!(
        evaluate(&t, Some("gold"), eur(), stats(100_000, 0)),
        None,
        "exactly the minimum"
    );
    assert_eq!(evaluate(&t, Some("bronze"), eur(), stats(99_999, 4)), None);
}

#[test]
fn manual_and_unknown_tiers_are_left_alone_without_asking_for_statistics() {
    let t = ladder();
    let never = |w: u32| -> PartnerStats { panic!("asked for {w} days") };
    assert_eq!(evaluate(&t, Some("vip"), eur(), never), None);
    assert_eq!(evaluate(&t, Some("legacy"), eur(), never), None);
    assert_eq!(
        evaluate(&t, Some("Gold"), eur(), never),
        None,
        "names match exactly"
    );
}

#[test]
fn a_manual_tier_is_never_chosen_automatically() {
    let t = ladder();
    let change = evaluate(&t, None, eur(), stats(MAX_MINOR, 1_000_000)).unwrap();
    assert_eq!(
        change.to.as_deref(),
        Some("gold"),
        "vip ranks higher but is manual-only"
    );
}

#[test]
fn statistics_are_asked_once_per_window() {
    let t = ladder();
    let asked = RefCell::new(Vec::new());
    let counting = |w: u32| {
        asked.borrow_mut().push(w);
        stats(0, 5)(w)
    };
    evaluate(&t, None, eur(), counting);
    assert_eq!(*asked.borrow(), vec![30, 90]);
    assert_eq!(stat_windows(&t), vec![30, 90]);
}

#[test]
fn reasons_write_revenue_in_the_programs_currency_and_a_one_day_window() {
    let t = vec![tier(
        json!({"name": "daily", "multiplier_bps": 10500, "rank": 1,
                             "threshold": {"metric": "revenue", "min": 5000, "window_days": 1}}),
    )];
    let jpy = Currency::parse("JPY").unwrap();
    let day = |_| PartnerStats {
        revenue: 5000,
        conversions: 0,
    };
    assert_eq!(
        evaluate(&t, None, jpy, day).unwrap().reason,
        "revenue over the last day is 5000 JPY ≥ 5000 JPY for daily"
    );
}

#[test]
fn ranks_tied_despite_validation_resolve_by_name_whatever_the_order() {
    let a = tier(json!({"name": "alpha", "multiplier_bps": 1, "rank": 1,
                        "threshold": {"metric": "conversions", "min": 0, "window_days": 30}}));
    let b = tier(json!({"name": "beta", "multiplier_bps": 2, "rank": 1,
                        "threshold": {"metric": "conversions", "min": 0, "window_days": 30}}));
    for set in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let to = evaluate(&set, None, eur(), |_| PartnerStats::default()).and_then(|c| c.to);
        assert_eq!(to.as_deref(), Some("alpha"));
    }
}

#[test]
fn the_multiplier_is_the_tiers_or_one_for_no_or_an_unknown_tier() {
    let t = ladder();
    assert_eq!(multiplier_for(&t, Some("gold")), 12_000);
    assert_eq!(multiplier_for(&t, Some("vip")), 15_000);
    assert_eq!(multiplier_for(&t, None), BPS_ONE);
    assert_eq!(multiplier_for(&t, Some("legacy")), BPS_ONE);
    assert_eq!(multiplier_for(&[], Some("gold")), BPS_ONE);
}

proptest! {
    /// Whatever the statistics, an evaluation's target is the best tier met,
    /// and evaluating again from there changes nothing.
    #[test]
    fn an_evaluation_is_stable_once_applied(revenue in -MAX_MINOR..=MAX_MINOR, conversions in 0i64..20) {
        let t = ladder();
        for current in [None, Some("bronze"), Some("silver"), Some("gold")] {
            let target = match evaluate(&t, current, eur(), stats(revenue, conversions)) {
                Some(c) => {
                    prop_assert_eq!(c.from.as_deref(), current);
                    prop_assert!(!c.reason.is_empty());
                    c.to
                }
                None => current.map(str::to_owned),
            };
            let expected = if revenue >= 100_000 { "gold" } else if conversions >= 5 { "silver" } else { "bronze" };
            prop_assert_eq!(target.as_deref(), Some(expected));
            prop_assert_eq!(evaluate(&t, target.as_deref(), eur(), stats(revenue, conversions)), None);
        }
    }
}
