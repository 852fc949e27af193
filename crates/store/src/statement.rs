//! A partner's statement for a period: its balances at the start, every
//! ledger line on its accounts during the period with the entry's kind,
//! memo and the commission's explanation, and its balances at the end.
//!
//! Read from the same journal as everything else (`Store::ledger`), so a
//! statement's lines always add up from the opening to the closing balances.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tribute_core::ids::PartnerId;
use tribute_core::ledger::{Account, EntryKind, PartnerAccount, PartnerBalance};

use crate::ledger::LedgerFilter;
use crate::{to_ms, Context, Page, Result, Store, StoreError};

/// One line of a statement: an amount into (negative: out of) one of the
/// partner's accounts, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementLine {
    pub entry_id: String,
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    pub account: PartnerAccount,
    pub amount: i64,
    /// The entry's memo (a refund's or an adjustment's reason).
    pub memo: String,
    pub commission_id: Option<String>,
    pub conversion_id: Option<String>,
    pub payout_id: Option<String>,
    /// The commission's explanation (touches, credit, rule, tier,
    /// overrides), for lines that move a commission.
    pub explanation: Option<serde_json::Value>,
}

/// A partner's statement for `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub partner_id: String,
    pub program_id: String,
    pub currency: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Balances before `from`.
    pub opening: PartnerBalance,
    /// Balances before `to`: the opening ones plus the lines.
    pub closing: PartnerBalance,
    /// Oldest first.
    pub lines: Vec<StatementLine>,
}

/// Entries read per query while gathering a statement.
const STATEMENT_PAGE: i64 = 500;

fn add(balance: &mut PartnerBalance, account: PartnerAccount, amount: i64) -> Result<()> {
    let slot = match account {
        PartnerAccount::Pending => &mut balance.pending,
        PartnerAccount::Payable => &mut balance.payable,
        PartnerAccount::Paid => &mut balance.paid,
    };
    *slot = slot
        .checked_add(amount)
        .ok_or_else(|| StoreError::Corrupt("a statement balance overflows".into()))?;
    Ok(())
}

impl Store {
    /// `partner`'s statement for `[from, to)`; `None` for an unknown partner.
    #[tracing::instrument(skip(self))]
    pub async fn statement(
        &self,
        partner: &PartnerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<Statement>> {
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT p.program_id, g.currency FROM partners p \
             JOIN programs g ON g.id = p.program_id WHERE p.id = $1",
        )
        .bind(partner.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading the partner of a statement")?;
        let Some((program_id, currency)) = found else {
            return Ok(None);
        };
        let before: Vec<(String, i64)> = sqlx::query_as(
            "SELECT account, CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_lines \
             WHERE partner_id = $1 AND at < $2 GROUP BY account",
        )
        .bind(partner.as_str())
        .bind(to_ms(from))
        .fetch_all(self.pool())
        .await
        .context("summing a statement's opening balances")?;
        let mut opening = PartnerBalance::default();
        for (account, sum) in before {
            let account = match account.as_str() {
                "pending" => PartnerAccount::Pending,
                "payable" => PartnerAccount::Payable,
                "paid" => PartnerAccount::Paid,
                other => return Err(StoreError::Corrupt(format!("partner account {other}"))),
            };
            add(&mut opening, account, sum)?;
        }
        let filter = LedgerFilter {
            program_id: None,
            partner_id: Some(partner.clone()),
            from: Some(from),
            to: Some(to),
        };
        let mut lines = Vec::new();
        let mut offset = 0;
        loop {
            let page = Page {
                limit: STATEMENT_PAGE,
                offset,
            };
            let entries = self.ledger(&filter, page).await?;
            let n = entries.len() as i64;
            for e in entries {
                for line in &e.lines {
                    let Account::Partner(p, account) = &line.account else {
                        continue;
                    };
                    if p != partner {
                        continue;
                    }
                    lines.push(StatementLine {
                        entry_id: e.id.clone(),
                        at: e.at,
                        kind: e.kind,
                        account: *account,
                        amount: line.amount,
                        memo: e.memo.clone(),
                        commission_id: e.commission_id.clone(),
                        conversion_id: e.conversion_id.clone(),
                        payout_id: e.payout_id.clone(),
                        explanation: e.explanation.clone(),
                    });
                }
            }
            if n < STATEMENT_PAGE {
                break;
            }
            offset += n;
        }
        // Entry ids follow the clock when written; `at` is when it counts.
        lines.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.entry_id.cmp(&b.entry_id)));
        let mut closing = opening;
        for l in &lines {
            add(&mut closing, l.account, l.amount)?;
        }
        Ok(Some(Statement {
            partner_id: partner.to_string(),
            program_id,
            currency,
            from,
            to,
            opening,
            closing,
            lines,
        }))
    }
}
