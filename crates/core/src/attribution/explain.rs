//! The explanation an attribution carries: touches considered and excluded
//! (with why), the model and its parameters, weights and shares per partner.
//!
//! It serialises to JSON as stored by the server and shown by the API and
//! portal. Shares are exact: a touch's share is `weight / weight_total`,
//! both integers. The `share` floats are for display only; money is always
//! split from the integer weights with [`crate::split`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config::ModelKind;
use super::touch::{Exclusion, TouchKind};
use crate::ids::PartnerId;
use crate::split::{split_into, SplitScratch};

/// A touch that counted, with its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TouchCredit {
    pub touch_id: String,
    pub partner_id: PartnerId,
    pub channel: String,
    pub kind: TouchKind,
    pub at: DateTime<Utc>,
    /// The model's own weight before normalisation: 1/0 for the rules
    /// (position based: 2(n−2) for the ends, 1 in the middle), `0.5^(age/h)`
    /// for time decay, `w_c` for Markov, the per-touch Shapley share.
    pub model_weight: f64,
    /// Exact integer weight; the share is `weight / weight_total`.
    pub weight: u64,
    /// `weight / weight_total` as a float, for display.
    pub share: f64,
}

/// A touch that did not count, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedTouch {
    pub touch_id: String,
    pub partner_id: PartnerId,
    pub channel: String,
    pub kind: TouchKind,
    pub at: DateTime<Utc>,
    pub reason: Exclusion,
}

/// A partner's total over its credited touches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerCredit {
    pub partner_id: PartnerId,
    /// Sum of the exact weights of the partner's touches.
    pub weight: u64,
    /// `weight / weight_total` as a float, for display.
    pub share: f64,
    /// How many of the partner's touches counted.
    pub touches: usize,
}

/// The outcome of attributing one conversion, with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub model: ModelKind,
    pub conversion_at: DateTime<Utc>,
    pub window_days: Option<u32>,
    /// Set for `time_decay` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_days: Option<f64>,
    /// Set for `markov` only: the order of the fit used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markov_order: Option<u8>,
    /// Touches that counted, in time order (then by id).
    pub credits: Vec<TouchCredit>,
    /// Touches that did not count, in input order.
    pub excluded: Vec<ExcludedTouch>,
    /// Partners in order of their earliest credited touch.
    pub partners: Vec<PartnerCredit>,
    /// Sum of the touch weights (0 when no touch counted).
    pub weight_total: u64,
    /// A fallback the model took, e.g. equal shares because every Markov
    /// weight was zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Attribution {
    /// Whether any touch counted; if not, nobody earns from the conversion.
    pub fn is_attributed(&self) -> bool {
        self.weight_total > 0
    }

    /// Split `total_minor` between partners, exactly (see [`crate::split`]).
    ///
    /// Partners' weights are summed first and then split once, so rounding
    /// happens per partner, not per touch; ties in the remainder go to the
    /// partner whose first touch came earlier. Partners with zero weight
    /// (e.g. the middle touches under first touch) are left out. Empty when
    /// no touch counted.
    pub fn split(&self, total_minor: i64) -> Vec<(PartnerId, i64)> {
        let partners: Vec<&PartnerCredit> = self.partners.iter().filter(|p| p.weight > 0).collect();
        let weights: Vec<u64> = partners.iter().map(|p| p.weight).collect();
        let mut parts = Vec::with_capacity(weights.len());
        split_into(
            total_minor,
            &weights,
            &mut parts,
            &mut SplitScratch::default(),
        );
        partners
            .into_iter()
            .map(|p| p.partner_id.clone())
            .zip(parts)
            .collect()
    }

    /// Split `total_minor` between credited touches, exactly; ties go to the
    /// earlier touch. Returns `(touch_id, minor)` for every credited touch.
    pub fn split_per_touch(&self, total_minor: i64) -> Vec<(String, i64)> {
        let weights: Vec<u64> = self.credits.iter().map(|c| c.weight).collect();
        let mut parts = Vec::with_capacity(weights.len());
        split_into(
            total_minor,
            &weights,
            &mut parts,
            &mut SplitScratch::default(),
        );
        self.credits
            .iter()
            .map(|c| c.touch_id.clone())
            .zip(parts)
            .collect()
    }

    /// One line for people: model, window, touches, exclusions, shares.
    ///
    /// `last_touch, 30-day window: 2 touches counted, 1 excluded (1 bot); ptn_a 100.00%`
    pub fn summary(&self) -> String {
        let mut s = String::from(self.model.as_str());
        if let Some(h) = self.half_life_days {
            s.push_str(&format!(" (half-life {h} days)"));
        }
        if let Some(o) = self.markov_order {
            s.push_str(&format!(" (order {o})"));
        }
        match self.window_days {
            Some(d) => s.push_str(&format!(", {d}-day window")),
            None => s.push_str(", no window"),
        }
        let plural = |n: usize| if n == 1 { "touch" } else { "touches" };
        s.push_str(&format!(
            ": {} {} counted",
            self.credits.len(),
            plural(self.credits.len())
        ));
        if !self.excluded.is_empty() {
            let mut reasons: Vec<(Exclusion, usize)> = Vec::new();
            for e in &self.excluded {
                match reasons.iter_mut().find(|r| r.0 == e.reason) {
                    Some(r) => r.1 += 1,
                    None => reasons.push((e.reason, 1)),
                }
            }
            reasons.sort_by_key(|r| r.0 as u8);
            let list: Vec<String> = reasons
                .iter()
                .map(|(r, n)| format!("{n} {}", r.as_str().replace('_', " ")))
                .collect();
            s.push_str(&format!(
                ", {} excluded ({})",
                self.excluded.len(),
                list.join(", ")
            ));
        }
        if self.is_attributed() {
            let shares: Vec<String> = self
                .partners
                .iter()
                .map(|p| format!("{} {:.2}%", p.partner_id, p.share * 100.0))
                .collect();
            s.push_str("; ");
            s.push_str(&shares.join(", "));
        } else {
            s.push_str("; not attributed");
        }
        if let Some(note) = &self.note {
            s.push_str(&format!(" ({note})"));
        }
        s
    }
}
