//! Partners.

use sqlx::FromRow;
use tribute_core::commission::TierChange;
use tribute_core::ids::{PartnerId, ProgramId};
use tribute_core::partner::{Email, Partner, PartnerStatus, Slug};

use crate::outbox::{emit, Pending};
use crate::tiers::{insert_tier_change, StoredTierChange};
use crate::{corrupt, from_ms, on_unique, to_ms, Context, Page, Result, Store, StoreError};
use tribute_core::webhook::{EventKind, PartnerData};

/// Which partners to list.
#[derive(Debug, Clone, Default)]
pub struct PartnerFilter {
    pub program_id: Option<ProgramId>,
    /// Only this partner (how a partner key sees the list).
    pub only: Option<PartnerId>,
}

impl Store {
    #[tracing::instrument(skip(self, p), fields(id = %p.id))]
    pub async fn insert_partner(&self, p: &Partner) -> Result<()> {
        let mut tx = self
            .begin_write()
            .await
            .context("starting partner insert")?;
        on_unique(
            sqlx::query(&format!(
                "INSERT INTO partners ({PARTNER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(p.id.as_str())
            .bind(p.program_id.as_str())
            .bind(p.slug.as_str())
            .bind(&p.name)
            .bind(p.email.as_ref().map(|e| e.as_str()))
            .bind(p.status.as_str())
            .bind(p.tier.as_deref())
            .bind(p.group.as_deref())
            .bind(p.team_lead_id.as_ref().map(|t| t.as_str()))
            .bind(to_ms(p.created_at))
            .bind(p.payout_email.as_ref().map(|e| e.as_str()))
            .execute(&mut *tx)
            .await,
            "slug",
            "a partner with this slug already exists in the program",
            "inserting partner",
        )?;
        let data = PartnerData {
            id: p.id.to_string(),
            program_id: p.program_id.to_string(),
            slug: p.slug.as_str().to_owned(),
            name: p.name.clone(),
            status: p.status.as_str().to_owned(),
        };
        emit(&mut tx, &p.program_id, p.created_at, |_| {
            vec![Pending::shared(EventKind::PartnerCreated, &data.id, &data)]
        })
        .await?;
        tx.commit().await.context("committing partner insert")?;
        Ok(())
    }

    /// Overwrite a partner's mutable fields (program and creation time
    /// stay). A tier set by hand is recorded among the partner's tier
    /// changes, as the evaluator's are, in the same transaction.
    #[tracing::instrument(skip(self, p), fields(id = %p.id))]
    pub async fn update_partner(&self, p: &Partner) -> Result<()> {
        let mut tx = self
            .begin_write()
            .await
            .context("starting partner update")?;
        let before: Option<(Option<String>,)> =
            sqlx::query_as("SELECT tier FROM partners WHERE id = $1")
                .bind(p.id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .context("reading the partner's tier")?;
        let Some((tier_before,)) = before else {
            return Err(StoreError::NotFound("partner"));
        };
        let done = on_unique(
            sqlx::query(
                "UPDATE partners SET slug = $2, name = $3, email = $4, status = $5, tier = $6, \
                 group_name = $7, team_lead_id = $8, payout_email = $9 WHERE id = $1",
            )
            .bind(p.id.as_str())
            .bind(p.slug.as_str())
            .bind(&p.name)
            .bind(p.email.as_ref().map(|e| e.as_str()))
            .bind(p.status.as_str())
            .bind(p.tier.as_deref())
            .bind(p.group.as_deref())
            .bind(p.team_lead_id.as_ref().map(|t| t.as_str()))
            .bind(p.payout_email.as_ref().map(|e| e.as_str()))
            .execute(&mut *tx)
            .await,
            "slug",
            "a partner with this slug already exists in the program",
            "updating partner",
        )?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("partner"));
        }
        if tier_before != p.tier {
            let change = TierChange {
                from: tier_before,
                to: p.tier.clone(),
                reason: "set by the program's owner".to_owned(),
            };
            let c = StoredTierChange::new(
                p.program_id.clone(),
                p.id.clone(),
                change,
                chrono::Utc::now(),
            );
            insert_tier_change(&mut tx, &c).await?;
        }
        tx.commit().await.context("committing partner update")?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>> {
        sqlx::query_as::<_, PartnerRow>(&format!(
            "SELECT {PARTNER_COLUMNS} FROM partners WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading partner")?
        .map(Partner::try_from)
        .transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn partner_by_slug(
        &self,
        program: &ProgramId,
        slug: &Slug,
    ) -> Result<Option<Partner>> {
        sqlx::query_as::<_, PartnerRow>(&format!(
            "SELECT {PARTNER_COLUMNS} FROM partners WHERE program_id = $1 AND slug = $2"
        ))
        .bind(program.as_str())
        .bind(slug.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading partner by slug")?
        .map(Partner::try_from)
        .transpose()
    }

    /// Every partner with this slug, across programs (for the CLI's `--partner SLUG`).
    #[tracing::instrument(skip(self))]
    pub async fn partners_by_slug(&self, slug: &Slug) -> Result<Vec<Partner>> {
        sqlx::query_as::<_, PartnerRow>(&format!(
            "SELECT {PARTNER_COLUMNS} FROM partners WHERE slug = $1 ORDER BY created_at, id"
        ))
        .bind(slug.as_str())
        .fetch_all(self.pool())
        .await
        .context("loading partners by slug")?
        .into_iter()
        .map(Partner::try_from)
        .collect()
    }

    #[tracing::instrument(skip(self))]
    pub async fn partners(&self, filter: &PartnerFilter, page: Page) -> Result<Vec<Partner>> {
        sqlx::query_as::<_, PartnerRow>(&format!(
            "SELECT {PARTNER_COLUMNS} FROM partners \
             WHERE ($1 IS NULL OR program_id = $1) AND ($2 IS NULL OR id = $2) \
             ORDER BY created_at, id LIMIT $3 OFFSET $4"
        ))
        .bind(filter.program_id.as_ref().map(|p| p.as_str()))
        .bind(filter.only.as_ref().map(|p| p.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing partners")?
        .into_iter()
        .map(Partner::try_from)
        .collect()
    }
}

const PARTNER_COLUMNS: &str = "id, program_id, slug, name, email, status, tier, group_name, \
     team_lead_id, created_at, payout_email";

#[derive(FromRow)]
struct PartnerRow {
    id: String,
    program_id: String,
    slug: String,
    name: String,
    email: Option<String>,
    status: String,
    tier: Option<String>,
    group_name: Option<String>,
    team_lead_id: Option<String>,
    created_at: i64,
    payout_email: Option<String>,
}

impl TryFrom<PartnerRow> for Partner {
    type Error = StoreError;
    fn try_from(r: PartnerRow) -> Result<Self> {
        Ok(Partner {
            id: PartnerId::parse(&r.id).map_err(corrupt("partner id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("partner program"))?,
            slug: Slug::parse(&r.slug).map_err(corrupt("partner slug"))?,
            name: r.name,
            email: r
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(corrupt("partner email"))?,
            payout_email: r
                .payout_email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(corrupt("partner payout_email"))?,
            status: PartnerStatus::parse(&r.status).map_err(corrupt("partner status"))?,
            tier: r.tier,
            group: r.group_name,
            team_lead_id: r
                .team_lead_id
                .as_deref()
                .map(PartnerId::parse)
                .transpose()
                .map_err(corrupt("partner team lead"))?,
            created_at: from_ms(r.created_at)?,
        })
    }
}
