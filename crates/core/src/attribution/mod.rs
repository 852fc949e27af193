//! Attribution models: which partner touches earned a conversion, and how much.
//!
//! Everything here is pure and deterministic: time is passed in, and the
//! same touches, conversion time, configuration and fit always give the
//! same weights and the same minor units.
//!
//! * [`attribute`] weighs one conversion's touches under a model and returns
//!   an [`Attribution`] that explains itself and splits money exactly.
//! * [`credit_into`] and [`partner_credit_into`] do the same work without
//!   building the explanation or allocating, for bulk re-attribution.
//! * [`fit_markov`] and [`fit_shapley`] fit the data-driven models over a
//!   period's [`Journey`]s; the [`Fit`] is serialisable and stored with the
//!   period so results can be reproduced.
//! * [`paths`] reads the path files of attribution tools for `tribute attribute`.
//!
//! Shares are per touch (a partner touching twice earns two shares). Which
//! touches count: see [`Exclusion`]. Touches are ordered by time, then by
//! id, so input order never changes a result.

mod config;
mod explain;
mod journey;
mod linsolve;
mod markov;
pub mod paths;
mod rules;
mod shapley;
mod touch;

#[cfg(test)]
mod paths_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use config::{
    check_half_life_days, check_window_days, ModelConfig, ModelKind, DEFAULT_HALF_LIFE_DAYS,
    MAX_HALF_LIFE_DAYS, MAX_WINDOW_DAYS, MIN_HALF_LIFE_DAYS,
};
pub use explain::{Attribution, ExcludedTouch, PartnerCredit, TouchCredit};
pub use journey::Journey;
pub use markov::{fit_markov, MarkovChannel, MarkovFit};
pub use shapley::{fit_shapley, Coalition, ShapleyFit};
pub use touch::{Exclusion, Touch, TouchKind};

use crate::split::{fixed_point_weights, split_into, SplitScratch};
use crate::FieldError;

/// A fitted data-driven model, tagged by model in JSON (`{"model": "markov", …}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Fit {
    Markov(MarkovFit),
    Shapley(ShapleyFit),
}

impl Fit {
    pub fn model(&self) -> ModelKind {
        match self {
            Fit::Markov(_) => ModelKind::Markov,
            Fit::Shapley(_) => ModelKind::Shapley,
        }
    }
}

/// Fit the data-driven model `cfg.model` over `journeys` (Markov of order
/// `cfg.markov_order`); `None` for rule-based models, which need no fit.
pub fn fit<S: AsRef<str>>(
    journeys: &[Journey<S>],
    cfg: &ModelConfig,
) -> Result<Option<Fit>, FieldError> {
    Ok(match cfg.model {
        ModelKind::Markov => Some(Fit::Markov(fit_markov(journeys, cfg.markov_order)?)),
        ModelKind::Shapley => Some(Fit::Shapley(fit_shapley(journeys)?)),
        _ => None,
    })
}

/// One credited touch of [`credit_into`]: its index in the input, its
/// exact weight and its minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TouchShare {
    pub index: usize,
    pub weight: u64,
    pub minor: i64,
}

/// One partner of [`partner_credit_into`], named by the index of its
/// earliest credited touch in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartnerShare {
    pub first_index: usize,
    pub weight: u64,
    pub minor: i64,
}

/// Reusable buffers for attributing many conversions without allocating.
#[derive(Debug, Default)]
pub struct Scratch {
    included: Vec<usize>,
    weights: Vec<u64>,
    raw: Vec<f64>,
    ages: Vec<f64>,
    parts: Vec<i64>,
    split: SplitScratch,
    touches: Vec<TouchShare>,
    partners: Vec<PartnerShare>,
}

/// A fallback a model took, reported in the explanation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Note {
    MarkovFitEqual,
    MarkovUnknownChannels,
}

impl Note {
    fn text(self) -> &'static str {
        match self {
            Note::MarkovFitEqual => {
                "every removal effect in the fit is zero: equal weights (linear)"
            }
            Note::MarkovUnknownChannels => "no channel of this journey has a Markov weight: linear",
        }
    }
}

/// Decide which touches count and weigh them into `s.included` / `s.weights`
/// (and `s.raw`, the model's own weights).
fn weigh(
    touches: &[Touch],
    conversion_at: DateTime<Utc>,
    cfg: &ModelConfig,
    fit: Option<&Fit>,
    s: &mut Scratch,
) -> Result<Option<Note>, FieldError> {
    cfg.validate()?;
    let fit = match (cfg.model.is_data_driven(), fit) {
        (false, _) => None,
        (true, Some(f)) if f.model() == cfg.model => Some(f),
        (true, Some(f)) => {
            return Err(FieldError::new(
                "fit",
                format!("a {} fit cannot attribute under {}", f.model(), cfg.model),
            ))
        }
        (true, None) => {
            return Err(FieldError::new(
                "fit",
                format!("{} needs a fit over a period's journeys", cfg.model),
            ))
        }
    };
    touch::included_in_order(touches, conversion_at, cfg.window_days, &mut s.included);
    let n = s.included.len();
    s.raw.clear();
    if rules::rule_weights(cfg.model, n, &mut s.weights) {
        // Rule weights are exact already; `raw` is filled only on demand.
        return Ok(None);
    }
    let note = match fit {
        None => {
            s.ages.clear();
            s.ages.extend(
                s.included
                    .iter()
                    .map(|&i| touch::age_days(touches[i].at, conversion_at)),
            );
            rules::time_decay_weights(&s.ages, cfg.half_life_days, &mut s.raw);
            None
        }
        Some(fit) => {
            let channels: Vec<&str> = s
                .included
                .iter()
                .map(|&i| touches[i].channel.as_str())
                .collect();
            data_driven_weights(fit, &channels, &mut s.raw)
        }
    };
    fixed_point_weights(&s.raw, &mut s.weights);
    Ok(note)
}

/// Real weights of a data-driven model for a journey's `channels` (in time
/// order, repeats included) into `raw`; the note says which fallback applied.
///
/// Markov: each touch weighs `w` of its channel (0 if the fit never saw
/// it); if no touch weighs anything, all weigh the same (linear). Shapley:
/// each channel's share divided evenly among its touches.
pub(crate) fn data_driven_weights(
    fit: &Fit,
    channels: &[&str],
    raw: &mut Vec<f64>,
) -> Option<Note> {
    raw.clear();
    let mut note = None;
    match fit {
        Fit::Markov(m) => {
            raw.extend(channels.iter().map(|ch| m.weight(ch).unwrap_or(0.0)));
            if m.fallback_linear {
                note = Some(Note::MarkovFitEqual);
            }
            if !channels.is_empty() && raw.iter().all(|&w| w <= 0.0) {
                raw.iter_mut().for_each(|w| *w = 1.0);
                note = Some(Note::MarkovUnknownChannels);
            }
        }
        Fit::Shapley(f) => {
            let mut set: Vec<&str> = channels.to_vec();
            set.sort_unstable();
            set.dedup();
            let shares = f.shares(&set);
            for ch in channels {
                let count = channels.iter().filter(|c| *c == ch).count();
                let c = set.binary_search(ch).unwrap_or(0);
                raw.push(shares[c] / count as f64);
            }
        }
    }
    note
}

/// Weigh a conversion's touches and split `total_minor` between the
/// credited touches, without allocating once `scratch` has warmed up.
///
/// The slice is in time order (then id); empty when no touch counted.
/// Ties in the remainder go to the earlier touch.
pub fn credit_into<'s>(
    touches: &[Touch],
    conversion_at: DateTime<Utc>,
    cfg: &ModelConfig,
    fit: Option<&Fit>,
    total_minor: i64,
    scratch: &'s mut Scratch,
) -> Result<&'s [TouchShare], FieldError> {
    weigh(touches, conversion_at, cfg, fit, scratch)?;
    let s = scratch;
    split_into(total_minor, &s.weights, &mut s.parts, &mut s.split);
    s.touches.clear();
    s.touches
        .extend(s.included.iter().zip(&s.weights).zip(&s.parts).map(
            |((&index, &weight), &minor)| TouchShare {
                index,
                weight,
                minor,
            },
        ));
    Ok(&s.touches)
}

/// Weigh a conversion's touches and split `total_minor` between partners
/// (weights summed per partner, then split once, as [`Attribution::split`]),
/// without allocating once `scratch` has warmed up.
///
/// Partners are in order of their earliest credited touch; partners whose
/// weight is zero are left out.
pub fn partner_credit_into<'s>(
    touches: &[Touch],
    conversion_at: DateTime<Utc>,
    cfg: &ModelConfig,
    fit: Option<&Fit>,
    total_minor: i64,
    scratch: &'s mut Scratch,
) -> Result<&'s [PartnerShare], FieldError> {
    weigh(touches, conversion_at, cfg, fit, scratch)?;
    let s = scratch;
    s.partners.clear();
    for (&i, &w) in s.included.iter().zip(&s.weights) {
        let partner = &touches[i].partner_id;
        match s
            .partners
            .iter_mut()
            .find(|p| touches[p.first_index].partner_id == *partner)
        {
            Some(p) => p.weight += w,
            None => s.partners.push(PartnerShare {
                first_index: i,
                weight: w,
                minor: 0,
            }),
        }
    }
    s.partners.retain(|p| p.weight > 0);
    s.weights.clear();
    s.weights.extend(s.partners.iter().map(|p| p.weight));
    split_into(total_minor, &s.weights, &mut s.parts, &mut s.split);
    for (p, &minor) in s.partners.iter_mut().zip(&s.parts) {
        p.minor = minor;
    }
    Ok(&s.partners)
}

/// Attribute one conversion at `conversion_at` under `cfg`.
///
/// Data-driven models need the matching `fit` (an error names the `fit`
/// field otherwise); rule-based models ignore it. The result lists the
/// touches considered and excluded, the weights and the share per partner,
/// and splits money exactly with [`Attribution::split`].
pub fn attribute(
    touches: &[Touch],
    conversion_at: DateTime<Utc>,
    cfg: &ModelConfig,
    fit: Option<&Fit>,
) -> Result<Attribution, FieldError> {
    let mut s = Scratch::default();
    let note = weigh(touches, conversion_at, cfg, fit, &mut s)?;
    let weight_total: u64 = s.weights.iter().sum();
    let share = |w: u64| {
        if weight_total == 0 {
            0.0
        } else {
            w as f64 / weight_total as f64
        }
    };
    let credits: Vec<TouchCredit> = s
        .included
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let t = &touches[i];
            TouchCredit {
                touch_id: t.id.clone(),
                partner_id: t.partner_id.clone(),
                channel: t.channel.clone(),
                kind: t.kind,
                at: t.at,
                model_weight: s.raw.get(k).copied().unwrap_or(s.weights[k] as f64),
                weight: s.weights[k],
                share: share(s.weights[k]),
            }
        })
        .collect();
    let mut partners: Vec<PartnerCredit> = Vec::new();
    for c in &credits {
        match partners.iter_mut().find(|p| p.partner_id == c.partner_id) {
            Some(p) => {
                p.weight += c.weight;
                p.touches += 1;
            }
            None => partners.push(PartnerCredit {
                partner_id: c.partner_id.clone(),
                weight: c.weight,
                share: 0.0,
                touches: 1,
            }),
        }
    }
    for p in &mut partners {
        p.share = share(p.weight);
    }
    let excluded = touches
        .iter()
        .filter_map(|t| {
            touch::exclusion(t, conversion_at, cfg.window_days).map(|reason| ExcludedTouch {
                touch_id: t.id.clone(),
                partner_id: t.partner_id.clone(),
                channel: t.channel.clone(),
                kind: t.kind,
                at: t.at,
                reason,
            })
        })
        .collect();
    Ok(Attribution {
        model: cfg.model,
        conversion_at,
        window_days: cfg.window_days,
        half_life_days: (cfg.model == ModelKind::TimeDecay).then_some(cfg.half_life_days),
        markov_order: match fit {
            Some(Fit::Markov(m)) if cfg.model == ModelKind::Markov => Some(m.order),
            _ => None,
        },
        credits,
        excluded,
        partners,
        weight_total,
        note: note.map(|n| n.text().to_owned()),
    })
}
