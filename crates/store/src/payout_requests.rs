//! Partners' payout requests: a partner asks to be paid (part of) its
//! payable balance; the next batch that pays the partner takes the request
//! with it (`batched`), and marking that batch paid closes it (`paid`).
//!
//! What a partner may ask for is its payable balance now, less what open
//! batches already hold for it and what its open requests already ask: so
//! asking twice never asks for the same money twice. It must reach the
//! program's minimum payout.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use tribute_core::ids::{PartnerId, PayoutRequestId, ProgramId};

use crate::payouts::{held_by_open_batches, lock_program};
use crate::{from_ms, to_ms, Context, Page, Result, Store, StoreError};

/// A partner's request to be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPayoutRequest {
    pub id: String,
    pub program_id: String,
    pub partner_id: String,
    /// Minor units of the program's currency.
    pub amount: i64,
    /// `open`, `batched` (in a batch not yet paid) or `paid`.
    pub status: String,
    /// The batch that took the request.
    pub payout_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct PayoutRequestFilter {
    pub program_id: Option<ProgramId>,
    pub partner_id: Option<PartnerId>,
    /// `open`, `batched` or `paid`.
    pub status: Option<String>,
}

#[derive(FromRow)]
struct RequestRow {
    id: String,
    program_id: String,
    partner_id: String,
    amount: i64,
    status: String,
    payout_id: Option<String>,
    created_at: i64,
}

impl TryFrom<RequestRow> for StoredPayoutRequest {
    type Error = StoreError;
    fn try_from(r: RequestRow) -> Result<Self> {
        Ok(Self {
            created_at: from_ms(r.created_at)?,
            id: r.id,
            program_id: r.program_id,
            partner_id: r.partner_id,
            amount: r.amount,
            status: r.status,
            payout_id: r.payout_id,
        })
    }
}

const REQUEST_COLUMNS: &str = "id, program_id, partner_id, amount, status, payout_id, created_at";

impl Store {
    /// `partner` asks to be paid `amount` (by default all it may ask for).
    /// Refused, naming `amount`, when that is more than it may ask for, or
    /// less than the program's minimum payout (or nothing).
    #[tracing::instrument(skip(self))]
    pub async fn create_payout_request(
        &self,
        partner: &PartnerId,
        amount: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<StoredPayoutRequest> {
        let mut tx = self
            .begin_write()
            .await
            .context("starting a payout request")?;
        let (program, min): (String, i64) = sqlx::query_as(
            "SELECT p.program_id, g.payout_min_amount FROM partners p \
             JOIN programs g ON g.id = p.program_id WHERE p.id = $1",
        )
        .bind(partner.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("loading the partner asking for a payout")?
        .ok_or(StoreError::NotFound("partner"))?;
        lock_program(&mut tx, self.backend(), &program).await?;
        let (payable, asked): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE((SELECT SUM(amount) FROM ledger_lines \
             WHERE partner_id = $1 AND account = 'payable'), 0) AS BIGINT), \
             CAST(COALESCE((SELECT SUM(amount) FROM payout_requests \
             WHERE partner_id = $1 AND status = 'open'), 0) AS BIGINT)",
        )
        .bind(partner.as_str())
        .fetch_one(&mut *tx)
        .await
        .context("summing what a partner may ask for")?;
        let held = held_by_open_batches(&mut tx, &program, Some(partner.as_str()))
            .await?
            .into_values()
            .sum::<i64>();
        let available = payable.saturating_sub(held).saturating_sub(asked);
        let least = min.max(1);
        let refuse = |message: String| StoreError::Conflict {
            field: "amount",
            message,
        };
        if available < least {
            return Err(refuse(format!(
                "{available} minor units may be asked for (payable {payable}, in open \
                 batches {held}, in open requests {asked}), less than the minimum payout \
                 of {least}"
            )));
        }
        let amount = amount.unwrap_or(available);
        if amount > available {
            return Err(refuse(format!(
                "at most {available} minor units may be asked for"
            )));
        }
        if amount < least {
            return Err(refuse(format!(
                "must be at least the minimum payout of {least} minor units"
            )));
        }
        let request = StoredPayoutRequest {
            id: PayoutRequestId::generate_ordered(to_ms(now)).to_string(),
            program_id: program,
            partner_id: partner.to_string(),
            amount,
            status: "open".into(),
            payout_id: None,
            created_at: from_ms(to_ms(now))?,
        };
        sqlx::query(&format!(
            "INSERT INTO payout_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, 'open', NULL, $5)"
        ))
        .bind(&request.id)
        .bind(&request.program_id)
        .bind(&request.partner_id)
        .bind(amount)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .context("inserting a payout request")?;
        tx.commit().await.context("committing a payout request")?;
        Ok(request)
    }

    /// Payout requests newest first.
    #[tracing::instrument(skip(self))]
    pub async fn payout_requests(
        &self,
        f: &PayoutRequestFilter,
        page: Page,
    ) -> Result<Vec<StoredPayoutRequest>> {
        sqlx::query_as::<_, RequestRow>(&format!(
            "SELECT {REQUEST_COLUMNS} FROM payout_requests WHERE ($1 IS NULL OR program_id = $1) \
             AND ($2 IS NULL OR partner_id = $2) AND ($3 IS NULL OR status = $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(f.program_id.as_ref().map(|p| p.as_str()))
        .bind(f.partner_id.as_ref().map(|p| p.as_str()))
        .bind(f.status.as_deref())
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing payout requests")?
        .into_iter()
        .map(StoredPayoutRequest::try_from)
        .collect()
    }
}
