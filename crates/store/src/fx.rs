//! Exchange rates as stored: the owner's rates per program, each from its
//! `effective_at` on, and the one in force for a conversion.
//!
//! A rate is never edited: a new rate with a later `effective_at` takes
//! over, and a mistaken one is deleted. Conversions keep the rate they used
//! (`conversions.fx`), so deleting a rate never changes the books.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tribute_core::fx::{FxRate, Rate};
use tribute_core::ids::{FxRateId, ProgramId};
use tribute_core::money::Currency;

use crate::{corrupt, from_ms, on_unique, to_ms, Context, Page, Result, Store, StoreError};

/// A rate of a program, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFxRate {
    pub id: FxRateId,
    pub program_id: ProgramId,
    pub rate: FxRate,
    pub created_at: DateTime<Utc>,
}

/// Which rates to list.
#[derive(Debug, Clone, Default)]
pub struct FxRateFilter {
    pub program_id: Option<ProgramId>,
    pub from: Option<Currency>,
}

const COLUMNS: &str = "id, program_id, from_currency, to_currency, rate, effective_at, created_at";

#[derive(FromRow)]
struct FxRateRow {
    id: String,
    program_id: String,
    from_currency: String,
    to_currency: String,
    rate: String,
    effective_at: i64,
    created_at: i64,
}

impl TryFrom<FxRateRow> for StoredFxRate {
    type Error = StoreError;
    fn try_from(r: FxRateRow) -> Result<Self> {
        let rate = FxRate::new(
            Currency::parse(&r.from_currency).map_err(corrupt("rate from_currency"))?,
            Currency::parse(&r.to_currency).map_err(corrupt("rate to_currency"))?,
            Rate::parse("rate", &r.rate).map_err(corrupt("rate"))?,
            from_ms(r.effective_at)?,
        )
        .map_err(corrupt("rate"))?;
        Ok(Self {
            id: FxRateId::parse(&r.id).map_err(corrupt("rate id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("rate program"))?,
            rate,
            created_at: from_ms(r.created_at)?,
        })
    }
}

impl Store {
    /// Store a rate. A second rate of the same pair taking effect at the
    /// same millisecond is a conflict on `effective_at` (which rate applies
    /// must never depend on the order rows are read in).
    #[tracing::instrument(skip(self, r), fields(id = %r.id))]
    pub async fn insert_fx_rate(&self, r: &StoredFxRate) -> Result<()> {
        on_unique(
            sqlx::query(&format!(
                "INSERT INTO fx_rates ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(r.id.as_str())
            .bind(r.program_id.as_str())
            .bind(r.rate.from.as_str())
            .bind(r.rate.to.as_str())
            .bind(r.rate.rate.to_string())
            .bind(to_ms(r.rate.effective_at))
            .bind(to_ms(r.created_at))
            .execute(self.pool())
            .await,
            "effective_at",
            "a rate of this currency pair already takes effect at this time",
            "inserting an exchange rate",
        )?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn fx_rate(&self, id: &FxRateId) -> Result<Option<StoredFxRate>> {
        sqlx::query_as::<_, FxRateRow>(&format!("SELECT {COLUMNS} FROM fx_rates WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .context("loading an exchange rate")?
            .map(StoredFxRate::try_from)
            .transpose()
    }

    /// Rates by program, pair and time, the latest first within a pair.
    #[tracing::instrument(skip(self))]
    pub async fn fx_rates(&self, f: &FxRateFilter, page: Page) -> Result<Vec<StoredFxRate>> {
        sqlx::query_as::<_, FxRateRow>(&format!(
            "SELECT {COLUMNS} FROM fx_rates WHERE ($1 IS NULL OR program_id = $1) \
             AND ($2 IS NULL OR from_currency = $2) \
             ORDER BY program_id, from_currency, to_currency, effective_at DESC \
             LIMIT $3 OFFSET $4"
        ))
        .bind(f.program_id.as_ref().map(|p| p.as_str()))
        .bind(f.from.as_ref().map(|c| c.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing exchange rates")?
        .into_iter()
        .map(StoredFxRate::try_from)
        .collect()
    }

    /// Delete a rate; conversions that used it keep their copy of it.
    #[tracing::instrument(skip(self))]
    pub async fn delete_fx_rate(&self, id: &FxRateId) -> Result<()> {
        let done = sqlx::query("DELETE FROM fx_rates WHERE id = $1")
            .bind(id.as_str())
            .execute(self.pool())
            .await
            .context("deleting an exchange rate")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("exchange rate"));
        }
        Ok(())
    }

    /// The rate of `program` from `from` to `to` in force at `at`: the one
    /// with the latest `effective_at` not after `at` (what
    /// `tribute_core::fx::rate_at` picks, read with one indexed lookup).
    #[tracing::instrument(skip(self))]
    pub async fn fx_rate_at(
        &self,
        program: &ProgramId,
        from: Currency,
        to: Currency,
        at: DateTime<Utc>,
    ) -> Result<Option<FxRate>> {
        sqlx::query_as::<_, FxRateRow>(&format!(
            "SELECT {COLUMNS} FROM fx_rates WHERE program_id = $1 AND from_currency = $2 \
             AND to_currency = $3 AND effective_at <= $4 ORDER BY effective_at DESC LIMIT 1"
        ))
        .bind(program.as_str())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(to_ms(at))
        .fetch_optional(self.pool())
        .await
        .context("finding the exchange rate in force")?
        .map(|r| StoredFxRate::try_from(r).map(|s| s.rate))
        .transpose()
    }
}
