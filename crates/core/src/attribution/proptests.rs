//! Property tests over every model: exact sums, signs, order independence,
//! and a single touch earning everything.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::ids::PartnerId;

const PARTNERS: [&str; 4] = ["ptn_a", "ptn_b", "ptn_c", "ptn_d"];
const CHANNELS: [&str; 5] = ["ads", "blog", "email", "seo", "social"];

fn conv_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

/// Touches with times drawn from few values (so ties are common), some
/// after the conversion, some flagged as bots or suspended.
fn arb_touches(max: usize) -> impl Strategy<Value = Vec<Touch>> {
    prop::collection::vec((0usize..4, 0usize..5, -2i64..40, 0u8..20), 1..max).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (p, c, hours, flag))| Touch {
                id: format!("t{i:02}"),
                partner_id: PartnerId::parse(PARTNERS[p]).unwrap(),
                channel: CHANNELS[c].to_owned(),
                at: conv_at() - TimeDelta::hours(hours * 6),
                kind: TouchKind::Click,
                is_bot: flag == 0,
                partner_suspended: flag == 1,
            })
            .collect()
    })
}

fn arb_journeys() -> impl Strategy<Value = Vec<Journey<&'static str>>> {
    prop::collection::vec(
        (prop::collection::vec(0usize..5, 1..6), 0u64..4, 0u64..4),
        1..12,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .map(|(path, conversions, nulls)| Journey {
                path: path.into_iter().map(|c| CHANNELS[c]).collect(),
                conversions,
                nulls,
            })
            .collect()
    })
}

/// Every model with the fit it needs (fitted over `journeys`).
fn all_models(
    journeys: &[Journey<&'static str>],
    window: Option<u32>,
) -> Vec<(ModelConfig, Option<Fit>)> {
    ModelKind::ALL
        .into_iter()
        .flat_map(|m| {
            let orders: &[u8] = if m == ModelKind::Markov {
                &[1, 2, 3]
            } else {
                &[1]
            };
            orders.iter().map(move |&o| {
                let mut cfg = ModelConfig::new(m).with_markov_order(o);
                cfg.window_days = window;
                let fit = fit(journeys, &cfg).unwrap();
                (cfg, fit)
            })
        })
        .collect()
}

fn partner_totals(a: &Attribution, total: i64) -> Vec<(PartnerId, i64)> {
    let mut t = a.split(total);
    t.sort();
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn parts_sum_exactly_and_carry_the_sign_of_the_total_under_every_model(
        touches in arb_touches(12),
        journeys in arb_journeys(),
        total in -10_000_000i64..10_000_000,
        window in prop::option::of(1u32..10),
    ) {
        for (cfg, fit) in all_models(&journeys, window) {
            let a = attribute(&touches, conv_at(), &cfg, fit.as_ref()).unwrap();
            prop_assert_eq!(a.credits.len() + a.excluded.len(), touches.len());
            if !a.is_attributed() {
                prop_assert!(a.credits.is_empty());
                continue;
            }
            let per_partner = a.split(total);
            prop_assert_eq!(per_partner.iter().map(|p| p.1).sum::<i64>(), total, "{}", cfg.model);
            let per_touch = a.split_per_touch(total);
            prop_assert_eq!(per_touch.iter().map(|p| p.1).sum::<i64>(), total, "{}", cfg.model);
            let minors = per_partner.iter().map(|p| p.1).chain(per_touch.iter().map(|p| p.1));
            for m in minors {
                prop_assert!(if total >= 0 { m >= 0 } else { m <= 0 }, "{}: {}", cfg.model, m);
            }
            let shares: f64 = a.credits.iter().map(|c| c.share).sum();
            prop_assert!((shares - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn permuting_touches_never_changes_partner_totals_under_any_model(
        touches in arb_touches(12),
        journeys in arb_journeys(),
        total in 0i64..10_000_000,
        seed in any::<u64>(),
    ) {
        // Touches are ordered by time then id, so a permutation (and in
        // particular one of equal-time touches) changes nothing at all.
        let mut shuffled = touches.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for (cfg, fit) in all_models(&journeys, None) {
            let a = attribute(&touches, conv_at(), &cfg, fit.as_ref()).unwrap();
            let b = attribute(&shuffled, conv_at(), &cfg, fit.as_ref()).unwrap();
            prop_assert_eq!(partner_totals(&a, total), partner_totals(&b, total), "{}", cfg.model);
        }
    }

    #[test]
    fn a_single_touch_earns_everything_under_every_model(
        touches in arb_touches(2),
        journeys in arb_journeys(),
        total in -10_000_000i64..10_000_000,
    ) {
        let mut t = touches[0].clone();
        t.is_bot = false;
        t.partner_suspended = false;
        t.at = conv_at() - TimeDelta::minutes(total.rem_euclid(100_000));
        for (cfg, fit) in all_models(&journeys, None) {
            let a = attribute(std::slice::from_ref(&t), conv_at(), &cfg, fit.as_ref()).unwrap();
            prop_assert_eq!(a.split(total), vec![(t.partner_id.clone(), total)], "{}", cfg.model);
            prop_assert_eq!(a.credits[0].share, 1.0);
        }
    }

    #[test]
    fn the_fast_paths_agree_with_attribute_under_every_model(
        touches in arb_touches(12),
        journeys in arb_journeys(),
        total in -10_000_000i64..10_000_000,
    ) {
        let mut s = Scratch::default();
        for (cfg, fit) in all_models(&journeys, Some(5)) {
            let a = attribute(&touches, conv_at(), &cfg, fit.as_ref()).unwrap();
            let fast: Vec<i64> = credit_into(&touches, conv_at(), &cfg, fit.as_ref(), total, &mut s)
                .unwrap().iter().map(|c| c.minor).collect();
            let slow: Vec<i64> = a.split_per_touch(total).into_iter().map(|p| p.1).collect();
            prop_assert_eq!(fast, slow, "{}", cfg.model);
        }
    }
}
