//! Rule-based models: first touch, last touch, linear, position based, time decay.
//!
//! The first four give exact integer weights over a journey of `n` touches
//! in time order (a share is `weight / Σ weight`, an exact rational):
//!
//! | model          | weights                                              |
//! |----------------|------------------------------------------------------|
//! | first_touch    | `1, 0, …, 0`                                         |
//! | last_touch     | `0, …, 0, 1`                                         |
//! | linear         | `1, 1, …, 1`                                         |
//! | position_based | n=1: `1`; n=2: `1, 1`; n≥3: `2(n−2), 1, …, 1, 2(n−2)` |
//!
//! For position based with n ≥ 3 the total is `5(n−2)`, so the first and
//! last touches get exactly 40 % each and the `n−2` middle touches share
//! 20 % equally. Time decay weighs each touch `0.5^(age / half_life)` with
//! the age in continuous days; those real weights become integer weights
//! through [`crate::split::fixed_point_weights`].

use super::config::ModelKind;

/// Exact integer weights of a rule-based model over `n` touches in time order.
///
/// Returns `false` (leaving `out` empty) for models that are not exact rules
/// (time decay and the data-driven models).
pub(crate) fn rule_weights(model: ModelKind, n: usize, out: &mut Vec<u64>) -> bool {
    out.clear();
    if n == 0 {
        return matches!(
            model,
            ModelKind::FirstTouch
                | ModelKind::LastTouch
                | ModelKind::Linear
                | ModelKind::PositionBased
        );
    }
    match model {
        ModelKind::FirstTouch => {
            out.resize(n, 0);
            out[0] = 1;
        }
        ModelKind::LastTouch => {
            out.resize(n, 0);
            out[n - 1] = 1;
        }
        ModelKind::Linear => out.resize(n, 1),
        ModelKind::PositionBased => {
            if n <= 2 {
                out.resize(n, 1);
            } else {
                let end = 2 * (n as u64 - 2);
                out.resize(n, 1);
                out[0] = end;
                out[n - 1] = end;
            }
        }
        ModelKind::TimeDecay | ModelKind::Markov | ModelKind::Shapley => return false,
    }
    true
}

/// Real time-decay weights `0.5^((age − youngest age) / half_life)` into `out`.
///
/// Measuring from the youngest touch instead of from the conversion changes
/// nothing once normalised, but keeps the largest weight at exactly 1, so a
/// journey of very old touches cannot underflow to all zeros.
pub(crate) fn time_decay_weights(ages_days: &[f64], half_life_days: f64, out: &mut Vec<f64>) {
    out.clear();
    let youngest = ages_days.iter().copied().fold(f64::INFINITY, f64::min);
    out.extend(
        ages_days
            .iter()
            .map(|&age| (-(age - youngest) / half_life_days).exp2()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::split;

    fn weights(model: ModelKind, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        assert!(rule_weights(model, n, &mut out));
        out
    }

    #[test]
    fn first_touch_gives_everything_to_the_earliest_touch() {
        assert_eq!(
            split(1000, &weights(ModelKind::FirstTouch, 3)),
            vec![1000, 0, 0]
        );
    }

    #[test]
    fn last_touch_gives_everything_to_the_latest_touch() {
        assert_eq!(
            split(1000, &weights(ModelKind::LastTouch, 3)),
            vec![0, 0, 1000]
        );
    }

    #[test]
    fn linear_splits_one_euro_three_ways_as_34_33_33() {
        assert_eq!(split(100, &weights(ModelKind::Linear, 3)), vec![34, 33, 33]);
    }

    #[test]
    fn position_based_gives_forty_twenty_forty_for_three_touches() {
        assert_eq!(
            split(1000, &weights(ModelKind::PositionBased, 3)),
            vec![400, 200, 400]
        );
    }

    #[test]
    fn position_based_shares_the_middle_twenty_percent_over_four_middle_touches() {
        // 6 touches: 40 %, 5 % × 4, 40 %.
        assert_eq!(
            split(10_000, &weights(ModelKind::PositionBased, 6)),
            vec![4000, 500, 500, 500, 500, 4000]
        );
    }

    #[test]
    fn position_based_splits_two_touches_half_and_half_and_one_touch_whole() {
        assert_eq!(
            split(1000, &weights(ModelKind::PositionBased, 2)),
            vec![500, 500]
        );
        assert_eq!(
            split(1000, &weights(ModelKind::PositionBased, 1)),
            vec![1000]
        );
    }

    #[test]
    fn time_decay_halves_the_weight_of_a_touch_one_half_life_older() {
        // Ages 0, 7 and 14 days with a 7-day half-life: weights 1, 1/2, 1/4,
        // shares 4/7, 2/7, 1/7 → 700 minor units split 400, 200, 100.
        let mut raw = Vec::new();
        time_decay_weights(&[14.0, 7.0, 0.0], 7.0, &mut raw);
        assert_eq!(raw, vec![0.25, 0.5, 1.0]);
        let mut fixed = Vec::new();
        crate::split::fixed_point_weights(&raw, &mut fixed);
        assert_eq!(split(700, &fixed), vec![100, 200, 400]);
    }

    #[test]
    fn time_decay_uses_continuous_ages_and_survives_very_old_touches() {
        // 3.5 days apart with a 7-day half-life: ratio 2^-0.5 ≈ 0.7071.
        let mut raw = Vec::new();
        time_decay_weights(&[10_003.5, 10_000.0], 7.0, &mut raw);
        assert!((raw[0] - 0.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(raw[1], 1.0);
    }

    #[test]
    fn time_decay_is_not_an_exact_rule() {
        assert!(!rule_weights(ModelKind::TimeDecay, 2, &mut Vec::new()));
    }
}
