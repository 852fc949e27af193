//! Reading payout batches: one or a page of them with their items (a
//! partner sees only its own item), and a batch as the rows of its export
//! files (`tribute_core::payout::export` writes them).

use sqlx::FromRow;
use tribute_core::ids::{PartnerId, PayoutId};
use tribute_core::money::{Currency, Money};
use tribute_core::payout::PayoutItem;

use crate::payouts::{items_of, PayoutFilter, PayoutRow, StoredPayout, PAYOUT_COLUMNS};
use crate::{corrupt, Context, Page, Result, Store};

/// A partner paid by a batch, with what its export row needs.
#[derive(FromRow)]
struct RecipientRow {
    partner_id: String,
    amount: i64,
    slug: String,
    name: String,
    email: Option<String>,
    payout_email: Option<String>,
}

impl Store {
    /// One batch with its items (only `partner`'s, when given: a batch not
    /// paying it is not found).
    #[tracing::instrument(skip(self))]
    pub async fn payout(
        &self,
        id: &PayoutId,
        partner: Option<&PartnerId>,
    ) -> Result<Option<StoredPayout>> {
        let filter = PayoutFilter {
            partner_id: partner.cloned(),
            ..Default::default()
        };
        Ok(self
            .payouts_where(&filter, Some(id), Page::default())
            .await?
            .pop())
    }

    /// Batches newest first, with their items.
    #[tracing::instrument(skip(self))]
    pub async fn payouts(&self, filter: &PayoutFilter, page: Page) -> Result<Vec<StoredPayout>> {
        self.payouts_where(filter, None, page).await
    }

    async fn payouts_where(
        &self,
        f: &PayoutFilter,
        id: Option<&PayoutId>,
        page: Page,
    ) -> Result<Vec<StoredPayout>> {
        let mut conn = self.pool().acquire().await.context("listing payouts")?;
        let rows: Vec<PayoutRow> = sqlx::query_as(&format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE ($1 IS NULL OR program_id = $1) \
             AND ($2 IS NULL OR id IN (SELECT payout_id FROM payout_items WHERE partner_id = $2)) \
             AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id = $4) \
             ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(f.program_id.as_ref().map(|p| p.as_str()))
        .bind(f.partner_id.as_ref().map(|p| p.as_str()))
        .bind(f.status.as_deref())
        .bind(id.map(|i| i.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&mut *conn)
        .await
        .context("listing payouts")?;
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let only = f.partner_id.as_ref().map(|p| p.as_str());
        let mut items = items_of(&mut conn, &ids, only).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mine = items.remove(&row.id).unwrap_or_default();
            out.push(row.into_payout(mine, only.is_some())?);
        }
        Ok(out)
    }

    /// A batch as the rows of its export files: each partner with its name,
    /// payout e-mail (else its e-mail) and amount, by slug; the reference
    /// is the batch id and the slug.
    #[tracing::instrument(skip(self))]
    pub async fn payout_export_items(
        &self,
        id: &PayoutId,
    ) -> Result<Option<(StoredPayout, Vec<PayoutItem>)>> {
        let Some(payout) = self.payout(id, None).await? else {
            return Ok(None);
        };
        let currency = Currency::parse(&payout.currency).map_err(corrupt("payout currency"))?;
        let rows: Vec<RecipientRow> = sqlx::query_as(
            "SELECT i.partner_id, i.amount, p.slug, p.name, p.email, p.payout_email \
                 FROM payout_items i JOIN partners p ON p.id = i.partner_id \
                 WHERE i.payout_id = $1 ORDER BY p.slug, i.partner_id",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await
        .context("loading a payout's recipients")?;
        let note = format!(
            "Commissions payable until {}",
            payout.until.format("%Y-%m-%d")
        );
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(PayoutItem {
                    partner_id: PartnerId::parse(&r.partner_id)
                        .map_err(corrupt("payout partner"))?,
                    name: r.name,
                    email: r.payout_email.or(r.email),
                    amount: Money::new(r.amount, currency),
                    reference: format!("{} {}", payout.id, r.slug),
                    note: note.clone(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some((payout, items)))
    }
}
