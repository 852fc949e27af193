//! Moving commissions after they accrue: release after the hold period,
//! approval and rejection by hand, refunds and chargebacks, adjustments and
//! manual assignment. Each is one transaction: the entries, the positions
//! they move and the record of why (a refund row, a credit) together.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use tribute_core::ids::{CommissionId, ConversionId, EntryId, PartnerId, ProgramId, RefundId};
use tribute_core::ledger::{adjust, refund};
use tribute_core::tracking::Conversion;

use crate::commissions::{
    plan_sale, positions_of, program_rules, write_planned, ProgramRules, Source,
};
use crate::identity::advisory_key_of;
use crate::ledger::{append, save_position, EntryLinks, PositionRow, POSITION_COLUMNS};
use crate::outbox::{emit, Pending};
use crate::{corrupt, from_ms, to_ms, Backend, Context, Result, Store, StoreError};
use tribute_core::webhook::{EventKind, RefundData};

/// Refund or chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundKind {
    Refund,
    Chargeback,
}

impl RefundKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::Chargeback => "chargeback",
        }
    }
}

/// A refund as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct StoredRefund {
    pub id: String,
    pub program_id: String,
    pub conversion_id: String,
    pub external_id: String,
    pub kind: String,
    /// What was asked.
    pub amount: i64,
    /// What counted (capped at what was left of the conversion's value).
    pub applied: i64,
    /// Commissions and overrides voided by it.
    pub reversed: i64,
    pub reason: String,
    #[serde(skip)]
    pub at: i64,
}

/// A refund to record.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub conversion_id: ConversionId,
    pub external_id: String,
    pub kind: RefundKind,
    pub amount: i64,
    pub reason: String,
}

impl Store {
    pub(crate) async fn lock(&self, conn: &mut sqlx::AnyConnection, id: &str) -> Result<()> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(advisory_key_of(id))
                .execute(&mut *conn)
                .await
                .context("locking a conversion")?;
        }
        Ok(())
    }

    /// Post every commission whose hold period is over at `now` (and that
    /// no one holds): pending → payable. Returns how many were posted.
    pub async fn release_due(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await.context("starting release")?;
            let rows: Vec<PositionRow> = sqlx::query_as(&format!(
                "SELECT {POSITION_COLUMNS} FROM commissions WHERE status = 'pending' \
                 AND payable_at <= $1 ORDER BY payable_at, id LIMIT 500"
            ))
            .bind(to_ms(now))
            .fetch_all(&mut *tx)
            .await
            .context("finding commissions due")?;
            let n = rows.len();
            for row in rows {
                let mut p = row.position()?;
                if let Some(entry) = p.post() {
                    append(&mut tx, &p.program_id, &entry, EntryLinks::default(), now).await?;
                    save_position(&mut tx, &p, false, row.payout_id.is_some()).await?;
                    total += 1;
                }
            }
            tx.commit().await.context("committing release")?;
            if n < 500 {
                return Ok(total);
            }
        }
    }

    async fn commission_row(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: &CommissionId,
    ) -> Result<PositionRow> {
        sqlx::query_as(&format!(
            "SELECT {POSITION_COLUMNS} FROM commissions WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .context("loading a commission")?
        .ok_or(StoreError::NotFound("commission"))
    }

    /// Approve a commission by hand: what is pending (held or in its hold
    /// period) is posted now. Returns whether anything moved.
    pub async fn approve_commission(&self, id: &CommissionId, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin_write().await.context("starting approval")?;
        let row = self.commission_row(&mut tx, id).await?;
        let mut p = row.position()?;
        let moved = match p.post() {
            Some(entry) => {
                append(&mut tx, &p.program_id, &entry, EntryLinks::default(), now).await?;
                save_position(&mut tx, &p, false, row.payout_id.is_some()).await?;
                true
            }
            None => false,
        };
        tx.commit().await.context("committing approval")?;
        Ok(moved)
    }

    /// Reject a commission by hand: everything still open of it is voided,
    /// with `reason`. Returns the amount voided.
    pub async fn reject_commission(
        &self,
        id: &CommissionId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await.context("starting rejection")?;
        let row = self.commission_row(&mut tx, id).await?;
        let mut p = row.position()?;
        let open = p.open();
        let entry = p
            .void(open, &format!("rejected: {reason}"))
            .map_err(|e| StoreError::Corrupt(format!("rejecting: {e}")))?;
        if let Some(entry) = entry {
            append(&mut tx, &p.program_id, &entry, EntryLinks::default(), now).await?;
            save_position(&mut tx, &p, row.held != 0, row.payout_id.is_some()).await?;
        }
        tx.commit().await.context("committing rejection")?;
        Ok(open)
    }

    /// Refund (or charge back) part or all of a conversion: every commission
    /// and override of it is voided pro rata. Idempotent by the conversion
    /// and `external_id`: the same refund again returns the first one and
    /// `true`.
    pub async fn refund_conversion(
        &self,
        r: &NewRefund,
        now: DateTime<Utc>,
    ) -> Result<(StoredRefund, bool)> {
        let mut tx = self.begin_write().await.context("starting refund")?;
        self.lock(&mut tx, r.conversion_id.as_str()).await?;
        if let Some(first) = refund_by_key(&mut tx, &r.conversion_id, &r.external_id).await? {
            return Ok((first, true));
        }
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT program_id, value_minor, refunded_minor FROM conversions WHERE id = $1",
        )
        .bind(r.conversion_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("loading the refunded conversion")?;
        let (program, value, refunded_before) = row.ok_or(StoreError::NotFound("conversion"))?;
        let positions = positions_of(&mut tx, r.conversion_id.as_str()).await?;
        let (mut ps, rows): (Vec<_>, Vec<_>) = positions.into_iter().unzip();
        let memo = format!("{} {}: {}", r.kind.as_str(), r.external_id, r.reason);
        let outcome = refund(value, refunded_before, r.amount, &memo, &mut ps).map_err(|e| {
            StoreError::Conflict {
                field: "amount",
                message: e.to_string(),
            }
        })?;
        let links = EntryLinks {
            conversion_id: Some(&r.conversion_id),
            payout_id: None,
        };
        let program_id = ProgramId::parse(&program).map_err(corrupt("conversion program"))?;
        let mut reversed = 0;
        for e in &outcome.entries {
            append(&mut tx, &program_id, e, links, now).await?;
            reversed += e
                .lines()
                .iter()
                .filter(|l| l.amount > 0)
                .map(|l| l.amount)
                .sum::<i64>();
        }
        for (p, row) in ps.iter().zip(&rows) {
            save_position(&mut tx, p, row.held != 0, row.payout_id.is_some()).await?;
        }
        let stored = StoredRefund {
            id: RefundId::generate().to_string(),
            program_id: program,
            conversion_id: r.conversion_id.to_string(),
            external_id: r.external_id.clone(),
            kind: r.kind.as_str().to_owned(),
            amount: r.amount,
            applied: outcome.applied,
            reversed,
            reason: r.reason.clone(),
            at: to_ms(now),
        };
        sqlx::query(
            "INSERT INTO refunds (id, program_id, conversion_id, external_id, kind, amount, \
             applied, reversed, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&stored.id)
        .bind(&stored.program_id)
        .bind(&stored.conversion_id)
        .bind(&stored.external_id)
        .bind(&stored.kind)
        .bind(stored.amount)
        .bind(stored.applied)
        .bind(stored.reversed)
        .bind(&stored.reason)
        .bind(stored.at)
        .execute(&mut *tx)
        .await
        .context("recording a refund")?;
        sqlx::query("UPDATE conversions SET refunded_minor = $1 WHERE id = $2")
            .bind(outcome.refunded_total)
            .bind(r.conversion_id.as_str())
            .execute(&mut *tx)
            .await
            .context("updating the refunded total")?;
        emit(&mut tx, &program_id, now, |currency| {
            let data = RefundData {
                id: stored.id.clone(),
                conversion_id: stored.conversion_id.clone(),
                program_id: stored.program_id.clone(),
                external_id: stored.external_id.clone(),
                kind: stored.kind.clone(),
                amount: stored.amount,
                currency: currency.to_owned(),
            };
            vec![Pending::owner_only(EventKind::ConversionRefunded, &data)]
        })
        .await?;
        tx.commit().await.context("committing refund")?;
        Ok((stored, false))
    }

    /// Refunds of a conversion, oldest first.
    pub async fn refunds_of(&self, conversion: &ConversionId) -> Result<Vec<StoredRefund>> {
        sqlx::query_as(
            "SELECT id, program_id, conversion_id, external_id, kind, amount, applied, reversed, \
             reason, at FROM refunds WHERE conversion_id = $1 ORDER BY at, id",
        )
        .bind(conversion.as_str())
        .fetch_all(self.pool())
        .await
        .context("listing refunds")
    }

    /// Credit or debit a partner's payable balance by hand, with a reason.
    pub async fn adjust_partner(
        &self,
        program: &ProgramId,
        partner: &PartnerId,
        amount: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<EntryId> {
        let entry = adjust(program, partner, amount, reason).map_err(|e| match e {
            tribute_core::ledger::LedgerError::Field(f) => StoreError::Conflict {
                field: if f.field == "reason" {
                    "reason"
                } else {
                    "amount"
                },
                message: f.message,
            },
            other => StoreError::Conflict {
                field: "amount",
                message: other.to_string(),
            },
        })?;
        let mut tx = self.begin_write().await.context("starting adjustment")?;
        let id = append(&mut tx, program, &entry, EntryLinks::default(), now).await?;
        tx.commit().await.context("committing adjustment")?;
        Ok(id)
    }

    /// Credit a conversion no partner earned to `partner`, by hand, and
    /// accrue the commissions today's rules give it (with overrides).
    /// Refused when the conversion already credits a partner.
    pub async fn assign_conversion(
        &self,
        conversion: &Conversion,
        partner: &PartnerId,
        now: DateTime<Utc>,
    ) -> Result<Vec<CommissionId>> {
        let mut tx = self.begin_write().await.context("starting assignment")?;
        self.lock(&mut tx, conversion.id.as_str()).await?;
        let (credited,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM conversion_credits WHERE conversion_id = $1")
                .bind(conversion.id.as_str())
                .fetch_one(&mut *tx)
                .await
                .context("checking credits")?;
        if credited > 0 {
            return Err(StoreError::Conflict {
                field: "partner_id",
                message: "the conversion is already credited to a partner".into(),
            });
        }
        sqlx::query(
            "INSERT INTO conversion_credits (conversion_id, program_id, partner_id, weight, \
             weight_total, amount_minor, occurred_at) VALUES ($1, $2, $3, '1', '1', $4, $5)",
        )
        .bind(conversion.id.as_str())
        .bind(conversion.program_id.as_str())
        .bind(partner.as_str())
        .bind(conversion.value.minor)
        .bind(to_ms(conversion.occurred_at))
        .execute(&mut *tx)
        .await
        .context("crediting by hand")?;
        let ProgramRules { rules, terms } = program_rules(&mut tx, &conversion.program_id).await?;
        let planned = plan_sale(
            &mut tx,
            self.backend(),
            conversion,
            &[(partner.clone(), 1)],
            &rules,
            &terms,
            true,
        )
        .await?;
        let held = conversion.status == tribute_core::tracking::ConversionStatus::Pending;
        write_planned(
            &mut tx,
            &Source::sale(conversion),
            &planned,
            held,
            terms.hold_days,
            now,
        )
        .await?;
        tx.commit().await.context("committing assignment")?;
        Ok(planned.into_iter().map(|p| p.id).collect())
    }
}

async fn refund_by_key(
    conn: &mut sqlx::AnyConnection,
    conversion: &ConversionId,
    external_id: &str,
) -> Result<Option<StoredRefund>> {
    sqlx::query_as(
        "SELECT id, program_id, conversion_id, external_id, kind, amount, applied, reversed, \
         reason, at FROM refunds WHERE conversion_id = $1 AND external_id = $2",
    )
    .bind(conversion.as_str())
    .bind(external_id)
    .fetch_optional(&mut *conn)
    .await
    .context("looking up a refund")
}

impl StoredRefund {
    /// When the refund was recorded.
    pub fn recorded_at(&self) -> Result<DateTime<Utc>> {
        from_ms(self.at)
    }
}
