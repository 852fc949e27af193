//! Programs.

use sqlx::FromRow;
use tribute_core::attribution::ModelKind;
use tribute_core::ids::ProgramId;
use tribute_core::money::Currency;
use tribute_core::program::{AllowedDomain, CommissionTerms, Program, ProgramSettings};

use crate::{corrupt, from_ms, to_ms, Context, Page, Result, Store, StoreError};

impl Store {
    #[tracing::instrument(skip(self, p), fields(id = %p.id))]
    pub async fn insert_program(&self, p: &Program) -> Result<()> {
        let s = &p.settings;
        sqlx::query(&format!(
            "INSERT INTO programs ({PROGRAM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(p.id.as_str())
        .bind(&s.name)
        .bind(s.currency.as_str())
        .bind(domains_json(p))
        .bind(s.default_model.as_str())
        .bind(s.window_days)
        .bind(s.cookie_days)
        .bind(s.hold_days)
        .bind(to_ms(p.created_at))
        .execute(self.pool())
        .await
        .context("inserting program")?;
        Ok(())
    }

    /// Overwrite a program's settings (its id, currency and creation time stay).
    #[tracing::instrument(skip(self, p), fields(id = %p.id))]
    pub async fn update_program(&self, p: &Program) -> Result<()> {
        let s = &p.settings;
        let done = sqlx::query(
            "UPDATE programs SET name = $2, allowed_domains = $3, default_model = $4, \
             window_days = $5, cookie_days = $6, hold_days = $7 WHERE id = $1",
        )
        .bind(p.id.as_str())
        .bind(&s.name)
        .bind(domains_json(p))
        .bind(s.default_model.as_str())
        .bind(s.window_days)
        .bind(s.cookie_days)
        .bind(s.hold_days)
        .execute(self.pool())
        .await
        .context("updating program")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("program"));
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn program(&self, id: &ProgramId) -> Result<Option<Program>> {
        sqlx::query_as::<_, ProgramRow>(&format!(
            "SELECT {PROGRAM_COLUMNS} FROM programs WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading program")?
        .map(Program::try_from)
        .transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn programs(&self, page: Page) -> Result<Vec<Program>> {
        sqlx::query_as::<_, ProgramRow>(&format!(
            "SELECT {PROGRAM_COLUMNS} FROM programs ORDER BY created_at, id LIMIT $1 OFFSET $2"
        ))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing programs")?
        .into_iter()
        .map(Program::try_from)
        .collect()
    }
}

impl Store {
    /// A program's commission terms (override levels, minimum payout);
    /// `None` for an unknown program.
    #[tracing::instrument(skip(self))]
    pub async fn commission_terms(&self, id: &ProgramId) -> Result<Option<CommissionTerms>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT override_levels_bps, payout_min_amount FROM programs WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading commission terms")?;
        row.map(|(levels, payout_min_amount)| {
            Ok(CommissionTerms {
                override_levels_bps: serde_json::from_str(&levels)
                    .map_err(|e| StoreError::Corrupt(format!("override levels: {e}")))?,
                payout_min_amount,
            })
        })
        .transpose()
    }

    /// Replace a program's commission terms (validated by the caller).
    /// Commissions already made keep the overrides they were made with.
    #[tracing::instrument(skip(self, terms))]
    pub async fn set_commission_terms(
        &self,
        id: &ProgramId,
        terms: &CommissionTerms,
    ) -> Result<()> {
        let levels = serde_json::to_string(&terms.override_levels_bps)
            .expect("a list of numbers serialises");
        let done = sqlx::query(
            "UPDATE programs SET override_levels_bps = $2, payout_min_amount = $3 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(levels)
        .bind(terms.payout_min_amount)
        .execute(self.pool())
        .await
        .context("updating commission terms")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("program"));
        }
        Ok(())
    }
}

fn domains_json(p: &Program) -> String {
    let list: Vec<&str> = p
        .settings
        .allowed_domains
        .iter()
        .map(|d| d.as_str())
        .collect();
    serde_json::to_string(&list).expect("a list of strings serialises")
}

const PROGRAM_COLUMNS: &str = "id, name, currency, allowed_domains, default_model, \
     window_days, cookie_days, hold_days, created_at";

#[derive(FromRow)]
struct ProgramRow {
    id: String,
    name: String,
    currency: String,
    allowed_domains: String,
    default_model: String,
    window_days: i64,
    cookie_days: i64,
    hold_days: i64,
    created_at: i64,
}

impl TryFrom<ProgramRow> for Program {
    type Error = StoreError;
    fn try_from(r: ProgramRow) -> Result<Self> {
        let domains: Vec<String> = serde_json::from_str(&r.allowed_domains)
            .map_err(|e| StoreError::Corrupt(format!("program allowed_domains: {e}")))?;
        Ok(Program {
            id: ProgramId::parse(&r.id).map_err(corrupt("program id"))?,
            settings: ProgramSettings {
                name: r.name,
                currency: Currency::parse(&r.currency).map_err(corrupt("program currency"))?,
                allowed_domains: domains
                    .iter()
                    // Rows saved before IP addresses and public suffixes
                    // were refused still load.
                    .map(|d| AllowedDomain::from_stored(d))
                    .collect::<Result<_, _>>()
                    .map_err(corrupt("program allowed_domains"))?,
                default_model: ModelKind::parse(&r.default_model)
                    .map_err(corrupt("program default_model"))?,
                window_days: r.window_days,
                cookie_days: r.cookie_days,
                hold_days: r.hold_days,
            },
            created_at: from_ms(r.created_at)?,
        })
    }
}
