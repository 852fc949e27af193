//! Robust statistics for the fraud signals: where a partner stands against
//! the program (median, MAD and the robust z-score), percentiles of the
//! program's own distributions, and jumps in a partner's daily clicks.
//!
//! Robust because the samples these run on contain the fraud they look
//! for: a mean and standard deviation are dragged towards a handful of
//! extreme partners until those no longer look extreme, while the median
//! and the median absolute deviation (MAD) ignore up to half the sample.
//!
//! Every function returns `None` rather than a number it cannot stand
//! behind: an empty sample, a NaN, or a spread of zero.

/// `0.6745` is the 75th percentile of the standard normal: for normal
/// data, `MAD ≈ 0.6745·σ`, so `0.6745·(x − median)/MAD` reads like an
/// ordinary z-score (Iglewicz and Hoaglin's modified z-score).
pub const MAD_TO_Z: f64 = 0.6745;

/// When the MAD is 0 the mean absolute deviation stands in, scaled by
/// `√(π/2) ≈ 1.2533` so that it too estimates σ for normal data
/// (`σ ≈ 1.2533·MeanAD`).
pub const MEAN_AD_TO_SIGMA: f64 = 1.253_314;

/// Days of history [`volume_jump`] needs before it says anything.
pub const MIN_HISTORY_DAYS: usize = 7;

/// The median of `values`, which are reordered in place (a selection, not
/// a full sort: linear time); the mean of the two middle values when the
/// count is even. `None` when empty or when any value is NaN.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let n = values.len();
    let (below, mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        return Some(mid);
    }
    // Even: the other middle value is the largest of the lower half.
    let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + mid) / 2.0)
}

/// The median absolute deviation of `values` around `median`:
/// `median(|xᵢ − median|)`. `None` when empty or NaN is involved.
pub fn mad(values: &[f64], median: f64) -> Option<f64> {
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    self::median(&mut deviations)
}

/// The mean absolute deviation of `values` around `center` (the fallback
/// scale when the MAD is 0). `None` when empty or not finite.
pub fn mean_abs_dev(values: &[f64], center: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let sum: f64 = values.iter().map(|v| (v - center).abs()).sum();
    let mean = sum / values.len() as f64;
    mean.is_finite().then_some(mean)
}

/// The robust (modified) z-score `0.6745·(x − median)/MAD`: about how many
/// standard deviations `x` lies from the median, positive above it.
///
/// `None` when the MAD is 0 (more than half the sample is one value) or
/// anything is not finite: there is no scale to measure in. Callers fall
/// back, see [`standing`].
pub fn robust_z(x: f64, median: f64, mad: f64) -> Option<f64> {
    if !mad.is_finite() || mad <= 0.0 || !x.is_finite() || !median.is_finite() {
        return None;
    }
    Some(MAD_TO_Z * (x - median) / mad)
}

/// The `p`th percentile (`p` from 0 to 100) of an ascending `sorted`
/// sample, by linear interpolation between the closest ranks (the
/// "type 7" definition R, NumPy and spreadsheets use by default): the
/// value at fractional rank `(n − 1)·p/100`. It is monotone in `p`, gives
/// the minimum at 0 and the maximum at 100.
///
/// `None` when the sample is empty, `p` is outside 0 to 100 (or NaN), or
/// the sample holds a NaN. The sample is not checked for order: an
/// unsorted one gives a meaningless answer.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) || sorted.iter().any(|v| v.is_nan()) {
        return None;
    }
    let rank = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// How the scale behind a [`Standing`]'s z-score was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The normal case: the larger of `MAD/0.6745` and `IQR/1.349`, both
    /// estimates of σ that ignore the extremes.
    Robust,
    /// Both were 0 (over three quarters of the sample share one value, as
    /// refund rates do when most partners have none): the mean absolute
    /// deviation, which still sees the minority that differs.
    MeanAbsDev,
    /// The whole sample is one value: there is no scale, and a value is
    /// an outlier only if it lies more than a fixed margin from it.
    Margin,
}

/// Where a value stands against a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub median: f64,
    /// Robust standard deviations above the median (negative below).
    /// With [`Scale::Margin`] it is `±∞` beyond the margin, else 0.
    pub z: f64,
    pub scale: Scale,
}

/// `IQR ≈ 1.349·σ` for normal data.
const IQR_TO_SIGMA: f64 = 1.349;

/// A robust estimate of σ from an ascending sample: the larger of
/// `MAD/0.6745` and `IQR/1.349` (see [`standing`] for why both). `None`
/// when empty or NaN is involved; 0 when over half the sample is one
/// value and its quartiles agree.
pub fn robust_sigma(sorted: &[f64]) -> Option<f64> {
    let median = percentile(sorted, 50.0)?;
    let mad = mad(sorted, median)?;
    let iqr = percentile(sorted, 75.0)? - percentile(sorted, 25.0)?;
    Some((mad / MAD_TO_Z).max(iqr / IQR_TO_SIGMA))
}

/// Where `x` stands against `sample`: `(x − median)/σ`, with σ estimated
/// robustly and two fallbacks when that estimate is 0.
///
/// 1. σ is the larger of `MAD/0.6745` (so where the MAD dominates the
///    z-score is exactly [`robust_z`]) and `IQR/1.349`. For symmetric data
///    the two agree. The IQR is there for samples that are nearly half one
///    value, as refund rates are when many partners have none: the MAD
///    then collapses towards 0 and makes ordinary rates look extreme,
///    while the upper quartile still sees the spread. The price is a
///    breakdown point of 25% instead of 50%: more than a quarter of the
///    sample must be extreme before the extremes hide themselves.
/// 2. Both 0 but the sample is not constant:
///    `(x − median)/(1.2533·MeanAD)` (the fallback IBM SPSS documents for
///    its modified z-score).
/// 3. A constant sample: `z` is `+∞` if `x` exceeds the median by more than
///    `margin`, `−∞` if below by more, else 0 (an absolute margin in the
///    value's own unit: with no spread there is nothing else to go on).
///
/// `None` when the sample is empty or anything is NaN.
///
/// Cost: a copy and a sort of the sample, then linear; a sample already in
/// ascending order sorts in linear time.
pub fn standing(x: f64, sample: &[f64], margin: f64) -> Option<Standing> {
    if x.is_nan() {
        return None;
    }
    let mut sorted = sample.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let median = percentile(&sorted, 50.0)?;
    let sigma = robust_sigma(&sorted)?;
    if sigma > 0.0 {
        return Some(Standing {
            median,
            z: (x - median) / sigma,
            scale: Scale::Robust,
        });
    }
    let mean_ad = mean_abs_dev(&sorted, median)?;
    if mean_ad > 0.0 {
        return Some(Standing {
            median,
            z: (x - median) / (MEAN_AD_TO_SIGMA * mean_ad),
            scale: Scale::MeanAbsDev,
        });
    }
    let d = x - median;
    let z = if d > margin {
        f64::INFINITY
    } else if d < -margin {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    Some(Standing {
        median,
        z,
        scale: Scale::Margin,
    })
}

/// How many robust standard deviations `today`'s clicks lie above the
/// partner's own daily history (negative below); `None` with fewer than
/// [`MIN_HISTORY_DAYS`] days of history.
///
/// The standard deviation is `max(MAD/0.6745, √median, 1)`: clicks are
/// counts, and a count of about `m` wobbles by about `√m` by chance alone
/// (Poisson), so a very steady history (MAD near 0) does not turn every
/// small wobble into a jump; the floor of 1 does the same for a partner
/// with no clicks most days.
pub fn volume_jump(history_daily: &[u64], today: u64) -> Option<f64> {
    if history_daily.len() < MIN_HISTORY_DAYS {
        return None;
    }
    // Counts are far below 2^53, so f64 holds them exactly.
    let mut days: Vec<f64> = history_daily.iter().map(|&d| d as f64).collect();
    let median = median(&mut days)?;
    let mad = mad(&days, median)?;
    let sd = (mad / MAD_TO_Z).max(median.sqrt()).max(1.0);
    Some((today as f64 - median) / sd)
}

/// Robust summary of a partner's click history, for evidence texts: the
/// median clicks a day.
pub fn median_daily(history_daily: &[u64]) -> Option<f64> {
    let mut days: Vec<f64> = history_daily.iter().map(|&d| d as f64).collect();
    median(&mut days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn median_of_odd_and_even_counts_and_of_nothing() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [1.0, f64::NAN]), None);
    }

    #[test]
    fn mad_ignores_a_single_wild_value() {
        let v = [1.0, 2.0, 3.0, 4.0, 1000.0];
        // deviations from 3: 2, 1, 0, 1, 997 → median 1
        assert_eq!(mad(&v, 3.0), Some(1.0));
        assert_eq!(mad(&[], 0.0), None);
    }

    #[test]
    fn robust_z_reads_like_a_z_score_and_has_none_without_spread() {
        assert_eq!(robust_z(5.0, 3.0, 0.6745), Some(2.0));
        assert_eq!(robust_z(1.0, 3.0, 0.6745), Some(-2.0));
        assert_eq!(robust_z(5.0, 3.0, 0.0), None);
        assert_eq!(robust_z(f64::NAN, 3.0, 1.0), None);
    }

    #[test]
    fn percentile_interpolates_between_ranks() {
        let s = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(percentile(&s, 0.0), Some(10.0));
        assert_eq!(percentile(&s, 100.0), Some(50.0));
        assert_eq!(percentile(&s, 50.0), Some(30.0));
        assert_eq!(percentile(&s, 10.0), Some(14.0));
        assert_eq!(percentile(&[7.0], 1.0), Some(7.0));
        assert_eq!(percentile(&s, 101.0), None);
        assert_eq!(percentile(&s, -1.0), None);
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn standing_uses_the_quartiles_when_half_the_sample_is_one_value() {
        // 11 of 20 partners without refunds: the MAD is 0, the IQR is not.
        let mut rates = vec![0.0; 11];
        rates.extend([0.03, 0.04, 0.05, 0.05, 0.06, 0.06, 0.07, 0.08, 0.1]);
        let s = standing(0.1, &rates, 0.05).unwrap();
        assert_eq!(s.scale, Scale::Robust);
        assert!(s.z < 3.0, "an ordinary refund rate: {s:?}");
        let s = standing(0.4, &rates, 0.05).unwrap();
        assert!(s.z > 6.0, "{s:?}");
        // Where the MAD is the larger, the z-score is robust_z's.
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        let s = standing(10.0, &v, 0.0).unwrap();
        assert_eq!(Some(s.z), robust_z(10.0, 3.0, 1.0));
    }

    #[test]
    fn standing_falls_back_to_mean_deviation_then_to_the_margin() {
        // Most partners have no refunds: MAD and IQR 0, some spread exists.
        let mut rates = vec![0.0; 12];
        rates.extend([0.02, 0.05, 0.04]);
        let s = standing(0.5, &rates, 0.05).unwrap();
        assert_eq!(s.scale, Scale::MeanAbsDev);
        assert!(s.z > 10.0, "{s:?}");
        let s = standing(0.0, &rates, 0.05).unwrap();
        assert_eq!(s.z, 0.0);

        let same = [0.1; 8];
        let s = standing(0.12, &same, 0.05).unwrap();
        assert_eq!((s.scale, s.z), (Scale::Margin, 0.0));
        let s = standing(0.3, &same, 0.05).unwrap();
        assert_eq!(s.z, f64::INFINITY);
        assert!(standing(0.3, &[], 0.05).is_none());
    }

    #[test]
    fn volume_jump_needs_a_week_and_measures_against_the_partners_own_history() {
        assert_eq!(volume_jump(&[100; 6], 1000), None);
        let history = [90, 110, 100, 95, 105, 100, 98, 102, 97, 103];
        let z = volume_jump(&history, 100).unwrap();
        assert!(z.abs() < 0.5, "{z}");
        let z = volume_jump(&history, 400).unwrap();
        assert!(z > 20.0, "{z}");
        // Steady history: the Poisson floor (√100 = 10) keeps 120 ordinary.
        let z = volume_jump(&[100; 14], 120).unwrap();
        assert!((z - 2.0).abs() < 1e-9, "{z}");
        // No clicks at all, then a few: the floor of 1.
        assert_eq!(volume_jump(&[0; 14], 3), Some(3.0));
    }

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(-1.0e6..1.0e6_f64, 3..60)
    }

    proptest! {
        #[test]
        fn robust_z_is_invariant_to_shifting_and_scaling_the_sample(
            mut xs in sample(),
            pick in any::<prop::sample::Index>(),
            shift in -1.0e5..1.0e5_f64,
            scale in 0.01..100.0_f64,
        ) {
            let x = xs[pick.index(xs.len())];
            let m = median(&mut xs).unwrap();
            let d = mad(&xs, m).unwrap();
            let mut ys: Vec<f64> = xs.iter().map(|v| v * scale + shift).collect();
            let y = x * scale + shift;
            let my = median(&mut ys).unwrap();
            let dy = mad(&ys, my).unwrap();
            match (robust_z(x, m, d), robust_z(y, my, dy)) {
                (Some(a), Some(b)) => prop_assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                    "z {a} became {b}"
                ),
                // A MAD of 0 stays 0 under an affine map, up to rounding.
                (None, None) => {}
                (a, b) => prop_assert!(
                    d.abs() < 1e-6 * (1.0 + m.abs()),
                    "one side had no spread: {a:?} vs {b:?} (mad {d})"
                ),
            }
        }

        #[test]
        fn percentile_is_monotone_in_p(
            mut xs in sample(),
            p in 0.0..=100.0_f64,
            q in 0.0..=100.0_f64,
        ) {
            xs.sort_by(f64::total_cmp);
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            let a = percentile(&xs, lo).unwrap();
            let b = percentile(&xs, hi).unwrap();
            prop_assert!(a <= b, "p{lo} = {a} > p{hi} = {b}");
            prop_assert!(xs[0] <= a && b <= xs[xs.len() - 1]);
        }

        #[test]
        fn median_of_a_permutation_is_the_same(
            xs in sample(),
            seed in any::<u64>(),
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let mut shuffled = xs.clone();
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let mut original = xs;
            prop_assert_eq!(median(&mut original), median(&mut shuffled));
        }
    }
}
