//! Data-driven Markov model: removal effects of an absorbing Markov chain.
//!
//! **Fitting.** Every journey (weighted by its count) walks
//! `start → s₁ → … → s_k → conversion | null`, with consecutive repeats of
//! a channel collapsed first. For order 1 a state is the current channel;
//! for orders 2 and 3 it is the window of the last 2 or 3 channels (shorter
//! at the beginning of a journey: `A > B > C` at order 2 walks
//! `start → (A) → (A,B) → (B,C)`). Transition probabilities are counts over
//! the state's outgoing total.
//!
//! **Removal effect.** `P` is the probability of reaching `conversion` from
//! `start`, found by solving `(I − Q) x = r` exactly (Gaussian elimination,
//! see [`super::linsolve`]) where `Q` holds transitions between transient
//! states and `r` the transitions into `conversion`. Removing channel `c`
//! sends every transition into a state containing `c` to `null`; solving
//! again gives `P₋c`, and `RE_c = 1 − P₋c / P`. Removal never raises the
//! conversion probability, so `RE_c ∈ [0, 1]`.
//!
//! **Weights.** `w_c = RE_c / Σ RE`. When every removal effect is zero (no
//! conversions, or conversions that no single channel carries) the channels
//! get equal weights, which makes per-conversion shares linear;
//! [`MarkovFit::fallback_linear`] records it. Per conversion, each touch's
//! share is the weight of its channel over the sum for the journey's touches
//! (see [`super::attribute`]).
//!
//! **Cost.** Counting is linear in touches; each solve is `O(S³)` on the
//! states kept, once for the full chain and once per channel. At order 1,
//! `S` is the number of channels plus one.

use serde::{Deserialize, Serialize};

use super::config::validate_order;
use super::journey::{FxHashMap, Interner, Journey};
use super::linsolve::solve_in_place;
use crate::FieldError;

/// One channel of a Markov fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkovChannel {
    pub channel: String,
    /// Conversion probability of the chain with this channel removed.
    pub conversion_probability_without: f64,
    /// `1 − P₋c / P`, in `[0, 1]`.
    pub removal_effect: f64,
    /// `RE_c / Σ RE` (or `1 / channels` when every removal effect is zero).
    pub weight: f64,
}

/// A Markov chain fitted over a period's journeys; stored with the period
/// so attributions made with it can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkovFit {
    /// 1, 2 or 3: how many consecutive touches a state remembers.
    pub order: u8,
    /// Journeys counted (journeys with no touches are skipped).
    pub journeys: u64,
    pub conversions: u64,
    /// Number of transient states of the chain, `start` included.
    pub states: usize,
    /// Probability of reaching `conversion` from `start`.
    pub conversion_probability: f64,
    /// Channels sorted by name.
    pub channels: Vec<MarkovChannel>,
    /// Every removal effect was zero, so channels weigh the same.
    pub fallback_linear: bool,
}

impl MarkovFit {
    /// The weight `w_c` of a channel, `None` if the fit never saw it.
    pub fn weight(&self, channel: &str) -> Option<f64> {
        self.channels
            .binary_search_by(|c| c.channel.as_str().cmp(channel))
            .ok()
            .map(|i| self.channels[i].weight)
    }
}

/// A state: up to 3 channel ids, unused slots [`NONE`]; `start` is special.
type State = [u32; 3];
const NONE: u32 = u32::MAX;
const START: State = [u32::MAX - 1, NONE, NONE];
const CONVERSION: State = [u32::MAX - 2, NONE, NONE];
const NULL: State = [u32::MAX - 3, NONE, NONE];

/// Fit a Markov chain of `order` (1, 2 or 3) over `journeys`.
pub fn fit_markov<S: AsRef<str>>(
    journeys: &[Journey<S>],
    order: u8,
) -> Result<MarkovFit, FieldError> {
    validate_order(order)?;
    let chain = Chain::build(journeys, usize::from(order))?;
    let p = chain.conversion_probability(None);
    let mut channels = Vec::with_capacity(chain.names.len());
    for (c, name) in chain.names.iter().enumerate() {
        let without = chain.conversion_probability(Some(c as u32));
        let removal_effect = if p > 0.0 {
            (1.0 - without / p).clamp(0.0, 1.0)
        } else {
            0.0
        };
        channels.push(MarkovChannel {
            channel: name.clone(),
            conversion_probability_without: without,
            removal_effect,
            weight: 0.0,
        });
    }
    let total: f64 = channels.iter().map(|c| c.removal_effect).sum();
    let fallback_linear = total <= 0.0;
    let equal = 1.0 / channels.len().max(1) as f64;
    for c in &mut channels {
        c.weight = if fallback_linear {
            equal
        } else {
            c.removal_effect / total
        };
    }
    Ok(MarkovFit {
        order,
        journeys: chain.journeys,
        conversions: chain.conversions,
        states: chain.states.len(),
        conversion_probability: p,
        channels,
        fallback_linear,
    })
}

/// Outgoing transitions of one transient state, as probabilities.
#[derive(Debug, Default)]
pub(crate) struct Row {
    /// (index of the next transient state, probability).
    pub(crate) next: Vec<(usize, f64)>,
    pub(crate) to_conversion: f64,
    pub(crate) to_null: f64,
}

/// The fitted chain: transient states (index 0 is `start`) and their rows.
#[derive(Debug)]
pub(crate) struct Chain {
    pub(crate) names: Vec<String>,
    pub(crate) states: Vec<State>,
    pub(crate) rows: Vec<Row>,
    journeys: u64,
    conversions: u64,
}

impl Chain {
    pub(crate) fn build<S: AsRef<str>>(
        journeys: &[Journey<S>],
        order: usize,
    ) -> Result<Chain, FieldError> {
        let too_many = || FieldError::new("journeys", "more journeys than a 64-bit count holds");
        let mut interner = Interner::default();
        let mut counts: FxHashMap<(State, State), u64> = FxHashMap::default();
        let mut path: Vec<u32> = Vec::new();
        let (mut total, mut conversions) = (0u64, 0u64);
        for j in journeys {
            let weight = j.conversions.checked_add(j.nulls).ok_or_else(too_many)?;
            path.clear();
            for ch in &j.path {
                let id = interner.id(ch.as_ref());
                if path.last() != Some(&id) {
                    path.push(id);
                }
            }
            if weight == 0 || path.is_empty() {
                continue;
            }
            total = total.checked_add(weight).ok_or_else(too_many)?;
            conversions = conversions
                .checked_add(j.conversions)
                .ok_or_else(too_many)?;
            let mut prev = START;
            for i in 0..path.len() {
                let lo = (i + 1).saturating_sub(order);
                let mut state = [NONE; 3];
                state[..=i - lo].copy_from_slice(&path[lo..=i]);
                *counts.entry((prev, state)).or_default() += weight;
                prev = state;
            }
            if j.conversions > 0 {
                *counts.entry((prev, CONVERSION)).or_default() += j.conversions;
            }
            if j.nulls > 0 {
                *counts.entry((prev, NULL)).or_default() += j.nulls;
            }
        }

        // Renumber channels by name and order states, so the fit does not
        // depend on the order of the journeys.
        let (names, rank) = interner.sorted();
        let remap = |s: State| -> State {
            if s == START || s == CONVERSION || s == NULL {
                return s;
            }
            s.map(|id| if id == NONE { NONE } else { rank[id as usize] })
        };
        let mut transitions: Vec<(State, State, u64)> = counts
            .into_iter()
            .map(|((a, b), n)| (remap(a), remap(b), n))
            .collect();
        let mut states: Vec<State> = transitions
            .iter()
            .map(|t| t.0)
            .filter(|&s| s != START)
            .collect();
        states.sort_unstable();
        states.dedup();
        states.insert(0, START);
        let index: FxHashMap<State, usize> =
            states.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        transitions.sort_unstable_by_key(|&(a, b, _)| (index[&a], b));

        let mut out_total = vec![0u64; states.len()];
        for &(a, _, n) in &transitions {
            out_total[index[&a]] += n;
        }
        let mut rows: Vec<Row> = states.iter().map(|_| Row::default()).collect();
        for &(a, b, n) in &transitions {
            let from = index[&a];
            let p = n as f64 / out_total[from] as f64;
            let row = &mut rows[from];
            if b == CONVERSION {
                row.to_conversion = p;
            } else if b == NULL {
                row.to_null = p;
            } else {
                row.next.push((index[&b], p));
            }
        }
        Ok(Chain {
            names,
            states,
            rows,
            journeys: total,
            conversions,
        })
    }

    /// Probability of converting from `start`, with channel `removed` (if
    /// any) taken out: transitions into any state containing it go to null.
    pub(crate) fn conversion_probability(&self, removed: Option<u32>) -> f64 {
        let kept_state = |s: &State| removed.is_none_or(|c| *s == START || !s.contains(&c));
        // Position of each kept state in the reduced system.
        let mut position = vec![usize::MAX; self.states.len()];
        let mut n = 0;
        for (i, s) in self.states.iter().enumerate() {
            if kept_state(s) {
                position[i] = n;
                n += 1;
            }
        }
        let mut a = vec![0.0; n * n];
        let mut b = vec![0.0; n];
        for (i, row) in self.rows.iter().enumerate() {
            let r = position[i];
            if r == usize::MAX {
                continue;
            }
            a[r * n + r] += 1.0;
            b[r] = row.to_conversion;
            for &(j, p) in &row.next {
                let col = position[j];
                if col != usize::MAX {
                    a[r * n + col] -= p;
                }
            }
        }
        // Every state was seen on a journey that ended, so every kept state
        // reaches an absorbing state and I − Q is invertible; a failure
        // here can only come from degenerate floats, and means "no path".
        if n == 0 || !solve_in_place(&mut a, &mut b, n) {
            return 0.0;
        }
        b[0].clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journeys(rows: &[(&'static str, u64, u64)]) -> Vec<Journey<&'static str>> {
        rows.iter()
            .map(|&(p, c, n)| Journey {
                path: p.split(" > ").collect(),
                conversions: c,
                nulls: n,
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// The worked example (Anderl et al.'s textbook chain):
    ///
    /// ```text
    /// C1 > C2 > C3  converted      start→C1 2/3  start→C2 1/3
    /// C1            null           C1→C2 1/2     C1→null 1/2
    /// C2 > C3       null           C2→C3 1
    ///                              C3→conv 1/2   C3→null 1/2
    /// P        = 2/3·1/2·1·1/2 + 1/3·1·1/2 = 1/6 + 1/6 = 1/3
    /// P without C1 = 1/3·1·1/2 = 1/6   → RE = 1 − (1/6)/(1/3) = 1/2
    /// P without C2 = 0                  → RE = 1
    /// P without C3 = 0                  → RE = 1
    /// Σ RE = 5/2 → w = C1 1/5, C2 2/5, C3 2/5
    /// A conversion on C1 > C2 > C3 worth 100.00 splits 20.00 / 40.00 / 40.00.
    /// ```
    #[test]
    fn markov_worked_example_gives_removal_effects_half_one_one() {
        let js = journeys(&[("C1 > C2 > C3", 1, 0), ("C1", 0, 1), ("C2 > C3", 0, 1)]);
        let chain = Chain::build(&js, 1).unwrap();
        // States: start, C1, C2, C3 (ids 0, 1, 2 by name).
        assert_eq!(chain.states.len(), 4);
        let start = &chain.rows[0];
        assert_eq!(start.next.len(), 2);
        assert!(close(start.next[0].1, 2.0 / 3.0) && close(start.next[1].1, 1.0 / 3.0));
        assert!(close(chain.rows[1].to_null, 0.5) && close(chain.rows[1].next[0].1, 0.5));
        assert!(close(chain.rows[2].next[0].1, 1.0));
        assert!(close(chain.rows[3].to_conversion, 0.5) && close(chain.rows[3].to_null, 0.5));

        let fit = fit_markov(&js, 1).unwrap();
        assert!(close(fit.conversion_probability, 1.0 / 3.0));
        let by = |name: &str| fit.channels.iter().find(|c| c.channel == name).unwrap();
        assert!(close(by("C1").conversion_probability_without, 1.0 / 6.0));
        assert!(close(by("C2").conversion_probability_without, 0.0));
        assert!(close(by("C1").removal_effect, 0.5));
        assert!(close(by("C2").removal_effect, 1.0));
        assert!(close(by("C3").removal_effect, 1.0));
        assert!(close(fit.weight("C1").unwrap(), 0.2));
        assert!(close(fit.weight("C2").unwrap(), 0.4));
        assert!(close(fit.weight("C3").unwrap(), 0.4));
        assert!(!fit.fallback_linear);
        assert_eq!((fit.journeys, fit.conversions, fit.states), (3, 1, 4));
    }

    /// A cycle needs the linear solve, not a path sum:
    ///
    /// ```text
    /// A > B > A  converted   start→A 1
    /// A          null        A→B 1/3  A→conv 1/3  A→null 1/3
    ///                        B→A 1
    /// P_A = 1/3·P_B + 1/3, P_B = P_A → P = P_A = 1/2
    /// without B: P_A = 1/3 → RE_B = 1 − (1/3)/(1/2) = 1/3; without A: 0 → RE_A = 1
    /// w_A = 3/4, w_B = 1/4; the journey A > B > A shares 3/7, 1/7, 3/7.
    /// ```
    #[test]
    fn markov_solves_a_chain_with_a_cycle_exactly() {
        let js = journeys(&[("A > B > A", 1, 0), ("A", 0, 1)]);
        let fit = fit_markov(&js, 1).unwrap();
        assert!(close(fit.conversion_probability, 0.5));
        assert!(close(fit.channels[0].removal_effect, 1.0));
        assert!(close(fit.channels[1].removal_effect, 1.0 / 3.0));
        assert!(close(fit.weight("A").unwrap(), 0.75));
        assert!(close(fit.weight("B").unwrap(), 0.25));
    }

    #[test]
    fn consecutive_repeats_collapse_into_one_state() {
        let a = fit_markov(&journeys(&[("X > X > Y", 1, 0), ("Y", 0, 1)]), 1).unwrap();
        let b = fit_markov(&journeys(&[("X > Y", 1, 0), ("Y", 0, 1)]), 1).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn second_order_states_remember_two_channels() {
        // A > B > C at order 2: start → (A) → (A,B) → (B,C) → conv: 3 states + start.
        let js = journeys(&[("A > B > C", 1, 0), ("B > C", 0, 1)]);
        let fit = fit_markov(&js, 2).unwrap();
        assert_eq!(fit.states, 5); // start, (A), (A,B), (B), (B,C)
                                   // start→(A) 1/2, start→(B) 1/2, both reach (B,C), which converts 1/2:
                                   // P = 1/2. Without A only start→(B) remains: P = 1/4, RE_A = 1/2;
                                   // without B or C nothing converts: RE = 1.
        assert!(close(fit.conversion_probability, 0.5));
        let re: Vec<f64> = fit.channels.iter().map(|c| c.removal_effect).collect();
        assert!(
            close(re[0], 0.5) && close(re[1], 1.0) && close(re[2], 1.0),
            "{re:?}"
        );
        assert_eq!(fit_markov(&js, 4).unwrap_err().field, "markov_order");
    }

    #[test]
    fn no_conversions_fall_back_to_equal_weights() {
        let fit = fit_markov(&journeys(&[("A > B", 0, 3), ("C", 0, 1)]), 1).unwrap();
        assert!(fit.fallback_linear);
        assert_eq!(fit.conversion_probability, 0.0);
        assert!(fit.channels.iter().all(|c| close(c.weight, 1.0 / 3.0)));
    }

    #[test]
    fn the_fit_does_not_depend_on_journey_order_and_round_trips_through_json() {
        let mut js = journeys(&[
            ("A > B", 2, 1),
            ("B > C > A", 1, 4),
            ("C", 3, 2),
            ("B", 0, 5),
        ]);
        let fit = fit_markov(&js, 1).unwrap();
        js.reverse();
        assert_eq!(fit_markov(&js, 1).unwrap(), fit);
        let json = serde_json::to_string(&fit).unwrap();
        assert_eq!(serde_json::from_str::<MarkovFit>(&json).unwrap(), fit);
    }
}
