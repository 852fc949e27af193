//! Data-driven Shapley model: fair shares of channel coalitions.
//!
//! **Value of a coalition.** `v(T)` is the conversion rate of the period's
//! journeys whose set of distinct channels is exactly `T`, and 0 for a set
//! no journey had.
//!
//! **Shapley value.** For a journey whose distinct channels form `S`
//! (`n = |S|`):
//!
//! ```text
//! φ_c = Σ_{T⊆S, c∈T}     (|T|−1)!(n−|T|)!/n! · v(T)
//!     − Σ_{T⊆S, c∉T, T≠∅} |T|!(n−|T|−1)!/n! · v(T)
//! ```
//!
//! The coefficients are computed as `1 / (n · C(n−1, |T|−1))` and
//! `1 / (n · C(n−1, |T|))`. Since `v(T) = 0` for every set not observed,
//! only observed coalitions with conversions contribute: the sums run over
//! those (checking `T ⊆ S`) instead of all `2ⁿ` subsets. That is **exact for
//! every `n`**, so no approximation is needed beyond 16 channels; the cost
//! per distinct set is `O(coalitions · n)`.
//!
//! **Cache.** φ is computed once per distinct set seen in the fit and stored
//! in it ([`Coalition::values`]); a set first seen at attribution time is
//! computed on demand from the stored coalitions.
//!
//! **Shares.** Negative φ count as 0 and the rest is renormalised; when no
//! φ is positive the distinct channels share equally. A channel's share is
//! then divided evenly among that channel's touches in the journey.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

use super::journey::{FxHashMap, Interner, Journey};
use crate::FieldError;

/// Journeys sharing one set of distinct channels, with its Shapley values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coalition {
    /// The distinct channels, sorted by name.
    pub channels: Vec<String>,
    pub journeys: u64,
    pub conversions: u64,
    /// φ of each channel in `channels`, same order (may be negative).
    pub values: Vec<f64>,
}

impl Coalition {
    /// `v(T)`: the conversion rate of these journeys.
    pub fn conversion_rate(&self) -> f64 {
        if self.journeys == 0 {
            0.0
        } else {
            self.conversions as f64 / self.journeys as f64
        }
    }
}

/// Coalition values fitted over a period's journeys; stored with the
/// period so attributions made with it can be reproduced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapleyFit {
    /// Journeys counted (journeys with no touches are skipped).
    pub journeys: u64,
    pub conversions: u64,
    /// Every channel seen, sorted by name.
    pub channels: Vec<String>,
    /// Every distinct channel set seen, sorted by its channels.
    pub coalitions: Vec<Coalition>,
    /// Lookup tables rebuilt on first use (not serialised).
    #[serde(skip)]
    index: OnceLock<Index>,
}

/// Coalitions by channel ids, for lookups and on-demand Shapley values.
#[derive(Debug, Clone, Default)]
struct Index {
    by_set: FxHashMap<Vec<u32>, usize>,
    /// Coalitions with `v(T) > 0`: the only ones that enter a Shapley sum.
    positive: Vec<(Vec<u32>, f64)>,
}

impl ShapleyFit {
    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut index = Index::default();
            for (i, c) in self.coalitions.iter().enumerate() {
                let ids: Vec<u32> = c
                    .channels
                    .iter()
                    .map(|name| self.channel_id(name))
                    .collect();
                let v = c.conversion_rate();
                if v > 0.0 {
                    index.positive.push((ids.clone(), v));
                }
                index.by_set.insert(ids, i);
            }
            index
        })
    }

    /// A channel's id: its rank among the fit's channels, or a number past
    /// them for a channel the fit never saw (it is in no coalition).
    fn channel_id(&self, name: &str) -> u32 {
        match self.channels.binary_search_by(|c| c.as_str().cmp(name)) {
            Ok(i) => i as u32,
            Err(_) => u32::MAX,
        }
    }

    /// Shapley values φ for a set of distinct channels (sorted, no repeats).
    ///
    /// Channels the fit never saw get ids past the known ones in the
    /// order given, which keeps the set sorted.
    pub fn values(&self, set: &[&str]) -> Vec<f64> {
        let mut next_unknown = self.channels.len() as u32;
        let ids: Vec<u32> = set
            .iter()
            .map(|name| match self.channel_id(name) {
                u32::MAX => {
                    next_unknown += 1;
                    next_unknown - 1
                }
                id => id,
            })
            .collect();
        let index = self.index();
        if let Some(&i) = index.by_set.get(&ids) {
            return self.coalitions[i].values.clone();
        }
        // Unknown channels may sort anywhere by name: compute on ids in
        // increasing order, then put the values back in the caller's order.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i]);
        let sorted: Vec<u32> = order.iter().map(|&i| ids[i]).collect();
        let mut values = Vec::new();
        shapley_values(&sorted, &index.positive, &mut values);
        let mut out = vec![0.0; ids.len()];
        for (k, &i) in order.iter().enumerate() {
            out[i] = values[k];
        }
        out
    }

    /// Each channel's share of a conversion whose distinct channels are
    /// `set` (sorted, no repeats): φ⁺ normalised, or equal if no φ is positive.
    pub fn shares(&self, set: &[&str]) -> Vec<f64> {
        let mut values = self.values(set);
        positive_shares(&mut values);
        values
    }
}

/// Turn Shapley values into shares in place: negatives to 0, normalised;
/// equal shares when nothing is positive.
pub(crate) fn positive_shares(values: &mut [f64]) {
    for v in values.iter_mut() {
        if !(v.is_finite() && *v > 0.0) {
            *v = 0.0;
        }
    }
    let sum: f64 = values.iter().sum();
    let n = values.len() as f64;
    for v in values.iter_mut() {
        *v = if sum > 0.0 { *v / sum } else { 1.0 / n };
    }
}

/// Fit coalition values over `journeys`.
pub fn fit_shapley<S: AsRef<str>>(journeys: &[Journey<S>]) -> Result<ShapleyFit, FieldError> {
    let too_many = || FieldError::new("journeys", "more journeys than a 64-bit count holds");
    let mut interner = Interner::default();
    let mut sets: FxHashMap<Vec<u32>, (u64, u64)> = FxHashMap::default();
    let mut set: Vec<u32> = Vec::new();
    let (mut total, mut conversions) = (0u64, 0u64);
    for j in journeys {
        let weight = j.conversions.checked_add(j.nulls).ok_or_else(too_many)?;
        set.clear();
        set.extend(j.path.iter().map(|ch| interner.id(ch.as_ref())));
        set.sort_unstable();
        set.dedup();
        if weight == 0 || set.is_empty() {
            continue;
        }
        total = total.checked_add(weight).ok_or_else(too_many)?;
        conversions = conversions
            .checked_add(j.conversions)
            .ok_or_else(too_many)?;
        // Look up by slice first so only new sets allocate a key.
        let entry = match sets.get_mut(set.as_slice()) {
            Some(e) => e,
            None => sets.entry(set.clone()).or_default(),
        };
        entry.0 += weight;
        entry.1 += j.conversions;
    }

    let (channels, rank) = interner.sorted();
    let mut coalitions: Vec<(Vec<u32>, u64, u64)> = sets
        .into_iter()
        .map(|(ids, (n, c))| {
            let mut ids: Vec<u32> = ids.iter().map(|&i| rank[i as usize]).collect();
            ids.sort_unstable();
            (ids, n, c)
        })
        .collect();
    coalitions.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let positive: Vec<(Vec<u32>, f64)> = coalitions
        .iter()
        .filter(|c| c.2 > 0)
        .map(|c| (c.0.clone(), c.2 as f64 / c.1 as f64))
        .collect();
    let mut values = Vec::new();
    let coalitions = coalitions
        .into_iter()
        .map(|(ids, n, c)| {
            shapley_values(&ids, &positive, &mut values);
            Coalition {
                channels: ids.iter().map(|&i| channels[i as usize].clone()).collect(),
                journeys: n,
                conversions: c,
                values: values.clone(),
            }
        })
        .collect();
    Ok(ShapleyFit {
        journeys: total,
        conversions,
        channels,
        coalitions,
        index: OnceLock::new(),
    })
}

/// `C(n, k)` as a float (exact up to 2^53, correctly rounded beyond).
fn binomial(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// φ for the sorted set `set` into `out`, summing over the coalitions in
/// `positive` (sorted ids with `v(T) > 0`) that are subsets of `set`.
pub(crate) fn shapley_values(set: &[u32], positive: &[(Vec<u32>, f64)], out: &mut Vec<f64>) {
    let n = set.len();
    out.clear();
    out.resize(n, 0.0);
    if n == 0 {
        return;
    }
    // coef_in[t]  = (t−1)!(n−t)!/n! = 1 / (n · C(n−1, t−1)), t = 1..=n
    // coef_out[t] = t!(n−t−1)!/n!   = 1 / (n · C(n−1, t)),   t = 1..n
    let coef_in: Vec<f64> = (0..=n)
        .map(|t| {
            if t == 0 {
                0.0
            } else {
                1.0 / (n as f64 * binomial(n - 1, t - 1))
            }
        })
        .collect();
    let coef_out: Vec<f64> = (0..=n)
        .map(|t| {
            if t == 0 || t == n {
                0.0
            } else {
                1.0 / (n as f64 * binomial(n - 1, t))
            }
        })
        .collect();
    let mut member = vec![false; n];
    for (t_set, v) in positive {
        if t_set.len() > n || !mark_subset(t_set, set, &mut member) {
            continue;
        }
        let t = t_set.len();
        for (phi, &inside) in out.iter_mut().zip(&member) {
            if inside {
                *phi += coef_in[t] * v;
            } else {
                *phi -= coef_out[t] * v;
            }
        }
    }
}

/// Whether sorted `sub` ⊆ sorted `set`; marks which members of `set` are in `sub`.
fn mark_subset(sub: &[u32], set: &[u32], member: &mut [bool]) -> bool {
    member.fill(false);
    let mut j = 0;
    for &x in sub {
        while j < set.len() && set[j] < x {
            j += 1;
        }
        if j == set.len() || set[j] != x {
            return false;
        }
        member[j] = true;
        j += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn journeys(rows: &[(&'static str, u64, u64)]) -> Vec<Journey<&'static str>> {
        rows.iter()
            .map(|&(p, c, n)| Journey {
                path: p.split(" > ").collect(),
                conversions: c,
                nulls: n,
            })
            .collect()
    }

    /// Hand-computed two-channel example:
    ///
    /// ```text
    /// {A}    4 journeys, 1 converts   v(A)   = 1/4
    /// {B}    2 journeys, 1 converts   v(B)   = 1/2
    /// {A,B}  1 journey,  1 converts   v(A,B) = 1
    /// S = {A,B}, n = 2: coefficients 1/2 for every term
    /// φ_A = ½·v(A) + ½·v(AB) − ½·v(B) = 1/8 + 1/2 − 1/4 = 3/8
    /// φ_B = ½·v(B) + ½·v(AB) − ½·v(A) = 1/4 + 1/2 − 1/8 = 5/8
    /// φ_A + φ_B = v(AB) = 1; shares 3/8 and 5/8.
    /// ```
    #[test]
    fn shapley_splits_two_channels_three_eighths_five_eighths() {
        let js = journeys(&[("A", 1, 3), ("B", 1, 1), ("B > A > B", 1, 0)]);
        let fit = fit_shapley(&js).unwrap();
        assert_eq!(fit.channels, vec!["A", "B"]);
        assert_eq!((fit.journeys, fit.conversions), (7, 3));
        let ab = fit.values(&["A", "B"]);
        assert!(close(ab[0], 3.0 / 8.0) && close(ab[1], 5.0 / 8.0), "{ab:?}");
        let single = fit.values(&["A"]);
        assert!(close(single[0], 0.25));
        let shares = fit.shares(&["A", "B"]);
        assert!(close(shares[0], 0.375) && close(shares[1], 0.625));
    }

    /// Three channels where one coalition's value drives a negative φ:
    ///
    /// ```text
    /// v(A) = 1, v(B) = 0 (observed, never converts), v(A,B) = 1/2, C unseen.
    /// S = {A,B}: φ_A = ½·1 + ½·½ − ½·0 = 3/4; φ_B = ½·0 + ½·½ − ½·1 = −1/4
    /// shares: A 1 (negative φ_B counts as 0), B 0.
    /// S = {A,B,C} (n = 3; coefficients 1/3 for singletons, 1/6 for pairs):
    /// φ_A = ⅓·1 + ⅙·½ = 5/12; φ_B = ⅙·½ − ⅙·1 = −1/12; φ_C = −⅙·1 − ⅓·½ = −1/3
    /// Σ φ = 0 = v(A,B,C) (efficiency holds for unseen sets too).
    /// ```
    #[test]
    fn shapley_drops_negative_values_and_renormalises() {
        let js = journeys(&[("A", 2, 0), ("B", 0, 3), ("A > B", 1, 1)]);
        let fit = fit_shapley(&js).unwrap();
        let v = fit.values(&["A", "B"]);
        assert!(close(v[0], 0.75) && close(v[1], -0.25), "{v:?}");
        assert_eq!(fit.shares(&["A", "B"]), vec![1.0, 0.0]);
        let v = fit.values(&["A", "B", "C"]);
        assert!(
            close(v[0], 5.0 / 12.0) && close(v[1], -1.0 / 12.0) && close(v[2], -1.0 / 3.0),
            "{v:?}"
        );
    }

    #[test]
    fn shapley_shares_equally_when_no_value_is_positive() {
        let fit = fit_shapley(&journeys(&[("A > B", 0, 2)])).unwrap();
        assert_eq!(fit.shares(&["A", "B"]), vec![0.5, 0.5]);
    }

    #[test]
    fn shapley_values_sum_to_the_coalition_value_for_twenty_channels() {
        // 20 channels: beyond the 2^16 subsets the brute force would need,
        // the sum over observed coalitions stays exact (efficiency: Σφ = v(S)).
        let names: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
        let mut js: Vec<Journey<String>> = Vec::new();
        for i in 0..20 {
            js.push(Journey {
                path: vec![names[i].clone()],
                conversions: (i % 3) as u64,
                nulls: 2,
            });
            js.push(Journey {
                path: names[..=i].to_vec(),
                conversions: 1,
                nulls: (i % 4) as u64,
            });
        }
        let fit = fit_shapley(&js).unwrap();
        let set: Vec<&str> = names.iter().map(String::as_str).collect();
        let v = fit.values(&set);
        let full = fit
            .coalitions
            .iter()
            .find(|c| c.channels.len() == 20)
            .unwrap();
        assert!((v.iter().sum::<f64>() - full.conversion_rate()).abs() < 1e-9);
    }

    #[test]
    fn the_fit_round_trips_through_json_and_ignores_journey_order() {
        let mut js = journeys(&[("A > B", 2, 1), ("B > C > A", 1, 4), ("C", 3, 2)]);
        let fit = fit_shapley(&js).unwrap();
        js.reverse();
        let again = fit_shapley(&js).unwrap();
        assert_eq!(fit.coalitions, again.coalitions);
        let json = serde_json::to_string(&fit).unwrap();
        let back: ShapleyFit = serde_json::from_str(&json).unwrap();
        assert_eq!(back.coalitions, fit.coalitions);
        assert_eq!(back.values(&["A", "B"]), fit.values(&["A", "B"]));
        assert_eq!(back.values(&["A", "Z"]), fit.values(&["A", "Z"]));
        // An unseen channel sorting before the known ones keeps its place.
        let v = fit.values(&["0", "A"]);
        let w = fit.values(&["A", "Z"]);
        assert_eq!((v[0], v[1]), (w[1], w[0]));
    }
}
