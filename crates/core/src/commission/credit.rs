//! Splitting a commission by attribution credit.
//!
//! **The commission is computed on the whole conversion, then split in
//! proportion to the credit** — not computed on each partner's share of the
//! value. Three reasons:
//! * a fixed reward is per sale: a partner with 1/3 of the credit earns 1/3
//!   of it, not all of it for a third of the value;
//! * conditions read the sale as it is (`sale.value gte 10000` is about the
//!   order, not about a partner's slice of it), and line-by-line rules need
//!   the lines whole;
//! * with one rounding of the commission and one exact split
//!   ([`crate::split`], largest remainder), the parts add up to the
//!   commission to the minor unit; rounding each partner's own commission
//!   would let the total drift by up to half a unit per partner.
//!
//! Each partner may be paid by a different rule (a link or group rule, a
//! condition on the partner's tier). Partners paid by the same rule with the
//! same gross form a *pot*: the pot is the gross times the credit they hold
//! together (all of it, exactly, when one rule pays everyone; otherwise
//! `gross · W_pot / W` rounded half up), and the pot is split between them
//! by their weights, exactly. A credited partner no rule pays keeps its
//! credit: its part is not handed to the others.
//!
//! After the split each partner's part gets its own tier multiplier and cap
//! ([`super::compute::finish`]), which are the partner's, not the rule's.

use super::compute::{finish, select, Commission, CreditShare, Selected};
use super::facts::{ConversionFacts, PartnerFacts};
use super::ratio_half_up;
use super::rules::RewardRule;
use crate::attribution::Attribution;
use crate::ids::PartnerId;
use crate::split::split;
use crate::FieldError;

/// A partner holding part of a conversion's attribution credit.
#[derive(Debug, Clone, PartialEq)]
pub struct Credited {
    pub partner: PartnerFacts,
    /// The partner's exact attribution weight
    /// ([`crate::attribution::PartnerCredit::weight`]).
    pub weight: u64,
}

impl Credited {
    /// The partners an attribution credits, in its order (earliest first
    /// touch first, which is also who wins a tie in the split), each with
    /// the facts `facts` gives for it. Partners with no weight are left out.
    pub fn from_attribution(
        attribution: &Attribution,
        mut facts: impl FnMut(&PartnerId) -> PartnerFacts,
    ) -> Vec<Self> {
        attribution
            .partners
            .iter()
            .filter(|p| p.weight > 0)
            .map(|p| Self {
                partner: facts(&p.partner_id),
                weight: p.weight,
            })
            .collect()
    }
}

/// Every credited partner's commission for `conv`, in the order given;
/// partners no rule pays (or with no weight) are left out.
pub fn split_by_credit(
    rules: &[RewardRule],
    conv: &ConversionFacts,
    partners: &[Credited],
) -> Result<Vec<Commission>, FieldError> {
    for (i, p) in partners.iter().enumerate() {
        if partners[..i]
            .iter()
            .any(|q| q.partner.partner_id == p.partner.partner_id)
        {
            return Err(FieldError::new(
                "partners",
                format!("{} is listed twice; sum its weights", p.partner.partner_id),
            ));
        }
    }
    let total: u128 = partners.iter().map(|p| u128::from(p.weight)).sum();
    let weight_total = u64::try_from(total)
        .map_err(|_| FieldError::new("partners", "the weights add up to more than 2^64"))?;
    if weight_total == 0 {
        return Ok(Vec::new());
    }
    let mut chosen: Vec<(usize, Selected)> = Vec::new();
    for (i, p) in partners.iter().enumerate() {
        if p.weight == 0 {
            continue;
        }
        if let Some(s) = select(rules, conv, &p.partner)? {
            chosen.push((i, s));
        }
    }
    // Pots: partners paid by the same rule version with the same gross.
    let key = |s: &Selected| (s.rule.id.clone(), s.rule.version, s.gross);
    let mut pots: Vec<Vec<usize>> = Vec::new();
    for k in 0..chosen.len() {
        match pots
            .iter_mut()
            .find(|pot| key(&chosen[pot[0]].1) == key(&chosen[k].1))
        {
            Some(pot) => pot.push(k),
            None => pots.push(vec![k]),
        }
    }
    let mut out: Vec<(usize, Commission)> = Vec::with_capacity(chosen.len());
    for pot in pots {
        let weights: Vec<u64> = pot.iter().map(|&k| partners[chosen[k].0].weight).collect();
        let held: u128 = weights.iter().map(|&w| u128::from(w)).sum();
        let gross = chosen[pot[0]].1.gross;
        let amount = if held == total {
            gross
        } else {
            // gross ≤ 10^15 < 2^50 and held ≤ total < 2^64: fits in i128.
            ratio_half_up(i128::from(gross), held as i128, total as i128) as i64
        };
        for (&k, part) in pot.iter().zip(split(amount, &weights)) {
            let (i, selected) = &chosen[k];
            let credit = CreditShare {
                weight: partners[*i].weight,
                weight_total,
                pot: amount,
            };
            let c = finish(selected, part, Some(credit), conv, &partners[*i].partner)?;
            out.push((*i, c));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}
