//! Hand-computed examples of [`attribute`] for every model, through touches.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::ids::PartnerId;

fn conv_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn partner(p: &str) -> PartnerId {
    PartnerId::parse(&format!("ptn_{p}")).unwrap()
}

/// A touch `hours_before` the conversion, by partner `p` on channel `ch`.
fn touch(id: &str, p: &str, ch: &str, hours_before: i64) -> Touch {
    Touch {
        id: id.into(),
        partner_id: partner(p),
        channel: ch.into(),
        at: conv_at() - TimeDelta::hours(hours_before),
        kind: TouchKind::Click,
        is_bot: false,
        partner_suspended: false,
    }
}

fn cfg(model: ModelKind) -> ModelConfig {
    ModelConfig::new(model)
}

fn by_partner(a: &Attribution, total: i64) -> Vec<(String, i64)> {
    a.split(total)
        .into_iter()
        .map(|(p, m)| (p.to_string(), m))
        .collect()
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(p, m)| (format!("ptn_{p}"), *m)).collect()
}

#[test]
fn first_touch_pays_the_earliest_partner_and_lists_the_others_at_zero() {
    let ts = [touch("t2", "b", "x", 5), touch("t1", "a", "x", 10)];
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::FirstTouch), None).unwrap();
    assert_eq!(a.credits.len(), 2);
    assert_eq!(a.credits[0].touch_id, "t1");
    assert_eq!(by_partner(&a, 999), pairs(&[("a", 999)]));
    assert_eq!(
        a.split_per_touch(999),
        vec![("t1".into(), 999), ("t2".into(), 0)]
    );
}

#[test]
fn last_touch_pays_the_latest_partner() {
    let ts = [touch("t1", "a", "x", 10), touch("t2", "b", "x", 5)];
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::LastTouch), None).unwrap();
    assert_eq!(by_partner(&a, 1000), pairs(&[("b", 1000)]));
}

#[test]
fn linear_gives_a_partner_touching_twice_two_shares() {
    // a, b, a: a earns 2/3 of 1.00 = 66.67 → 67 (largest remainder), b 33.
    let ts = [
        touch("t1", "a", "x", 30),
        touch("t2", "b", "x", 20),
        touch("t3", "a", "x", 10),
    ];
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::Linear), None).unwrap();
    assert_eq!(by_partner(&a, 100), pairs(&[("a", 67), ("b", 33)]));
    assert_eq!(a.partners[0].touches, 2);
}

#[test]
fn position_based_pays_forty_twenty_forty_across_partners() {
    let ts = [
        touch("t1", "a", "x", 30),
        touch("t2", "b", "x", 20),
        touch("t3", "c", "x", 10),
    ];
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::PositionBased), None).unwrap();
    assert_eq!(
        by_partner(&a, 5000),
        pairs(&[("a", 2000), ("b", 1000), ("c", 2000)])
    );
}

#[test]
fn time_decay_weighs_touches_a_week_apart_one_two_four() {
    // Ages 14, 7 and 0 days, half-life 7: weights 1/4, 1/2, 1 → 1/7, 2/7, 4/7.
    let ts = [
        touch("t1", "a", "x", 14 * 24),
        touch("t2", "b", "x", 7 * 24),
        touch("t3", "c", "x", 0),
    ];
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::TimeDecay), None).unwrap();
    assert_eq!(
        by_partner(&a, 700),
        pairs(&[("a", 100), ("b", 200), ("c", 400)])
    );
    assert_eq!(a.credits[0].model_weight, 0.25);
    assert_eq!(a.half_life_days, Some(7.0));
    // With a 14-day half-life: weights 1/2, 1/√2, 1 → 0.2265, 0.3204, 0.4531.
    let slow = cfg(ModelKind::TimeDecay).with_half_life_days(14.0);
    let a = attribute(&ts, conv_at(), &slow, None).unwrap();
    assert_eq!(
        by_partner(&a, 10_000),
        pairs(&[("a", 2265), ("b", 3204), ("c", 4531)])
    );
}

#[test]
fn excluded_touches_say_why_and_earn_nothing() {
    let mut bot = touch("bot", "b", "x", 2);
    bot.is_bot = true;
    let mut suspended = touch("sus", "c", "x", 3);
    suspended.partner_suspended = true;
    let late = touch("late", "d", "x", -1);
    let old = touch("old", "e", "x", 24 * 31);
    let ts = [touch("ok", "a", "x", 1), bot, suspended, late, old];
    let a = attribute(
        &ts,
        conv_at(),
        &cfg(ModelKind::Linear).with_window_days(30),
        None,
    )
    .unwrap();
    let reasons: Vec<(&str, Exclusion)> = a
        .excluded
        .iter()
        .map(|e| (e.touch_id.as_str(), e.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("bot", Exclusion::Bot),
            ("sus", Exclusion::SuspendedPartner),
            ("late", Exclusion::AfterConversion),
            ("old", Exclusion::OutsideWindow),
        ]
    );
    assert_eq!(by_partner(&a, 100), pairs(&[("a", 100)]));
    assert_eq!(
        a.summary(),
        "linear, 30-day window: 1 touch counted, 4 excluded (1 after conversion, \
         1 outside window, 1 bot, 1 suspended partner); ptn_a 100.00%"
    );
}

#[test]
fn a_conversion_without_counting_touches_is_not_attributed() {
    let a = attribute(
        &[touch("late", "a", "x", -5)],
        conv_at(),
        &cfg(ModelKind::Linear),
        None,
    )
    .unwrap();
    assert!(!a.is_attributed());
    assert!(a.split(100).is_empty());
    assert!(a.summary().ends_with("not attributed"));
}

fn worked_markov_fit() -> Fit {
    // See markov::tests: w = C1 1/5, C2 2/5, C3 2/5.
    let js = vec![
        Journey::converted(vec!["C1", "C2", "C3"]),
        Journey::not_converted(vec!["C1"]),
        Journey::not_converted(vec!["C2", "C3"]),
    ];
    Fit::Markov(fit_markov(&js, 1).unwrap())
}

#[test]
fn markov_pays_the_worked_example_twenty_forty_forty() {
    let ts = [
        touch("t1", "a", "C1", 30),
        touch("t2", "b", "C2", 20),
        touch("t3", "c", "C3", 10),
    ];
    let fit = worked_markov_fit();
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::Markov), Some(&fit)).unwrap();
    assert_eq!(
        by_partner(&a, 2000),
        pairs(&[("a", 400), ("b", 800), ("c", 800)])
    );
    assert_eq!(a.markov_order, Some(1));
    // A journey C2 > C3 only: 2/5 ÷ 4/5 each → 50/50.
    let a = attribute(&ts[1..], conv_at(), &cfg(ModelKind::Markov), Some(&fit)).unwrap();
    assert_eq!(by_partner(&a, 2000), pairs(&[("b", 1000), ("c", 1000)]));
}

#[test]
fn markov_shares_a_cycle_three_sevenths_one_seventh_three_sevenths() {
    let js = vec![
        Journey::converted(vec!["A", "B", "A"]),
        Journey::not_converted(vec!["A"]),
    ];
    let fit = Fit::Markov(fit_markov(&js, 1).unwrap());
    let ts = [
        touch("t1", "a", "A", 3),
        touch("t2", "b", "B", 2),
        touch("t3", "a", "A", 1),
    ];
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::Markov), Some(&fit)).unwrap();
    assert_eq!(
        a.split_per_touch(700),
        vec![("t1".into(), 300), ("t2".into(), 100), ("t3".into(), 300)]
    );
    assert_eq!(by_partner(&a, 700), pairs(&[("a", 600), ("b", 100)]));
}

#[test]
fn markov_falls_back_to_linear_when_no_channel_is_known_and_says_so() {
    let ts = [touch("t1", "a", "unknown", 3), touch("t2", "b", "other", 2)];
    let a = attribute(
        &ts,
        conv_at(),
        &cfg(ModelKind::Markov),
        Some(&worked_markov_fit()),
    )
    .unwrap();
    assert_eq!(by_partner(&a, 100), pairs(&[("a", 50), ("b", 50)]));
    assert!(a.note.unwrap().contains("linear"));
}

#[test]
fn shapley_divides_a_channel_share_evenly_among_its_touches() {
    // See shapley::tests: φ_A = 3/8, φ_B = 5/8; B touches twice → 5/16 each.
    let js = vec![
        Journey {
            path: vec!["A"],
            conversions: 1,
            nulls: 3,
        },
        Journey {
            path: vec!["B"],
            conversions: 1,
            nulls: 1,
        },
        Journey {
            path: vec!["B", "A", "B"],
            conversions: 1,
            nulls: 0,
        },
    ];
    let fit = Fit::Shapley(fit_shapley(&js).unwrap());
    let ts = [
        touch("t1", "b", "B", 3),
        touch("t2", "a", "A", 2),
        touch("t3", "b", "B", 1),
    ];
    let a = attribute(&ts, conv_at(), &cfg(ModelKind::Shapley), Some(&fit)).unwrap();
    assert_eq!(
        a.split_per_touch(1600),
        vec![("t1".into(), 500), ("t2".into(), 600), ("t3".into(), 500)]
    );
    assert_eq!(by_partner(&a, 1600), pairs(&[("b", 1000), ("a", 600)]));
}

#[test]
fn data_driven_models_refuse_a_missing_or_mismatched_fit() {
    let ts = [touch("t1", "a", "C1", 3)];
    let err = attribute(&ts, conv_at(), &cfg(ModelKind::Markov), None).unwrap_err();
    assert_eq!(err.field, "fit");
    let err = attribute(
        &ts,
        conv_at(),
        &cfg(ModelKind::Shapley),
        Some(&worked_markov_fit()),
    )
    .unwrap_err();
    assert_eq!(err.field, "fit");
}

#[test]
fn touches_in_any_input_order_give_the_same_attribution() {
    let ts = vec![
        touch("t1", "a", "x", 30),
        touch("t2", "b", "x", 30),
        touch("t3", "c", "x", 10),
    ];
    let mut rev = ts.clone();
    rev.reverse();
    for model in [
        ModelKind::FirstTouch,
        ModelKind::LastTouch,
        ModelKind::PositionBased,
    ] {
        let a = attribute(&ts, conv_at(), &cfg(model), None).unwrap();
        let b = attribute(&rev, conv_at(), &cfg(model), None).unwrap();
        assert_eq!(a.credits, b.credits, "{model}");
    }
    // Equal times: the lower id (t1) is first.
    let a = attribute(&rev, conv_at(), &cfg(ModelKind::FirstTouch), None).unwrap();
    assert_eq!(by_partner(&a, 10), pairs(&[("a", 10)]));
}

#[test]
fn an_attribution_round_trips_through_json() {
    let ts = [touch("t1", "a", "x", 30), touch("t2", "b", "x", 20)];
    let a = attribute(
        &ts,
        conv_at(),
        &cfg(ModelKind::TimeDecay).with_window_days(7),
        None,
    )
    .unwrap();
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["model"], "time_decay");
    assert_eq!(json["credits"][0]["touch_id"], "t1");
    let back: Attribution = serde_json::from_value(json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn the_fast_path_matches_the_explained_split() {
    let ts = [
        touch("t1", "a", "x", 30),
        touch("t2", "b", "x", 20),
        touch("t3", "a", "x", 5),
    ];
    let mut s = Scratch::default();
    for model in [
        ModelKind::Linear,
        ModelKind::TimeDecay,
        ModelKind::PositionBased,
    ] {
        let a = attribute(&ts, conv_at(), &cfg(model), None).unwrap();
        let per_touch: Vec<i64> = credit_into(&ts, conv_at(), &cfg(model), None, 1001, &mut s)
            .unwrap()
            .iter()
            .map(|t| t.minor)
            .collect();
        let want: Vec<i64> = a.split_per_touch(1001).into_iter().map(|p| p.1).collect();
        assert_eq!(per_touch, want, "{model}");
        let per_partner: Vec<(String, i64)> =
            partner_credit_into(&ts, conv_at(), &cfg(model), None, 1001, &mut s)
                .unwrap()
                .iter()
                .map(|p| (ts[p.first_index].partner_id.to_string(), p.minor))
                .collect();
        assert_eq!(per_partner, by_partner(&a, 1001), "{model}");
    }
}
