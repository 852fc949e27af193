//! Commissions: reward rules, and what they pay a partner for a conversion.
//!
//! This is the pure decision; storing commissions and moving money between
//! accounts is [`crate::ledger`]'s and the store's business.
//!
//! * [`rules`]: a reward rule as the owner writes it (`event`, `kind`,
//!   `duration`, `conditions`, `scope`, `cap`), parsed once at the edge into
//!   values that cannot be wrong, errors naming the field.
//! * [`conditions`]: AND/OR groups over sale, customer and partner facts.
//! * [`facts`]: what the decision needs to know about a conversion and a
//!   credited partner; the store gathers it, nothing here reads a clock.
//! * [`compute`]: pick the rule (most specific scope, then the highest
//!   paying, then the lowest rule id) and compute the commission with its
//!   explanation.
//! * [`credit`]: split the commission between the partners holding the
//!   attribution credit, exactly.
//! * [`overrides`]: what team leads earn on their members' commissions.
//! * [`tiers`]: partner levels with a multiplier, and automatic promotion
//!   and demotion by revenue or conversions over a window.
//!
//! # Integer money and rounding
//!
//! Every amount is an `i64` of minor units no larger than
//! [`crate::money::MAX_MINOR`]; intermediate products are `i128`. A rate in
//! basis points (a percentage rule, a tier multiplier, an override level) is
//! applied by [`apply_bps`]: exact, then rounded **half up** to the minor
//! unit (2.5 cents → 3 cents), the rounding people expect on an invoice.
//! Splitting an amount into parts uses [`crate::split`] (largest remainder),
//! so parts always add up to the whole.

pub mod accrual;
pub mod compute;
pub mod conditions;
pub mod credit;
pub mod facts;
pub mod overrides;
pub mod rules;
pub mod tiers;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_choice;
#[cfg(test)]
mod tests_tiers;

pub use accrual::{plan, Accrual, CommissionKind, Planned};
pub use compute::{
    decide, finish, select, CapApplied, Commission, CreditShare, Explanation, LineCommission,
    Selected,
};
pub use conditions::{Condition, Field, Op, Predicate};
pub use credit::{split_by_credit, Credited};
pub use facts::{ConversionFacts, Earned, PartnerFacts, MAX_MULTIPLIER_BPS};
pub use overrides::{overrides, team_chain, Override, OverridePlan};
pub use rules::{
    Cap, CapPeriod, Duration, Reward, RewardRule, RuleEvent, RuleTerms, Scope, ScopeLevel,
};
pub use tiers::{
    evaluate, multiplier_for, stat_windows, validate_set, PartnerStats, Threshold, Tier,
    TierChange, TierMetric,
};

/// One whole in basis points: 10 000 bps = 100 % = a multiplier of ×1.
pub const BPS_ONE: u32 = 10_000;

/// `amount · bps / 10 000`, rounded half up (for non-negative amounts; a
/// negative amount rounds half towards zero, mirroring the positive one).
pub fn apply_bps(amount: i128, bps: u32) -> i128 {
    let p = amount.abs() * i128::from(bps);
    let q = (p + i128::from(BPS_ONE / 2)) / i128::from(BPS_ONE);
    if amount < 0 {
        -q
    } else {
        q
    }
}

/// `amount · num / den` rounded half up, for `den > 0` and non-negative
/// operands (pro rata shares: a refund's part of a commission).
pub(crate) fn ratio_half_up(amount: i128, num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    (2 * amount * num + den) / (2 * den)
}
