//! The commission ledger: two-phase, double-entry, append-only.
//!
//! Money moves between **accounts** in **journal entries** whose lines
//! always sum to zero ([`JournalEntry::new`] refuses anything else; the
//! "every journal sums to zero" rule of Medici). An entry is never changed
//! or deleted: a correction is another entry. An account's balance is the
//! sum of its lines, nothing more ([`balances`], [`Books`]).
//!
//! # Accounts
//!
//! Each partner has `pending`, `payable` and `paid`; each program has
//! `expense` and `payouts`. A line's amount is what flows *into* the
//! account (negative: out of it), so the partner's accounts read as
//! positive amounts owed or received:
//!
//! | account  | its balance is                                                 |
//! |----------|----------------------------------------------------------------|
//! | pending  | commissions in their hold period (or awaiting approval)        |
//! | payable  | commissions owed now; negative after a refund of paid money    |
//! | paid     | what the partner has been paid                                 |
//! | expense  | minus what the program owes its partners (pending + payable)   |
//! | payouts  | minus what the program has paid out                            |
//!
//! So within a program, `expense + Σ pending + Σ payable = 0` and
//! `payouts + Σ paid = 0` at all times, and the program's commission cost to
//! date is `−(expense + payouts)`.
//!
//! # Movements (TigerBeetle's pending → post / void)
//!
//! * **accrue**: `expense → pending`, when a commission (or an override) is
//!   made;
//! * **post**: `pending → payable`, after the hold period or on approval;
//! * **void**: `pending` (first) and then `payable` `→ expense`, in part or
//!   whole, on a refund or a rejection. Voiding what was already paid out
//!   takes `payable` below zero: the next payout is that much smaller;
//! * **pay**: `payable → expense` and `payouts → paid` in one entry: the
//!   debt is settled and the money leaves the program;
//! * **adjust**: `expense ↔ payable` by hand, with a reason.
//!
//! A [`Position`] follows one commission through these movements (what is
//! still pending, what was posted, what was voided) so that refunds know
//! what is left to reverse; [`refund`] computes reversals pro rata to the
//! refunded value, for commissions and overrides alike.

mod refund;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{CommissionId, PartnerId, ProgramId};
use crate::money::MAX_MINOR;
use crate::FieldError;

pub use refund::{refund, reversal_target, Refund};

/// A partner's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerAccount {
    Pending,
    Payable,
    Paid,
}

/// A program's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramAccount {
    Expense,
    Payouts,
}

/// An account of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    Partner(PartnerId, PartnerAccount),
    Program(ProgramId, ProgramAccount),
}

/// One line of an entry: `amount` flows into `account` (out if negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub account: Account,
    pub amount: i64,
}

/// Why an entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A partner's commission accrues as pending.
    Accrual,
    /// A team lead's override accrues as pending.
    Override,
    /// Pending becomes payable.
    Post,
    /// A commission is reversed, in part or whole.
    Void,
    /// A partner is paid.
    Payout,
    /// The owner corrects a partner's payable balance by hand.
    Adjustment,
}

/// What went wrong building or recording an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("an entry needs at least two lines")]
    TooFewLines,
    #[error("line {0} moves nothing")]
    ZeroLine(usize),
    #[error("line {0} moves more than {MAX_MINOR} minor units")]
    TooLarge(usize),
    #[error("the lines sum to {0}, not zero")]
    Unbalanced(i128),
    #[error("cannot move {requested}: only {available} is left")]
    Exceeds { requested: i64, available: i64 },
    #[error("a balance would overflow")]
    Overflow,
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// A balanced journal entry. Only [`JournalEntry::new`] makes one, so every
/// entry that exists sums to zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawEntry")]
pub struct JournalEntry {
    kind: EntryKind,
    commission_id: Option<CommissionId>,
    memo: String,
    lines: Vec<Line>,
}

/// An entry as read back from storage, checked again on the way in.
#[derive(Deserialize)]
struct RawEntry {
    kind: EntryKind,
    commission_id: Option<CommissionId>,
    memo: String,
    lines: Vec<Line>,
}

impl TryFrom<RawEntry> for JournalEntry {
    type Error = LedgerError;
    fn try_from(r: RawEntry) -> Result<Self, LedgerError> {
        Self::new(r.kind, r.commission_id, r.memo, r.lines)
    }
}

impl JournalEntry {
    /// An entry of at least two non-zero lines, each within
    /// [`MAX_MINOR`], summing to zero.
    pub fn new(
        kind: EntryKind,
        commission_id: Option<CommissionId>,
        memo: impl Into<String>,
        lines: Vec<Line>,
    ) -> Result<Self, LedgerError> {
        if lines.len() < 2 {
            return Err(LedgerError::TooFewLines);
        }
        let mut sum: i128 = 0;
        for (i, l) in lines.iter().enumerate() {
            if l.amount == 0 {
                return Err(LedgerError::ZeroLine(i));
            }
            if l.amount.unsigned_abs() > MAX_MINOR as u64 {
                return Err(LedgerError::TooLarge(i));
            }
            sum += i128::from(l.amount);
        }
        if sum != 0 {
            return Err(LedgerError::Unbalanced(sum));
        }
        Ok(Self {
            kind,
            commission_id,
            memo: memo.into(),
            lines,
        })
    }

    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// The commission (or override) the entry moves, if any.
    pub fn commission_id(&self) -> Option<&CommissionId> {
        self.commission_id.as_ref()
    }

    /// Why, in words (a refund's reason, an adjustment's reason).
    pub fn memo(&self) -> &str {
        &self.memo
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
}

fn partner(p: &PartnerId, a: PartnerAccount) -> Account {
    Account::Partner(p.clone(), a)
}

fn program(p: &ProgramId, a: ProgramAccount) -> Account {
    Account::Program(p.clone(), a)
}

/// Lines with the zero ones left out (a void from pending only, say).
fn nonzero(lines: impl IntoIterator<Item = (Account, i64)>) -> Vec<Line> {
    lines
        .into_iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(account, amount)| Line { account, amount })
        .collect()
}

fn positive(field: &str, amount: i64) -> Result<i64, FieldError> {
    if amount <= 0 || amount > MAX_MINOR {
        return Err(FieldError::new(
            field,
            format!("must be between 1 and {MAX_MINOR} minor units"),
        ));
    }
    Ok(amount)
}

/// One commission (or override) on its way through the ledger.
///
/// `pending + posted + voided = accrued` always; `posted` counts what
/// reached `payable`, paid out or not (payouts settle a partner's balance,
/// not single commissions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub commission_id: CommissionId,
    pub program_id: ProgramId,
    pub partner_id: PartnerId,
    /// For an override: the commission it derives from.
    pub derives_from: Option<CommissionId>,
    pub accrued: i64,
    pub pending: i64,
    pub posted: i64,
    pub voided: i64,
}

impl Position {
    /// Accrue a commission (an override when `derives_from` is set):
    /// `expense → pending`.
    pub fn accrue(
        commission_id: CommissionId,
        program_id: ProgramId,
        partner_id: PartnerId,
        derives_from: Option<CommissionId>,
        amount: i64,
    ) -> Result<(Self, JournalEntry), LedgerError> {
        let amount = positive("amount", amount)?;
        let kind = if derives_from.is_some() {
            EntryKind::Override
        } else {
            EntryKind::Accrual
        };
        let entry = JournalEntry::new(
            kind,
            Some(commission_id.clone()),
            "",
            nonzero([
                (program(&program_id, ProgramAccount::Expense), -amount),
                (partner(&partner_id, PartnerAccount::Pending), amount),
            ]),
        )?;
        let position = Self {
            commission_id,
            program_id,
            partner_id,
            derives_from,
            accrued: amount,
            pending: amount,
            posted: 0,
            voided: 0,
        };
        Ok((position, entry))
    }

    /// What is left to reverse: pending plus posted.
    pub fn open(&self) -> i64 {
        self.pending + self.posted
    }

    /// Post what is still pending: `pending → payable`. `None` when nothing is.
    pub fn post(&mut self) -> Option<JournalEntry> {
        let amount = self.pending;
        if amount == 0 {
            return None;
        }
        let entry = JournalEntry::new(
            EntryKind::Post,
            Some(self.commission_id.clone()),
            "",
            nonzero([
                (partner(&self.partner_id, PartnerAccount::Pending), -amount),
                (partner(&self.partner_id, PartnerAccount::Payable), amount),
            ]),
        )
        .ok()?;
        self.pending = 0;
        self.posted += amount;
        Some(entry)
    }

    /// Void `amount`, from what is pending first, then from what was
    /// posted: `→ expense`. `None` for zero; an error beyond what is open.
    pub fn void(&mut self, amount: i64, memo: &str) -> Result<Option<JournalEntry>, LedgerError> {
        if amount == 0 {
            return Ok(None);
        }
        if amount < 0 || amount > self.open() {
            return Err(LedgerError::Exceeds {
                requested: amount,
                available: self.open(),
            });
        }
        let from_pending = amount.min(self.pending);
        let from_posted = amount - from_pending;
        let entry = JournalEntry::new(
            EntryKind::Void,
            Some(self.commission_id.clone()),
            memo,
            nonzero([
                (
                    partner(&self.partner_id, PartnerAccount::Pending),
                    -from_pending,
                ),
                (
                    partner(&self.partner_id, PartnerAccount::Payable),
                    -from_posted,
                ),
                (program(&self.program_id, ProgramAccount::Expense), amount),
            ]),
        )?;
        self.pending -= from_pending;
        self.posted -= from_posted;
        self.voided += amount;
        Ok(Some(entry))
    }
}

/// Pay a partner `amount` of its payable balance: `payable → expense` (the
/// debt is settled) and `payouts → paid` (the money leaves the program).
pub fn pay(
    program_id: &ProgramId,
    partner_id: &PartnerId,
    amount: i64,
) -> Result<JournalEntry, LedgerError> {
    let amount = positive("amount", amount)?;
    JournalEntry::new(
        EntryKind::Payout,
        None,
        "",
        vec![
            Line {
                account: partner(partner_id, PartnerAccount::Payable),
                amount: -amount,
            },
            Line {
                account: program(program_id, ProgramAccount::Expense),
                amount,
            },
            Line {
                account: program(program_id, ProgramAccount::Payouts),
                amount: -amount,
            },
            Line {
                account: partner(partner_id, PartnerAccount::Paid),
                amount,
            },
        ],
    )
}

/// What a payout of a partner with `payable` would pay: all of it, when it
/// reaches `min_amount` (and is positive). A negative balance (a refund
/// after payout) is carried: it waits for commissions to cover it.
pub fn payout_due(payable: i64, min_amount: i64) -> Option<i64> {
    (payable > 0 && payable >= min_amount).then_some(payable)
}

/// Correct a partner's payable balance by hand: positive credits the
/// partner (`expense → payable`), negative debits it. The reason is required.
pub fn adjust(
    program_id: &ProgramId,
    partner_id: &PartnerId,
    amount: i64,
    reason: &str,
) -> Result<JournalEntry, LedgerError> {
    positive("amount", amount.checked_abs().unwrap_or(0))?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(
            FieldError::new("reason", "is required: 1 to 500 characters saying why").into(),
        );
    }
    JournalEntry::new(
        EntryKind::Adjustment,
        None,
        reason,
        vec![
            Line {
                account: program(program_id, ProgramAccount::Expense),
                amount: -amount,
            },
            Line {
                account: partner(partner_id, PartnerAccount::Payable),
                amount,
            },
        ],
    )
}

/// Every account's balance: the sum of its lines over `entries` (in `i128`,
/// so no sequence of entries can overflow it).
pub fn balances<'a>(
    entries: impl IntoIterator<Item = &'a JournalEntry>,
) -> BTreeMap<Account, i128> {
    let mut out: BTreeMap<Account, i128> = BTreeMap::new();
    for e in entries {
        for l in &e.lines {
            *out.entry(l.account.clone()).or_default() += i128::from(l.amount);
        }
    }
    out
}

/// A partner's balances as the API shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerBalance {
    pub pending: i64,
    pub payable: i64,
    pub paid: i64,
}

/// An in-memory ledger: the entries, and balances kept as they are
/// recorded. What the store does with SQL, for tests and worked examples.
#[derive(Debug, Clone, Default)]
pub struct Books {
    entries: Vec<JournalEntry>,
    balances: BTreeMap<Account, i64>,
}

impl Books {
    /// Record an entry: all its lines or none (a balance that would
    /// overflow refuses the whole entry).
    pub fn record(&mut self, entry: JournalEntry) -> Result<(), LedgerError> {
        let mut next = Vec::with_capacity(entry.lines.len());
        for l in &entry.lines {
            let current = next
                .iter()
                .rev()
                .find(|(a, _)| a == &l.account)
                .map(|(_, b)| *b)
                .unwrap_or_else(|| self.balance(&l.account));
            let b = current.checked_add(l.amount).ok_or(LedgerError::Overflow)?;
            next.push((l.account.clone(), b));
        }
        for (account, b) in next {
            self.balances.insert(account, b);
        }
        self.entries.push(entry);
        Ok(())
    }

    pub fn balance(&self, account: &Account) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    pub fn partner_balance(&self, partner_id: &PartnerId) -> PartnerBalance {
        let b = |a| self.balance(&partner(partner_id, a));
        PartnerBalance {
            pending: b(PartnerAccount::Pending),
            payable: b(PartnerAccount::Payable),
            paid: b(PartnerAccount::Paid),
        }
    }

    pub fn entries(&self) -> &[JournalEntry] {
        &self.entries
    }

    /// The balances kept as entries were recorded, for comparing with
    /// [`balances`] recomputed from the entries.
    pub fn kept_balances(&self) -> &BTreeMap<Account, i64> {
        &self.balances
    }
}
