//! Accruing a conversion: what every partner and team lead earns from it,
//! and the ledger entries that say so, as one plan the store writes in the
//! conversion's own transaction.
//!
//! 1. The credited partners' commissions ([`super::split_by_credit`]): the
//!    rule chosen per partner, the pot split by attribution credit, the tier
//!    multiplier and the cap.
//! 2. For each commission, the overrides of the team leads above its
//!    partner ([`super::overrides`]), each naming the commission it derives
//!    from and the whole chain.
//! 3. For each of them a [`Position`] and its accrual entry
//!    (`expense → pending`).
//!
//! A commission of zero (a rule paying nothing, a cap used up) makes no
//! entry and is left out: the ledger has no zero lines. Every planned
//! commission carries its explanation as JSON, the text the API and the
//! statements show next to each ledger line.

use serde::Serialize;
use serde_json::{json, Value};

use super::compute::Commission;
use super::credit::{split_by_credit, Credited};
use super::facts::ConversionFacts;
use super::overrides::{overrides, team_chain, OverridePlan};
use super::rules::RewardRule;
use crate::attribution::Attribution;
use crate::ids::{CommissionId, ConversionId, PartnerId, ProgramId, RewardRuleId};
use crate::ledger::{JournalEntry, LedgerError, Position};
use crate::money::Money;

/// What a planned commission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissionKind {
    /// A partner's commission on a sale, a lead or clicks.
    Commission,
    /// A team lead's override on a member's commission.
    Override,
}

impl CommissionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Commission => "commission",
            Self::Override => "override",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "commission" => Some(Self::Commission),
            "override" => Some(Self::Override),
            _ => None,
        }
    }
}

/// One commission (or override) to record, with its accrual entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub id: CommissionId,
    pub partner_id: PartnerId,
    pub kind: CommissionKind,
    /// 0 for a commission; 1, 2, … for an override's level.
    pub level: u8,
    pub derives_from: Option<CommissionId>,
    pub amount: Money,
    /// The rule and version it was computed with (rate lock); an override
    /// keeps its commission's.
    pub rule: Option<(RewardRuleId, u32)>,
    pub explanation: Value,
    pub position: Position,
    pub entry: JournalEntry,
}

/// Everything [`plan`] needs about one conversion.
pub struct Accrual<'a> {
    pub program_id: &'a ProgramId,
    /// The conversion it pays on; `None` for a lead or a run of clicks.
    pub conversion_id: Option<&'a ConversionId>,
    /// The attribution, for the touches each explanation names; `None` for
    /// a manual assignment (the owner's word is the reason).
    pub attribution: Option<&'a Attribution>,
    pub facts: &'a ConversionFacts,
    pub credited: &'a [Credited],
    pub rules: &'a [RewardRule],
    /// The program's override levels; `None` when it pays no overrides.
    pub overrides: Option<&'a OverridePlan>,
}

/// Why a commission of `partner` exists: the attribution part of it.
fn attribution_json(a: Option<&Attribution>, partner: &PartnerId) -> Value {
    let Some(a) = a else {
        return json!({"manual": true});
    };
    let touches: Vec<Value> = a
        .credits
        .iter()
        .filter(|t| &t.partner_id == partner)
        .map(|t| {
            json!({"touch_id": t.touch_id, "kind": t.kind, "channel": t.channel,
                   "at": t.at, "weight": t.weight})
        })
        .collect();
    json!({"model": a.model, "window_days": a.window_days, "touches": touches,
           "weight_total": a.weight_total})
}

/// The commissions and overrides `input` earns, with their entries, in a
/// stable order: each commission followed by its overrides, nearest lead
/// first. `lead_of` answers a partner's team lead.
pub fn plan(
    input: &Accrual<'_>,
    mut lead_of: impl FnMut(&PartnerId) -> Option<PartnerId>,
) -> Result<Vec<Planned>, LedgerError> {
    let commissions = split_by_credit(input.rules, input.facts, input.credited)?;
    let mut out = Vec::new();
    for c in commissions.into_iter().filter(|c| c.amount.minor > 0) {
        let planned = commission(input, c)?;
        if let Some(levels) = input.overrides {
            let chain = team_chain(&planned.partner_id, levels.depth(), &mut lead_of);
            let ovs = overrides(
                &planned.id,
                &planned.partner_id,
                planned.amount,
                &chain,
                levels,
            );
            let parent = (planned.id.clone(), planned.rule.clone());
            out.push(planned);
            for o in ovs {
                let mut full_chain = vec![o.member_id.clone()];
                full_chain.extend(chain.iter().cloned());
                let explanation = json!({
                    "kind": "override",
                    "conversion_id": input.conversion_id,
                    "level": o.level,
                    "rate_bps": o.rate_bps,
                    "derives_from": o.derives_from,
                    "member_id": o.member_id,
                    "chain": full_chain,
                    "base": o.base.minor,
                    "amount": o.amount.minor,
                });
                let id = CommissionId::generate();
                let (position, entry) = Position::accrue(
                    id.clone(),
                    input.program_id.clone(),
                    o.partner_id.clone(),
                    Some(parent.0.clone()),
                    o.amount.minor,
                )?;
                out.push(Planned {
                    id,
                    partner_id: o.partner_id,
                    kind: CommissionKind::Override,
                    level: o.level,
                    derives_from: Some(parent.0.clone()),
                    amount: o.amount,
                    rule: parent.1.clone(),
                    explanation,
                    position,
                    entry,
                });
            }
        } else {
            out.push(planned);
        }
    }
    Ok(out)
}

fn commission(input: &Accrual<'_>, c: Commission) -> Result<Planned, LedgerError> {
    let id = CommissionId::generate();
    let (position, entry) = Position::accrue(
        id.clone(),
        input.program_id.clone(),
        c.partner_id.clone(),
        None,
        c.amount.minor,
    )?;
    let explanation = json!({
        "kind": "commission",
        "conversion_id": input.conversion_id,
        "attribution": attribution_json(input.attribution, &c.partner_id),
        "computation": c.explanation,
    });
    Ok(Planned {
        id,
        partner_id: c.partner_id,
        kind: CommissionKind::Commission,
        level: 0,
        derives_from: None,
        amount: c.amount,
        rule: Some((c.explanation.rule_id.clone(), c.explanation.rule_version)),
        explanation,
        position,
        entry,
    })
}
