//! Conversions and their credits: written once, idempotently.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use tribute_core::ids::{ConversionId, PartnerId, PersonId, ProgramId};
use tribute_core::money::{Currency, Money};
use tribute_core::tracking::{Conversion, ConversionStatus};

use crate::db::{fetch_optional, on_unique_db, Arg, Db, DbContext, Row};
use crate::sql::{multi_row_insert, placeholders, Params, INSERT_ROWS};
use crate::{from_ms, to_ms, Backend, Context, Page, Result, Store, StoreError};

const COLUMNS: &str = "id, program_id, external_id, idempotency_key, person_id, status, \
     value_minor, currency, products, click_id, coupon, occurred_at, received_at, attribution, request_hash, \
     customer_key, metadata, fx";

#[derive(FromRow)]
struct ConversionRow {
    id: String,
    program_id: String,
    external_id: Option<String>,
    idempotency_key: Option<String>,
    person_id: Option<String>,
    status: String,
    value_minor: i64,
    currency: String,
    products: String,
    click_id: Option<String>,
    coupon: Option<String>,
    occurred_at: i64,
    received_at: i64,
    attribution: String,
    request_hash: Option<String>,
    customer_key: Option<String>,
    metadata: String,
    fx: Option<String>,
}

impl ConversionRow {
    /// A row of [`COLUMNS`] in order, read through [`Db`].
    fn from_db(r: &Row) -> Result<Self> {
        let text = |i| r.text(i).map(str::to_owned);
        let opt = |i| r.opt_text(i).map(|t| t.map(str::to_owned));
        Ok(Self {
            id: text(0)?,
            program_id: text(1)?,
            external_id: opt(2)?,
            idempotency_key: opt(3)?,
            person_id: opt(4)?,
            status: text(5)?,
            value_minor: r.int(6)?,
            currency: text(7)?,
            products: text(8)?,
            click_id: opt(9)?,
            coupon: opt(10)?,
            occurred_at: r.int(11)?,
            received_at: r.int(12)?,
            attribution: text(13)?,
            request_hash: opt(14)?,
            customer_key: opt(15)?,
            metadata: text(16)?,
            fx: opt(17)?,
        })
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("conversion {what}: {e}"))
}

impl TryFrom<ConversionRow> for Conversion {
    type Error = StoreError;
    fn try_from(r: ConversionRow) -> Result<Self> {
        Ok(Conversion {
            id: ConversionId::parse(&r.id).map_err(|e| corrupt("id", e))?,
            program_id: ProgramId::parse(&r.program_id).map_err(|e| corrupt("program", e))?,
            external_id: r.external_id,
            idempotency_key: r.idempotency_key,
            person_id: r
                .person_id
                .as_deref()
                .map(PersonId::parse)
                .transpose()
                .map_err(|e| corrupt("person", e))?,
            status: ConversionStatus::parse(&r.status).map_err(|e| corrupt("status", e))?,
            value: Money::new(
                r.value_minor,
                Currency::parse(&r.currency).map_err(|e| corrupt("currency", e))?,
            ),
            products: serde_json::from_str(&r.products).map_err(|e| corrupt("products", e))?,
            click_id: r.click_id,
            coupon: r.coupon,
            occurred_at: from_ms(r.occurred_at)?,
            received_at: from_ms(r.received_at)?,
            attribution: serde_json::from_str(&r.attribution)
                .map_err(|e| corrupt("attribution", e))?,
            request_hash: r.request_hash,
            customer_key: r.customer_key,
            metadata: serde_json::from_str(&r.metadata).map_err(|e| corrupt("metadata", e))?,
            fx: r
                .fx
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt("fx", e))?,
        })
    }
}

/// A partner's part of a conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credit {
    pub partner_id: String,
    /// The partner's slug (empty if the partner was since deleted).
    pub slug: String,
    /// Exact share: `weight / weight_total`.
    pub weight: u64,
    pub weight_total: u64,
    /// The partner's part of the conversion value, in minor units.
    pub amount_minor: i64,
}

impl Credit {
    /// The share as a float, for display only: amounts are exact.
    pub fn share_ratio(&self) -> f64 {
        if self.weight_total == 0 {
            0.0
        } else {
            self.weight as f64 / self.weight_total as f64
        }
    }
}

/// Columns of a credit as read (`c`: `conversion_credits`, `p`: `partners`).
const CREDIT_COLUMNS: &str =
    "c.partner_id, COALESCE(p.slug, '') AS slug, c.weight, c.weight_total, c.amount_minor";

/// A credit as stored: weights are `u64` kept as text, since PostgreSQL's
/// BIGINT is signed.
#[derive(FromRow)]
struct CreditRow {
    partner_id: String,
    slug: String,
    weight: String,
    weight_total: String,
    amount_minor: i64,
}

impl CreditRow {
    /// A row of [`CREDIT_COLUMNS`] in order, read through [`Db`].
    fn from_db(r: &Row) -> Result<Self> {
        Ok(Self {
            partner_id: r.text(0)?.to_owned(),
            slug: r.text(1)?.to_owned(),
            weight: r.text(2)?.to_owned(),
            weight_total: r.text(3)?.to_owned(),
            amount_minor: r.int(4)?,
        })
    }
}

impl TryFrom<CreditRow> for Credit {
    type Error = StoreError;
    fn try_from(r: CreditRow) -> Result<Self> {
        Ok(Credit {
            weight: r.weight.parse().map_err(|e| corrupt("credit weight", e))?,
            weight_total: r
                .weight_total
                .parse()
                .map_err(|e| corrupt("credit weight_total", e))?,
            partner_id: r.partner_id,
            slug: r.slug,
            amount_minor: r.amount_minor,
        })
    }
}

/// Which conversions to list.
#[derive(Debug, Clone, Default)]
pub struct ConversionFilter {
    pub program_id: Option<ProgramId>,
    /// Only conversions credited to this partner.
    pub partner_id: Option<PartnerId>,
    pub status: Option<ConversionStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Store {
    /// Write a conversion and its partners' exact parts in one transaction.
    pub async fn insert_conversion(&self, c: &Conversion) -> Result<()> {
        self.insert_conversion_superseding(c, &[]).await
    }

    /// [`Store::insert_conversion`], and in the same transaction the browser reports of the same order named in `supersedes` (external
    /// ids) that are still pending become `superseded` in that transaction.
    ///
    /// A second conversion with the same external id or idempotency key is
    /// refused with `Conflict`; the caller answers with the first one.
    pub async fn insert_conversion_superseding(
        &self,
        c: &Conversion,
        supersedes: &[String],
    ) -> Result<()> {
        let mut tx = self.begin_write().await.context("starting conversion")?;
        insert_conversion_in(&mut tx, self.backend(), c, supersedes, false).await?;
        tx.commit().await.context("committing conversion")?;
        Ok(())
    }

    pub async fn conversion(&self, id: &ConversionId) -> Result<Option<Conversion>> {
        sqlx::query_as::<_, ConversionRow>(&format!(
            "SELECT {COLUMNS} FROM conversions WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading conversion")?
        .map(Conversion::try_from)
        .transpose()
    }

    /// The conversion an external id or idempotency key already made, if any.
    pub async fn conversion_by_keys(
        &self,
        program: &ProgramId,
        external_id: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<Conversion>> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .context("loading conversion by key")?;
        conversion_by_keys_in(&mut *conn, program, external_id, idempotency_key).await
    }

    /// Partners credited with a conversion, with exact shares and amounts.
    pub async fn conversion_credits(&self, id: &ConversionId) -> Result<Vec<Credit>> {
        let mut conn = self.pool().acquire().await.context("loading credits")?;
        credits_in(&mut *conn, id).await
    }

    /// Credits of several conversions in one query (for lists), by conversion id.
    pub async fn conversion_credits_of(
        &self,
        ids: &[ConversionId],
    ) -> Result<std::collections::HashMap<String, Vec<Credit>>> {
        #[derive(FromRow)]
        struct Row {
            conversion_id: String,
            #[sqlx(flatten)]
            credit: CreditRow,
        }
        let mut out: std::collections::HashMap<String, Vec<Credit>> =
            std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT c.conversion_id, {CREDIT_COLUMNS} FROM conversion_credits c \
                 LEFT JOIN partners p ON p.id = c.partner_id WHERE c.conversion_id IN ({list}) \
                 ORDER BY c.amount_minor DESC, c.partner_id"
            );
            let mut q = sqlx::query_as::<_, Row>(&sql);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for r in q.fetch_all(self.pool()).await.context("loading credits")? {
                out.entry(r.conversion_id)
                    .or_default()
                    .push(Credit::try_from(r.credit)?);
            }
        }
        Ok(out)
    }

    /// Conversions newest first.
    pub async fn conversions(&self, f: &ConversionFilter, page: Page) -> Result<Vec<Conversion>> {
        sqlx::query_as::<_, ConversionRow>(&format!(
            "SELECT {COLUMNS} FROM conversions WHERE ($1 IS NULL OR program_id = $1) \
             AND ($2 IS NULL OR id IN (SELECT conversion_id FROM conversion_credits WHERE partner_id = $2)) \
             AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR occurred_at >= $4) \
             AND ($5 IS NULL OR occurred_at < $5) \
             ORDER BY occurred_at DESC, id LIMIT $6 OFFSET $7"
        ))
        .bind(f.program_id.as_ref().map(|p| p.as_str()))
        .bind(f.partner_id.as_ref().map(|p| p.as_str()))
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.from.map(to_ms))
        .bind(f.to.map(to_ms))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing conversions")?
        .into_iter()
        .map(Conversion::try_from)
        .collect()
    }
}

/// [`Store::insert_conversion_superseding`] inside the caller's write
/// transaction; `fraud_hold`: the fraud rules hold its commissions for review.
pub(crate) async fn insert_conversion_in(
    tx: &mut dyn Db,
    backend: Backend,
    c: &Conversion,
    supersedes: &[String],
    fraud_hold: bool,
) -> Result<()> {
    let attribution = serde_json::to_string(&c.attribution).expect("attribution serialises");
    let products = serde_json::to_string(&c.products).expect("products serialise");
    let metadata = serde_json::Value::Object(c.metadata.clone()).to_string();
    let fx =
        c.fx.as_ref()
            .map(|f| serde_json::to_string(f).expect("fx serialises"));
    let sql = format!(
        "INSERT INTO conversions ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    );
    let args: Vec<Arg> = vec![
        c.id.as_str().into(),
        c.program_id.as_str().into(),
        c.external_id.as_deref().into(),
        c.idempotency_key.as_deref().into(),
        c.person_id.as_ref().map(|p| p.as_str()).into(),
        c.status.as_str().into(),
        c.value.minor.into(),
        c.value.currency.as_str().into(),
        products.into(),
        c.click_id.as_deref().into(),
        c.coupon.as_deref().into(),
        to_ms(c.occurred_at).into(),
        to_ms(c.received_at).into(),
        attribution.into(),
        c.request_hash.as_deref().into(),
        c.customer_key.as_deref().into(),
        metadata.into(),
        fx.into(),
    ];
    on_unique_db(
        tx.execute(&sql, args).await,
        "external_id",
        "a conversion with this external id or idempotency key exists",
        "inserting conversion",
    )?;
    let weights = &c.attribution.partners;
    let credits = c.attribution.split(c.value.minor);
    let weight_total = c.attribution.weight_total.to_string();
    for chunk in credits.chunks(INSERT_ROWS) {
        let sql = multi_row_insert(
            "conversion_credits",
            &[
                "conversion_id",
                "program_id",
                "partner_id",
                "weight",
                "weight_total",
                "amount_minor",
                "occurred_at",
            ],
            chunk.len(),
            "",
            Params::Numbered,
        );
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * 7);
        for (partner, amount) in chunk {
            let weight = weights
                .iter()
                .find(|p| &p.partner_id == partner)
                .map(|p| p.weight)
                .unwrap_or(0);
            args.extend([
                c.id.as_str().into(),
                c.program_id.as_str().into(),
                partner.as_str().into(),
                weight.to_string().into(),
                weight_total.as_str().into(),
                (*amount).into(),
                to_ms(c.occurred_at).into(),
            ]);
        }
        tx.execute(&sql, args).await.context("inserting credits")?;
    }
    if !supersedes.is_empty() {
        let sql = format!(
            "UPDATE conversions SET status = 'superseded' \
             WHERE program_id = $1 AND external_id IN ({}) AND status = 'pending' RETURNING id",
            placeholders(2, supersedes.len())
        );
        let mut args: Vec<Arg> = vec![c.program_id.as_str().into()];
        args.extend(supersedes.iter().map(Arg::from));
        let superseded = tx
            .fetch(&sql, args)
            .await
            .context("superseding a browser report")?;
        // The browser's report earned commissions on hold; the server's
        // conversion earns them now, so the held ones are voided.
        for row in superseded {
            crate::commissions::void_conversion(
                tx,
                row.text(0)?,
                "superseded by the server's report of the same order",
                c.received_at,
            )
            .await?;
        }
    }
    crate::commissions::accrue_conversion(tx, backend, c, fraud_hold).await?;
    Ok(())
}

/// [`Store::conversion_by_keys`] on the caller's connection.
pub(crate) async fn conversion_by_keys_in(
    db: &mut dyn Db,
    program: &ProgramId,
    external_id: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<Option<Conversion>> {
    if external_id.is_none() && idempotency_key.is_none() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM conversions WHERE program_id = $1 \
         AND (external_id = $2 OR idempotency_key = $3) ORDER BY received_at LIMIT 1"
    );
    let args = vec![
        program.as_str().into(),
        external_id.into(),
        idempotency_key.into(),
    ];
    fetch_optional(db, &sql, args)
        .await
        .context("loading conversion by key")?
        .map(|r| Conversion::try_from(ConversionRow::from_db(&r)?))
        .transpose()
}

/// [`Store::conversion_credits`] on the caller's connection.
pub(crate) async fn credits_in(db: &mut dyn Db, id: &ConversionId) -> Result<Vec<Credit>> {
    let sql = format!(
        "SELECT {CREDIT_COLUMNS} \
         FROM conversion_credits c LEFT JOIN partners p ON p.id = c.partner_id \
         WHERE c.conversion_id = $1 ORDER BY c.amount_minor DESC, c.partner_id"
    );
    db.fetch(&sql, vec![id.as_str().into()])
        .await
        .context("loading credits")?
        .iter()
        .map(|r| Credit::try_from(CreditRow::from_db(r)?))
        .collect()
}
