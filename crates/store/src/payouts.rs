//! Payout batches: what each partner of a program is owed, gathered into a
//! batch, exported as files for PayPal or Wise, and marked paid.
//!
//! A batch is made in one transaction from the ledger: a partner's amount
//! is its `payable` balance as of `until` less what batches not yet paid
//! already hold for it, so two open batches never pay the same money. "As
//! of `until`" counts the money that became payable up to `until` and
//! every debit whenever it came (payouts, refunds of posted commissions,
//! negative adjustments): a payout made after `until`, or a refund, is
//! never paid twice; a debit after `until` of money credited after it only
//! delays that money to the next batch. A negative balance (a refund after
//! a payout) is carried: the partner is left out until commissions cover it.
//!
//! Marking a batch paid records one `pay` entry per partner
//! (`payable → expense`, `payouts → paid`), labels the commissions it
//! settles as paid, and closes the partners' payout requests; doing it
//! again changes nothing.
//!
//! On PostgreSQL, making a batch, paying one and asking for a payout take
//! an advisory lock on the program, so two nodes never count the same
//! balance twice (nor see a batch paid between reading its payable lines
//! and reading what open batches hold).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, FromRow};
use tribute_core::ids::{PartnerId, PayoutId, ProgramId};
use tribute_core::ledger::{pay, payout_due};
use tribute_core::money::check_amount;

use crate::identity::advisory_key_of;
use crate::ledger::{append, save_position, EntryLinks, PositionRow, POSITION_COLUMNS};
use crate::sql::{multi_row_insert, placeholders, Params, INSERT_ROWS, IN_CHUNK};
use crate::{corrupt, from_ms, to_ms, Backend, Context, Result, Store, StoreError};

/// A payout batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPayout {
    pub id: String,
    pub program_id: String,
    pub currency: String,
    /// `created` (to be paid) or `paid`.
    pub status: String,
    /// Money that became payable up to this time is in the batch.
    pub until: DateTime<Utc>,
    /// The smallest amount paid to a partner: the one asked for, or the
    /// program's minimum payout if larger.
    pub min_amount: i64,
    /// The sum of `items` (when listed for one partner: that partner's).
    pub total: i64,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    /// One per partner paid, by partner id.
    pub items: Vec<StoredPayoutItem>,
}

/// What one partner is paid in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct StoredPayoutItem {
    pub partner_id: String,
    pub amount: i64,
}

/// Which batches to list.
#[derive(Debug, Clone, Default)]
pub struct PayoutFilter {
    pub program_id: Option<ProgramId>,
    /// Only batches paying this partner, showing only its item (how a
    /// partner key sees them).
    pub partner_id: Option<PartnerId>,
    /// `created` or `paid`.
    pub status: Option<String>,
}

/// A batch's row (its items are read apart).
#[derive(FromRow)]
pub(crate) struct PayoutRow {
    pub(crate) id: String,
    program_id: String,
    currency: String,
    status: String,
    until_at: i64,
    min_amount: i64,
    total: i64,
    created_at: i64,
    paid_at: Option<i64>,
}

pub(crate) const PAYOUT_COLUMNS: &str =
    "id, program_id, currency, status, until_at, min_amount, total, created_at, paid_at";

impl PayoutRow {
    pub(crate) fn into_payout(
        self,
        items: Vec<StoredPayoutItem>,
        partial: bool,
    ) -> Result<StoredPayout> {
        Ok(StoredPayout {
            until: from_ms(self.until_at)?,
            created_at: from_ms(self.created_at)?,
            paid_at: self.paid_at.map(from_ms).transpose()?,
            total: if partial {
                items.iter().map(|i| i.amount).sum()
            } else {
                self.total
            },
            id: self.id,
            program_id: self.program_id,
            currency: self.currency,
            status: self.status,
            min_amount: self.min_amount,
            items,
        })
    }
}

/// Serialise writers of a program's balances on PostgreSQL (SQLite's
/// `BEGIN IMMEDIATE` already does).
pub(crate) async fn lock_program(
    conn: &mut AnyConnection,
    backend: Backend,
    program: &str,
) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(advisory_key_of(&format!("payouts:{program}")))
            .execute(&mut *conn)
            .await
            .context("locking a program's payouts")?;
    }
    Ok(())
}

/// Per partner: what batches not yet paid hold for it.
pub(crate) async fn held_by_open_batches(
    conn: &mut AnyConnection,
    program: &str,
    partner: Option<&str>,
) -> Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT i.partner_id, CAST(SUM(i.amount) AS BIGINT) FROM payout_items i \
         JOIN payouts p ON p.id = i.payout_id WHERE p.program_id = $1 AND p.status = 'created' \
         AND ($2 IS NULL OR i.partner_id = $2) GROUP BY i.partner_id",
    )
    .bind(program)
    .bind(partner)
    .fetch_all(&mut *conn)
    .await
    .context("summing open payout batches")?;
    Ok(rows.into_iter().collect())
}

/// Per partner of `program`: its payable balance as of `until` (see the
/// module documentation) less what open batches hold.
async fn due_per_partner(
    conn: &mut AnyConnection,
    program: &str,
    until: DateTime<Utc>,
) -> Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT partner_id, CAST(SUM(amount) AS BIGINT) FROM ledger_lines \
         WHERE program_id = $1 AND account = 'payable' AND (amount < 0 OR at <= $2) \
         GROUP BY partner_id",
    )
    .bind(program)
    .bind(to_ms(until))
    .fetch_all(&mut *conn)
    .await
    .context("summing payable balances")?;
    let held = held_by_open_batches(conn, program, None).await?;
    Ok(rows
        .into_iter()
        .map(|(partner, payable)| {
            let held = held.get(&partner).copied().unwrap_or(0);
            (partner, payable.saturating_sub(held))
        })
        .collect())
}

impl Store {
    /// Make a batch of `program`'s payable balances as of `until`: every
    /// partner owed at least `min_amount` (or the program's minimum payout,
    /// if larger) and more than zero. Partners' open payout requests are
    /// batched with it. Nothing to pay is a conflict naming `min_amount`
    /// (some partners are owed less than it) or `until` (none is owed).
    #[tracing::instrument(skip(self))]
    pub async fn create_payout(
        &self,
        program: &ProgramId,
        until: DateTime<Utc>,
        min_amount: i64,
        now: DateTime<Utc>,
    ) -> Result<StoredPayout> {
        check_amount("min_amount", min_amount).map_err(|e| StoreError::Conflict {
            field: "min_amount",
            message: e.message,
        })?;
        let mut tx = self.begin_write().await.context("starting a payout")?;
        lock_program(&mut tx, self.backend(), program.as_str()).await?;
        let (currency, program_min): (String, i64) =
            sqlx::query_as("SELECT currency, payout_min_amount FROM programs WHERE id = $1")
                .bind(program.as_str())
                .fetch_optional(&mut *tx)
                .await
                .context("loading the program of a payout")?
                .ok_or(StoreError::NotFound("program"))?;
        let min = min_amount.max(program_min);
        let due = due_per_partner(&mut tx, program.as_str(), until).await?;
        let items: Vec<StoredPayoutItem> = due
            .iter()
            .filter_map(|(partner, &amount)| {
                payout_due(amount, min).map(|amount| StoredPayoutItem {
                    partner_id: partner.clone(),
                    amount,
                })
            })
            .collect();
        if items.is_empty() {
            let below = due.values().filter(|&&a| a > 0).count();
            return Err(if below > 0 {
                StoreError::Conflict {
                    field: "min_amount",
                    message: format!(
                        "no partner is owed the minimum payout of {min} minor units \
                         ({below} owed less)"
                    ),
                }
            } else {
                StoreError::Conflict {
                    field: "until",
                    message: format!("no partner is owed anything payable until {until}"),
                }
            });
        }
        let total = items
            .iter()
            .try_fold(0i64, |sum, i| sum.checked_add(i.amount))
            .ok_or_else(|| StoreError::Conflict {
                field: "program_id",
                message: "the batch's total would overflow: pay fewer partners at once".into(),
            })?;
        let id = PayoutId::generate_ordered(to_ms(now));
        sqlx::query(&format!(
            "INSERT INTO payouts ({PAYOUT_COLUMNS}) VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, NULL)"
        ))
        .bind(id.as_str())
        .bind(program.as_str())
        .bind(&currency)
        .bind(to_ms(until))
        .bind(min)
        .bind(total)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .context("inserting a payout")?;
        for chunk in items.chunks(INSERT_ROWS) {
            let sql = multi_row_insert(
                "payout_items",
                &["payout_id", "partner_id", "amount"],
                chunk.len(),
                "",
                Params::Numbered,
            );
            let mut q = sqlx::query(&sql);
            for item in chunk {
                q = q.bind(id.as_str()).bind(&item.partner_id).bind(item.amount);
            }
            q.execute(&mut *tx)
                .await
                .context("inserting payout items")?;
        }
        for chunk in items.chunks(IN_CHUNK) {
            let sql = format!(
                "UPDATE payout_requests SET status = 'batched', payout_id = $1 \
                 WHERE program_id = $2 AND status = 'open' AND partner_id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(id.as_str()).bind(program.as_str());
            for item in chunk {
                q = q.bind(&item.partner_id);
            }
            q.execute(&mut *tx)
                .await
                .context("batching payout requests")?;
        }
        tx.commit().await.context("committing a payout")?;
        Ok(StoredPayout {
            id: id.to_string(),
            program_id: program.to_string(),
            currency,
            status: "created".into(),
            until,
            min_amount: min,
            total,
            created_at: from_ms(to_ms(now))?,
            paid_at: None,
            items,
        })
    }

    /// Record that a batch was paid: one `pay` entry per partner, the
    /// commissions it settles (payable, posted by `until`) labelled paid
    /// with the batch's id, the batched requests paid. Returns the batch
    /// and whether it had already been paid (then nothing changed).
    #[tracing::instrument(skip(self))]
    pub async fn mark_payout_paid(
        &self,
        id: &PayoutId,
        now: DateTime<Utc>,
    ) -> Result<(StoredPayout, bool)> {
        let mut tx = self.begin_write().await.context("starting to mark paid")?;
        let program: Option<(String,)> =
            sqlx::query_as("SELECT program_id FROM payouts WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .context("finding a payout's program")?;
        let (program,) = program.ok_or(StoreError::NotFound("payout"))?;
        // A batch being made reads the payable lines and the open batches
        // in two statements: this payment must not land between them.
        lock_program(&mut tx, self.backend(), &program).await?;
        // The claim is the idempotency: only one caller moves it from created.
        let claimed = sqlx::query(
            "UPDATE payouts SET status = 'paid', paid_at = $2 WHERE id = $1 AND status = 'created'",
        )
        .bind(id.as_str())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .context("claiming a payout")?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await.context("ending the claim")?;
            let payout = self
                .payout(id, None)
                .await?
                .ok_or(StoreError::NotFound("payout"))?;
            return Ok((payout, true));
        }
        let row: PayoutRow = sqlx::query_as(&format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await
        .context("loading a payout")?;
        let items = items_of(&mut tx, &[row.id.as_str()], None)
            .await?
            .remove(&row.id)
            .unwrap_or_default();
        let program = ProgramId::parse(&row.program_id).map_err(corrupt("payout program"))?;
        let links = EntryLinks {
            conversion_id: None,
            payout_id: Some(id),
        };
        for item in &items {
            let partner =
                PartnerId::parse(&item.partner_id).map_err(corrupt("payout item partner"))?;
            let entry = pay(&program, &partner, item.amount)
                .map_err(|e| StoreError::Corrupt(format!("payout item {}: {e}", partner)))?;
            append(&mut tx, &program, &entry, links, now).await?;
            settle_commissions(&mut tx, id, &program, &partner, row.until_at).await?;
        }
        sqlx::query("UPDATE payout_requests SET status = 'paid' WHERE payout_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .context("closing payout requests")?;
        tx.commit().await.context("committing a paid payout")?;
        let payout = PayoutRow {
            status: "paid".into(),
            paid_at: Some(to_ms(now)),
            ..row
        };
        Ok((payout.into_payout(items, false)?, false))
    }
}

/// Label the commissions a payment settles: `partner`'s payable ones
/// posted by `until_ms`, not yet in a batch, become paid in `payout`.
async fn settle_commissions(
    conn: &mut AnyConnection,
    payout: &PayoutId,
    program: &ProgramId,
    partner: &PartnerId,
    until_ms: i64,
) -> Result<()> {
    let rows: Vec<PositionRow> = sqlx::query_as(&format!(
        "SELECT {POSITION_COLUMNS} FROM commissions c WHERE c.program_id = $1 \
         AND c.partner_id = $2 AND c.status = 'payable' AND c.payout_id IS NULL \
         AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.commission_id = c.id \
         AND e.kind = 'post' AND e.at <= $3)"
    ))
    .bind(program.as_str())
    .bind(partner.as_str())
    .bind(until_ms)
    .fetch_all(&mut *conn)
    .await
    .context("finding the commissions a payout settles")?;
    for row in rows {
        sqlx::query("UPDATE commissions SET payout_id = $1 WHERE id = $2")
            .bind(payout.as_str())
            .bind(&row.id)
            .execute(&mut *conn)
            .await
            .context("labelling a paid commission")?;
        save_position(conn, &row.position()?, row.held != 0, true).await?;
    }
    Ok(())
}

/// Items of the batches `ids` (only `partner`'s, when given), by batch.
pub(crate) async fn items_of(
    conn: &mut AnyConnection,
    ids: &[&str],
    partner: Option<&str>,
) -> Result<BTreeMap<String, Vec<StoredPayoutItem>>> {
    let mut out: BTreeMap<String, Vec<StoredPayoutItem>> = BTreeMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT payout_id, partner_id, amount FROM payout_items \
             WHERE ($1 IS NULL OR partner_id = $1) AND payout_id IN ({}) \
             ORDER BY payout_id, partner_id",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(&sql).bind(partner);
        for id in chunk {
            q = q.bind(*id);
        }
        for (payout, partner_id, amount) in q
            .fetch_all(&mut *conn)
            .await
            .context("loading payout items")?
        {
            out.entry(payout)
                .or_default()
                .push(StoredPayoutItem { partner_id, amount });
        }
    }
    Ok(out)
}
