//! Team overrides: what team leads earn on their members' commissions.
//!
//! A partner's team lead (level 1) earns a configured percentage of each
//! of the partner's commissions; with more levels, the lead's lead (level 2)
//! earns its own percentage of the same commission, and so on up the
//! chain. An override is paid by the program on top of the commission (the
//! member keeps all of theirs) and names the commission it derives from,
//! so a refund reverses it in the same proportion.
//!
//! **Exact:** the overrides of one commission are computed as one pool —
//! the commission times the sum of the levels' rates, rounded half up —
//! and the pool is split between the levels by their rates with
//! [`crate::split`]. So the overrides add up to the pool exactly, and each
//! is less than one minor unit from its share of the pool (less than 1.5
//! from its own rate applied alone).
//!
//! The chain is walked by [`team_chain`], which stops at the configured
//! depth and at a loop in the team links (a lead never earns twice on one
//! commission, nor on their own).

use serde::{Deserialize, Serialize};

use super::{apply_bps, BPS_ONE};
use crate::ids::{CommissionId, PartnerId};
use crate::money::Money;
use crate::split::split;
use crate::FieldError;

/// The deepest chain of team leads a program may pay.
pub const MAX_LEVELS: usize = 10;

/// A program's override percentages, one per level (level 1 first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u32>", into = "Vec<u32>")]
pub struct OverridePlan(Vec<u32>);

impl OverridePlan {
    /// Levels of 0 to 10 000 bps, 1 to [`MAX_LEVELS`] of them, adding up to
    /// at most 10 000 (the overrides never exceed the commission).
    pub fn new(levels_bps: Vec<u32>) -> Result<Self, FieldError> {
        if levels_bps.is_empty() || levels_bps.len() > MAX_LEVELS {
            return Err(FieldError::new(
                "override_levels_bps",
                format!("must list 1 to {MAX_LEVELS} levels"),
            ));
        }
        let sum: u64 = levels_bps.iter().map(|&b| u64::from(b)).sum();
        if sum > u64::from(BPS_ONE) {
            return Err(FieldError::new(
                "override_levels_bps",
                "must add up to at most 10000 basis points",
            ));
        }
        Ok(Self(levels_bps))
    }

    /// One level: the team lead earns `bps` of each member's commission.
    pub fn one_level(bps: u32) -> Result<Self, FieldError> {
        Self::new(vec![bps])
    }

    pub fn depth(&self) -> usize {
        self.0.len()
    }

    pub fn levels_bps(&self) -> &[u32] {
        &self.0
    }
}

impl TryFrom<Vec<u32>> for OverridePlan {
    type Error = FieldError;
    fn try_from(v: Vec<u32>) -> Result<Self, FieldError> {
        Self::new(v)
    }
}

impl From<OverridePlan> for Vec<u32> {
    fn from(p: OverridePlan) -> Vec<u32> {
        p.0
    }
}

/// The team leads above `member`, nearest first, at most `depth` of them;
/// `lead_of` answers a partner's team lead. Stops at a loop.
pub fn team_chain(
    member: &PartnerId,
    depth: usize,
    mut lead_of: impl FnMut(&PartnerId) -> Option<PartnerId>,
) -> Vec<PartnerId> {
    let mut chain: Vec<PartnerId> = Vec::with_capacity(depth);
    let mut current = member.clone();
    while chain.len() < depth {
        match lead_of(&current) {
            Some(lead) if lead != *member && !chain.contains(&lead) => {
                chain.push(lead.clone());
                current = lead;
            }
            _ => break,
        }
    }
    chain
}

/// A team lead's override on one commission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The team lead who earns it.
    pub partner_id: PartnerId,
    /// 1 for the member's own lead, 2 for that lead's lead, …
    pub level: u8,
    pub rate_bps: u32,
    /// The commission it derives from, and whose it is.
    pub derives_from: CommissionId,
    pub member_id: PartnerId,
    /// The commission's amount.
    pub base: Money,
    pub amount: Money,
}

/// The overrides on `member`'s commission `derives_from` of `commission`,
/// for the leads in `chain` (nearest first, see [`team_chain`]) under
/// `plan`. Levels the chain does not reach, and overrides that round to
/// nothing, are left out; a commission of zero or less earns none.
pub fn overrides(
    derives_from: &CommissionId,
    member: &PartnerId,
    commission: Money,
    chain: &[PartnerId],
    plan: &OverridePlan,
) -> Vec<Override> {
    if commission.minor <= 0 {
        return Vec::new();
    }
    let rates = &plan.0[..plan.0.len().min(chain.len())];
    let sum_bps: u32 = rates.iter().sum();
    // sum_bps ≤ 10 000, so the pool never exceeds the commission.
    let pool = apply_bps(i128::from(commission.minor), sum_bps) as i64;
    let weights: Vec<u64> = rates.iter().map(|&r| u64::from(r)).collect();
    split(pool, &weights)
        .into_iter()
        .zip(chain.iter().zip(rates))
        .enumerate()
        .filter(|(_, (amount, _))| *amount > 0)
        .map(|(i, (amount, (lead, &rate_bps)))| Override {
            partner_id: lead.clone(),
            level: (i + 1) as u8,
            rate_bps,
            derives_from: derives_from.clone(),
            member_id: member.clone(),
            base: commission,
            amount: Money::new(amount, commission.currency),
        })
        .collect()
}
