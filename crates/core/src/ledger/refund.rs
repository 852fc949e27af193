//! Refunds: reversing a conversion's commissions and overrides pro rata.
//!
//! A conversion of value `V` refunded by `R` in all (every refund so far,
//! capped at `V`) owes back `accrued · R / V` of each commission, rounded
//! half up — a **cumulative target**, not a per-refund amount. Each refund
//! voids the difference between the target and what the commission has
//! already had voided. So:
//!
//! * refunding again and again never reverses more than was accrued (the
//!   target never exceeds `accrued`, and a refund beyond the value is
//!   capped at what remains of it);
//! * refunding the whole value in any number of pieces reverses exactly
//!   everything: rounding never leaves a unit behind or takes one too many;
//! * overrides are positions like any other, so they are reversed in the
//!   same proportion as the commission they derive from;
//! * a commission already voided further by hand (a rejection) is not
//!   voided again until the refunds catch up with it.
//!
//! What was posted and paid out is voided from `payable`, which then goes
//! below zero and is carried into the partner's next payout.
//!
//! A conversion of value zero (a lead) has nothing to refund pro rata: any
//! refund of it reverses its commissions whole.

use super::{JournalEntry, LedgerError, Position};
use crate::commission::ratio_half_up;
use crate::money::MAX_MINOR;
use crate::FieldError;

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The part of the requested amount that counted (capped at what was
    /// left of the value).
    pub applied: i64,
    /// The conversion's refunded value after this refund.
    pub refunded_total: i64,
    /// The void entries, one per position that had something to reverse.
    pub entries: Vec<JournalEntry>,
}

/// How much of `accrued` a conversion of `value` refunded by `refunded`
/// (0 ≤ refunded ≤ value) has owed back in all.
pub fn reversal_target(accrued: i64, value: i64, refunded: i64) -> i64 {
    if value <= 0 || refunded >= value {
        return accrued;
    }
    // accrued, refunded ≤ 10^15: the product fits easily in i128.
    ratio_half_up(i128::from(accrued), i128::from(refunded), i128::from(value)) as i64
}

/// Refund `amount` of a conversion of `value` already refunded by
/// `refunded_before`, voiding its commissions and overrides (`positions`)
/// pro rata; `memo` says why on every entry.
pub fn refund(
    value: i64,
    refunded_before: i64,
    amount: i64,
    memo: &str,
    positions: &mut [Position],
) -> Result<Refund, LedgerError> {
    if !(0..=MAX_MINOR).contains(&value) {
        return Err(FieldError::new("value", format!("must be between 0 and {MAX_MINOR}")).into());
    }
    if !(0..=value).contains(&refunded_before) {
        return Err(
            FieldError::new("refunded", "must be between 0 and the conversion's value").into(),
        );
    }
    if amount <= 0 || amount > MAX_MINOR {
        return Err(FieldError::new(
            "amount",
            format!("must be between 1 and {MAX_MINOR} minor units"),
        )
        .into());
    }
    let applied = amount.min(value - refunded_before);
    let refunded_total = refunded_before + applied;
    let mut entries = Vec::new();
    for p in positions.iter_mut() {
        let target = reversal_target(p.accrued, value, refunded_total);
        let due = (target - p.voided).clamp(0, p.open());
        if let Some(e) = p.void(due, memo)? {
            entries.push(e);
        }
    }
    Ok(Refund {
        applied,
        refunded_total,
        entries,
    })
}
