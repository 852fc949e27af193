//! Exact splits of an amount of minor units into parts that add up to the whole.
//!
//! Shares are given as non-negative integer weights; part `i` of `total` is
//! `total · wᵢ / W` with `W = Σ w`, which is rarely a whole number of minor
//! units. The largest-remainder (Hamilton) method settles it exactly:
//!
//! 1. every part gets `⌊|total| · wᵢ / W⌋`;
//! 2. the units left over (always fewer than the number of parts) go one each
//!    to the parts with the largest remainders `|total| · wᵢ mod W`;
//! 3. **tie-break**: between equal remainders the part with the lower index
//!    wins. Attribution orders parts by time (touches by time then id,
//!    partners by their earliest touch), so ties go to the earlier touch.
//!
//! A negative total (refund, chargeback) is split as `|total|` and negated,
//! so a reversal mirrors the original sale to the minor unit. When every
//! weight is zero the parts are equal (each weight counts as 1). An empty
//! list of weights yields no parts: there is nothing to give the amount to,
//! and the caller decides what an unattributed amount means.
//!
//! Models whose weights are real numbers (time decay, Markov, Shapley) turn
//! them into integer weights first with [`fixed_point_weights`], which is
//! deterministic, so the same inputs always give the same minor units.

/// The fixed-point unit of [`fixed_point_weights`]: a share of 1 is `2^40`.
///
/// 2^40 ≈ 1.1·10¹² keeps float shares to about 12 significant digits while
/// `|total| · weight` stays far inside `u128`.
pub const FIXED_POINT_ONE: u64 = 1 << 40;

/// Reusable buffers for [`split_into`], so hot loops do not allocate.
#[derive(Debug, Default, Clone)]
pub struct SplitScratch {
    remainders: Vec<(u128, u32)>,
}

/// Split `total` minor units by `weights` into `out` (cleared first).
///
/// See the module documentation for the rule; `out[i]` belongs to
/// `weights[i]`, `out` sums to `total` whenever `weights` is not empty, and
/// every part has the sign of `total` (or is zero).
pub fn split_into(total: i64, weights: &[u64], out: &mut Vec<i64>, scratch: &mut SplitScratch) {
    out.clear();
    if weights.is_empty() {
        return;
    }
    let abs = total.unsigned_abs();
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let equal = sum == 0;
    let weight = |w: u64| if equal { 1 } else { w };
    let sum = if equal { weights.len() as u128 } else { sum };

    scratch.remainders.clear();
    let mut given: u128 = 0;
    // Fast path: when |total|·W fits in 64 bits every product does too, and
    // 64-bit division is several times cheaper than 128-bit division.
    match (u64::try_from(sum), abs.checked_mul(sum as u64)) {
        (Ok(sum64), Some(_)) => {
            for (i, &w) in weights.iter().enumerate() {
                let p = abs * weight(w);
                let (q, r) = (p / sum64, p % sum64);
                given += u128::from(q);
                out.push(q as i64);
                scratch.remainders.push((u128::from(r), i as u32));
            }
        }
        _ => {
            for (i, &w) in weights.iter().enumerate() {
                let p = u128::from(abs) * u128::from(weight(w));
                let (q, r) = (p / sum, p % sum);
                given += q;
                // q ≤ |total| ≤ 2^63, stored as the bit pattern and fixed below.
                out.push(q as u64 as i64);
                scratch.remainders.push((r, i as u32));
            }
        }
    }
    let leftover = (u128::from(abs) - given) as usize;
    if leftover > 0 {
        // Largest remainder first; equal remainders: lower index first.
        scratch
            .remainders
            .sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in &scratch.remainders[..leftover] {
            let part = &mut out[i as usize];
            *part = (*part as u64 + 1) as i64;
        }
    }
    if total < 0 {
        for part in out.iter_mut() {
            // Parts are ≤ 2^63 as unsigned; 2^63 negates to i64::MIN exactly.
            *part = (*part as u64).wrapping_neg() as i64;
        }
    }
}

/// Split `total` minor units by `weights`; see [`split_into`].
pub fn split(total: i64, weights: &[u64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(weights.len());
    split_into(total, weights, &mut out, &mut SplitScratch::default());
    out
}

/// Turn real-valued weights into integer weights in units of [`FIXED_POINT_ONE`].
///
/// Each weight is normalised by the sum and rounded half away from zero
/// (`f64::round`), which is deterministic. Negative, NaN or infinite
/// weights count as zero; if nothing positive remains, every weight becomes
/// 1 (an equal split) — callers that need another fallback check first.
pub fn fixed_point_weights(weights: &[f64], out: &mut Vec<u64>) {
    out.clear();
    let clean = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let sum: f64 = weights.iter().map(|&w| clean(w)).sum();
    if !(sum.is_finite() && sum > 0.0) {
        out.extend(weights.iter().map(|_| 1));
        return;
    }
    let scale = FIXED_POINT_ONE as f64;
    out.extend(
        weights
            .iter()
            .map(|&w| ((clean(w) / sum) * scale).round() as u64),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_hundred_split_three_ways_gives_the_leftover_unit_to_the_first_part() {
        assert_eq!(split(100, &[1, 1, 1]), vec![34, 33, 33]);
    }

    #[test]
    fn the_leftover_goes_to_the_largest_remainder_not_the_first_part() {
        // 10 · 1/6 = 1.67, 10 · 2/6 = 3.33, 10 · 3/6 = 5: the 0.67 wins.
        assert_eq!(split(10, &[1, 2, 3]), vec![2, 3, 5]);
    }

    #[test]
    fn a_refund_mirrors_the_sale_exactly() {
        assert_eq!(split(-100, &[1, 1, 1]), vec![-34, -33, -33]);
        assert_eq!(split(-10, &[1, 2, 3]), vec![-2, -3, -5]);
    }

    #[test]
    fn all_zero_weights_split_equally() {
        assert_eq!(split(5, &[0, 0]), vec![3, 2]);
    }

    #[test]
    fn no_weights_give_no_parts() {
        assert!(split(5, &[]).is_empty());
    }

    #[test]
    fn extreme_totals_and_weights_use_the_wide_path_and_still_sum() {
        let parts = split(i64::MIN, &[u64::MAX, u64::MAX, 1]);
        assert_eq!(
            parts.iter().map(|&p| i128::from(p)).sum::<i128>(),
            i128::from(i64::MIN)
        );
        let parts = split(i64::MAX, &[u64::MAX, 3]);
        assert_eq!(
            parts.iter().map(|&p| i128::from(p)).sum::<i128>(),
            i128::from(i64::MAX)
        );
    }

    #[test]
    fn fixed_point_weights_normalise_to_one_and_ignore_negatives() {
        let mut out = Vec::new();
        fixed_point_weights(&[1.0, 3.0, -2.0, f64::NAN], &mut out);
        assert_eq!(
            out,
            vec![FIXED_POINT_ONE / 4, FIXED_POINT_ONE / 4 * 3, 0, 0]
        );
        fixed_point_weights(&[0.0, 0.0], &mut out);
        assert_eq!(out, vec![1, 1]);
    }

    proptest! {
        #[test]
        fn parts_always_sum_to_the_total_and_share_its_sign(
            total in any::<i64>(),
            weights in prop::collection::vec(any::<u64>(), 1..25),
        ) {
            let parts = split(total, &weights);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(parts.iter().map(|&p| i128::from(p)).sum::<i128>(), i128::from(total));
            for p in &parts {
                let same_sign = if total >= 0 { *p >= 0 } else { *p <= 0 };
                prop_assert!(same_sign, "part {} of {}", p, total);
            }
        }

        #[test]
        fn small_weights_stay_within_one_unit_of_the_exact_share(
            total in -1_000_000_000i64..1_000_000_000,
            weights in prop::collection::vec(0u64..1000, 1..25),
        ) {
            let parts = split(total, &weights);
            let sum: i128 = weights.iter().map(|&w| i128::from(w)).sum();
            for (p, &w) in parts.iter().zip(&weights) {
                let exact = if sum == 0 {
                    i128::from(total) * 1_000 / weights.len() as i128
                } else {
                    i128::from(total) * 1_000 * i128::from(w) / sum
                };
                prop_assert!((i128::from(*p) * 1_000 - exact).abs() < 1_000);
            }
        }

        #[test]
        fn refunds_are_the_exact_negation_of_sales(
            total in 0i64..i64::MAX,
            weights in prop::collection::vec(any::<u64>(), 1..25),
        ) {
            let neg: Vec<i64> = split(-total, &weights).into_iter().map(|p| -p).collect();
            prop_assert_eq!(split(total, &weights), neg);
        }
    }
}
