//! The commission decision: which rule pays a partner for a conversion, how
//! much, and why.
//!
//! 1. **Candidates.** A rule is a candidate when it belongs to the
//!    conversion's program, pays on its event (`sale`, `lead`, `click`), its
//!    scope covers the partner (the program; the partner's group; the
//!    partner; one of the links of the partner's credited touches), its
//!    duration covers this payment, a lead rule has not paid this partner
//!    for this person yet, and its conditions hold.
//! 2. **Gross.** On the whole conversion: a percentage of the value, or the
//!    fixed amount. A rule whose conditions mention `sale.sku` pays line by
//!    line instead: each line for which the conditions hold earns the
//!    percentage of its amount (rounded per line) or the fixed amount per
//!    unit; a rule no line matches is not a candidate.
//! 3. **Choice.** The most specific scope wins (link > partner > group >
//!    program); within it the highest gross; then the lowest rule id (then
//!    the highest version), so the same facts always pick the same rule.
//!    Caps do not take part in the choice: a cap limits what a rule pays, it
//!    is no reason to fall back to a broader rule.
//! 4. **Finish.** The partner's share of the gross (all of it, or its
//!    attribution credit, see [`super::credit`]) times the tier multiplier,
//!    then cut to what the cap leaves in its period. Never more than the cap.
//!
//! The [`Explanation`] records every step, with the rule id and version
//! (rate lock: a commission keeps what it was computed with).

use serde::{Deserialize, Serialize};

use super::facts::{ConversionFacts, PartnerFacts};
use super::rules::{Reward, RewardRule, RuleEvent, Scope, ScopeLevel};
use super::{apply_bps, CapPeriod};
use crate::ids::{PartnerId, RewardRuleId};
use crate::money::{Money, MAX_MINOR};
use crate::FieldError;

/// One product line a line-by-line rule paid on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCommission {
    /// The line's position in the conversion's products.
    pub index: usize,
    pub sku: String,
    pub quantity: i64,
    /// The line's amount, minor units.
    pub amount: i64,
    /// What the rule pays on this line.
    pub commission: i64,
}

/// The rule chosen for a partner, and what it pays on the whole conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected<'r> {
    pub rule: &'r RewardRule,
    /// What the reward applied to: the value, or the matching lines' total.
    pub base: i64,
    /// The rule's commission on the whole conversion, before credit,
    /// multiplier and cap.
    pub gross: i64,
    /// The lines paid on, when the rule pays line by line.
    pub lines: Vec<LineCommission>,
}

/// A partner's part of an attribution credit (see [`super::credit`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditShare {
    /// The partner's attribution weight.
    pub weight: u64,
    /// All credited partners' weights together.
    pub weight_total: u64,
    /// What the partners paid by the same rule and gross hold together,
    /// as a share of the conversion's credit, in minor units; the partners'
    /// shares of it add up to it exactly.
    pub pot: i64,
}

/// How a cap limited a commission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapApplied {
    pub period: CapPeriod,
    pub cap: i64,
    /// Commission the partner had already earned in the period.
    pub earned_before: i64,
    /// What the cap left: `max(0, cap − earned_before)`.
    pub remaining: i64,
    /// Whether the commission was cut.
    pub limited: bool,
}

/// Why a commission is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub rule_id: RewardRuleId,
    pub rule_version: u32,
    pub rule_name: String,
    pub scope: ScopeLevel,
    pub event: RuleEvent,
    pub reward: Reward,
    /// Whether this payment was the customer's first.
    pub first_payment: bool,
    pub base: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineCommission>,
    pub gross: i64,
    /// Set when the commission is a share of an attribution credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<CreditShare>,
    /// The partner's share of the gross (the gross without a credit).
    pub share: i64,
    pub multiplier_bps: u32,
    /// The share times the multiplier, rounded half up.
    pub multiplied: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<CapApplied>,
    pub amount: i64,
}

/// A partner's commission for a conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commission {
    pub partner_id: PartnerId,
    pub amount: Money,
    pub explanation: Explanation,
}

/// Whether `rule` is a candidate before its conditions are read.
fn applies(rule: &RewardRule, conv: &ConversionFacts, partner: &PartnerFacts) -> bool {
    let t = &rule.terms;
    rule.program_id == conv.program_id
        && t.event == conv.event
        && !(t.event == RuleEvent::Lead && partner.lead_already_paid)
        && match &t.scope {
            Scope::Program => true,
            Scope::Group(g) => partner.group.as_ref() == Some(g),
            Scope::Partner(p) => *p == partner.partner_id,
            Scope::Link(l) => partner.links.contains(l),
        }
        && (t.event != RuleEvent::Sale || t.duration.covers(conv.first_payment_at, conv.paid_at))
}

fn too_large() -> FieldError {
    FieldError::new(
        "amount",
        format!("the commission would exceed {MAX_MINOR} minor units"),
    )
}

fn bounded(v: i128) -> Result<i64, FieldError> {
    i64::try_from(v)
        .ok()
        .filter(|v| *v <= MAX_MINOR)
        .ok_or_else(too_large)
}

/// What `rule` pays on the whole conversion, if it is a candidate.
fn gross<'r>(
    rule: &'r RewardRule,
    conv: &ConversionFacts,
    partner: &PartnerFacts,
) -> Result<Option<Selected<'r>>, FieldError> {
    if !applies(rule, conv, partner) {
        return Ok(None);
    }
    let cond = rule.terms.conditions.as_ref();
    let reward = rule.terms.reward;
    if !cond.is_some_and(|c| c.mentions_sku()) {
        if !cond.is_none_or(|c| c.holds(conv, partner, None)) {
            return Ok(None);
        }
        let gross = match reward {
            Reward::Percentage { rate_bps } => apply_bps(i128::from(conv.value.minor), rate_bps),
            Reward::Fixed { amount } => i128::from(amount) * i128::from(conv.units),
        };
        return Ok(Some(Selected {
            rule,
            base: conv.value.minor,
            gross: bounded(gross)?,
            lines: Vec::new(),
        }));
    }
    let (mut base, mut total) = (0i128, 0i128);
    let mut lines = Vec::new();
    for (index, line) in conv.products.iter().enumerate() {
        if !cond.is_some_and(|c| c.holds(conv, partner, Some(line))) {
            continue;
        }
        let commission = match reward {
            Reward::Percentage { rate_bps } => apply_bps(i128::from(line.amount), rate_bps),
            Reward::Fixed { amount } => i128::from(amount) * i128::from(line.quantity),
        };
        base += i128::from(line.amount);
        total += commission;
        lines.push(LineCommission {
            index,
            sku: line.sku.clone(),
            quantity: line.quantity,
            amount: line.amount,
            commission: bounded(commission)?,
        });
    }
    if lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(Selected {
        rule,
        base: bounded(base)?,
        gross: bounded(total)?,
        lines,
    }))
}

/// Whether candidate `a` beats `b` (see the module documentation, step 3).
fn beats(a: &Selected, b: &Selected) -> bool {
    let key = |s: &Selected| (s.rule.terms.scope.level(), s.gross);
    match key(a).cmp(&key(b)) {
        std::cmp::Ordering::Equal => {
            (&a.rule.id, std::cmp::Reverse(a.rule.version))
                < (&b.rule.id, std::cmp::Reverse(b.rule.version))
        }
        o => o.is_gt(),
    }
}

/// Pick the rule that pays `partner` for `conv`, with what it pays on the
/// whole conversion; `None` when no rule applies.
pub fn select<'r>(
    rules: &'r [RewardRule],
    conv: &ConversionFacts,
    partner: &PartnerFacts,
) -> Result<Option<Selected<'r>>, FieldError> {
    conv.check()?;
    partner.check()?;
    let mut best: Option<Selected<'r>> = None;
    for rule in rules {
        if let Some(c) = gross(rule, conv, partner)? {
            if best.as_ref().is_none_or(|b| beats(&c, b)) {
                best = Some(c);
            }
        }
    }
    Ok(best)
}

/// Turn the partner's `share` of the chosen rule's gross into its
/// commission: tier multiplier, then cap.
pub fn finish(
    selected: &Selected,
    share: i64,
    credit: Option<CreditShare>,
    conv: &ConversionFacts,
    partner: &PartnerFacts,
) -> Result<Commission, FieldError> {
    let multiplied = bounded(apply_bps(i128::from(share), partner.multiplier_bps))?;
    let cap = selected.rule.terms.cap.map(|cap| {
        let earned_before = partner.earned.in_period(cap.period);
        let remaining = cap.amount.saturating_sub(earned_before).max(0);
        CapApplied {
            period: cap.period,
            cap: cap.amount,
            earned_before,
            remaining,
            limited: multiplied > remaining,
        }
    });
    let amount = cap.map_or(multiplied, |c| multiplied.min(c.remaining));
    let rule = selected.rule;
    Ok(Commission {
        partner_id: partner.partner_id.clone(),
        amount: Money::new(amount, conv.value.currency),
        explanation: Explanation {
            rule_id: rule.id.clone(),
            rule_version: rule.version,
            rule_name: rule.terms.name.clone(),
            scope: rule.terms.scope.level(),
            event: rule.terms.event,
            reward: rule.terms.reward,
            first_payment: conv.is_first_payment(),
            base: selected.base,
            lines: selected.lines.clone(),
            gross: selected.gross,
            credit,
            share,
            multiplier_bps: partner.multiplier_bps,
            multiplied,
            cap,
            amount,
        },
    })
}

/// What `partner` earns from `conv` when it holds all the credit: the rule
/// chosen among `rules`, the tier multiplier and the cap applied, with the
/// explanation. `None` when no rule applies.
pub fn decide(
    rules: &[RewardRule],
    conv: &ConversionFacts,
    partner: &PartnerFacts,
) -> Result<Option<Commission>, FieldError> {
    select(rules, conv, partner)?
        .map(|s| finish(&s, s.gross, None, conv, partner))
        .transpose()
}
