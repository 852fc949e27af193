//! Links and coupons.

use sqlx::FromRow;
use tribute_core::coupon::{Coupon, CouponCode};
use tribute_core::ids::{CouponId, LinkId, PartnerId, ProgramId};
use tribute_core::link::{Link, ShortCode, Utm};

use crate::{corrupt, from_ms, on_unique, to_ms, Context, Page, Result, Store, StoreError};

/// Which links or coupons to list.
#[derive(Debug, Clone, Default)]
pub struct OwnedFilter {
    pub program_id: Option<ProgramId>,
    pub partner_id: Option<PartnerId>,
}

const CODE_TAKEN: &str = "this code is already taken";

impl Store {
    #[tracing::instrument(skip(self, l), fields(id = %l.id))]
    pub async fn insert_link(&self, l: &Link) -> Result<()> {
        on_unique(
            sqlx::query(&format!(
                "INSERT INTO links ({LINK_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(l.id.as_str())
            .bind(l.program_id.as_str())
            .bind(l.partner_id.as_str())
            .bind(l.code.as_str())
            .bind(&l.destination)
            .bind(l.source.as_deref())
            .bind(l.medium.as_deref())
            .bind(l.campaign.as_deref())
            .bind(l.content.as_deref())
            .bind(l.utm.source.as_deref())
            .bind(l.utm.medium.as_deref())
            .bind(l.utm.campaign.as_deref())
            .bind(l.utm.content.as_deref())
            .bind(l.expires_at.map(to_ms))
            .bind(to_ms(l.created_at))
            .execute(self.pool())
            .await,
            "code",
            CODE_TAKEN,
            "inserting link",
        )?;
        Ok(())
    }

    /// Overwrite a link's mutable fields (program, partner and creation time stay).
    #[tracing::instrument(skip(self, l), fields(id = %l.id))]
    pub async fn update_link(&self, l: &Link) -> Result<()> {
        let done = on_unique(
            sqlx::query(
                "UPDATE links SET code = $2, destination = $3, source = $4, medium = $5, \
                 campaign = $6, content = $7, utm_source = $8, utm_medium = $9, \
                 utm_campaign = $10, utm_content = $11, expires_at = $12 WHERE id = $1",
            )
            .bind(l.id.as_str())
            .bind(l.code.as_str())
            .bind(&l.destination)
            .bind(l.source.as_deref())
            .bind(l.medium.as_deref())
            .bind(l.campaign.as_deref())
            .bind(l.content.as_deref())
            .bind(l.utm.source.as_deref())
            .bind(l.utm.medium.as_deref())
            .bind(l.utm.campaign.as_deref())
            .bind(l.utm.content.as_deref())
            .bind(l.expires_at.map(to_ms))
            .execute(self.pool())
            .await,
            "code",
            CODE_TAKEN,
            "updating link",
        )?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("link"));
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn link(&self, id: &LinkId) -> Result<Option<Link>> {
        sqlx::query_as::<_, LinkRow>(&format!("SELECT {LINK_COLUMNS} FROM links WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .context("loading link")?
            .map(Link::try_from)
            .transpose()
    }

    /// The link behind `/r/{code}`.
    #[tracing::instrument(skip(self))]
    pub async fn link_by_code(&self, code: &str) -> Result<Option<Link>> {
        sqlx::query_as::<_, LinkRow>(&format!("SELECT {LINK_COLUMNS} FROM links WHERE code = $1"))
            .bind(code)
            .fetch_optional(self.pool())
            .await
            .context("loading link by code")?
            .map(Link::try_from)
            .transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn links(&self, filter: &OwnedFilter, page: Page) -> Result<Vec<Link>> {
        sqlx::query_as::<_, LinkRow>(&format!(
            "SELECT {LINK_COLUMNS} FROM links \
             WHERE ($1 IS NULL OR program_id = $1) AND ($2 IS NULL OR partner_id = $2) \
             ORDER BY created_at, id LIMIT $3 OFFSET $4"
        ))
        .bind(filter.program_id.as_ref().map(|p| p.as_str()))
        .bind(filter.partner_id.as_ref().map(|p| p.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing links")?
        .into_iter()
        .map(Link::try_from)
        .collect()
    }

    #[tracing::instrument(skip(self, c), fields(id = %c.id))]
    pub async fn insert_coupon(&self, c: &Coupon) -> Result<()> {
        on_unique(
            sqlx::query(&format!(
                "INSERT INTO coupons ({COUPON_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
            ))
            .bind(c.id.as_str())
            .bind(c.program_id.as_str())
            .bind(c.partner_id.as_str())
            .bind(c.code.as_str())
            .bind(to_ms(c.created_at))
            .execute(self.pool())
            .await,
            "code",
            CODE_TAKEN,
            "inserting coupon",
        )?;
        Ok(())
    }

    #[tracing::instrument(skip(self, c), fields(id = %c.id))]
    pub async fn update_coupon(&self, c: &Coupon) -> Result<()> {
        let done = on_unique(
            sqlx::query("UPDATE coupons SET code = $2, partner_id = $3 WHERE id = $1")
                .bind(c.id.as_str())
                .bind(c.code.as_str())
                .bind(c.partner_id.as_str())
                .execute(self.pool())
                .await,
            "code",
            CODE_TAKEN,
            "updating coupon",
        )?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("coupon"));
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn coupon(&self, id: &CouponId) -> Result<Option<Coupon>> {
        sqlx::query_as::<_, CouponRow>(&format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading coupon")?
        .map(Coupon::try_from)
        .transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn coupon_by_code(
        &self,
        program: &ProgramId,
        code: &CouponCode,
    ) -> Result<Option<Coupon>> {
        sqlx::query_as::<_, CouponRow>(&format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE program_id = $1 AND code = $2"
        ))
        .bind(program.as_str())
        .bind(code.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading coupon by code")?
        .map(Coupon::try_from)
        .transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn coupons(&self, filter: &OwnedFilter, page: Page) -> Result<Vec<Coupon>> {
        sqlx::query_as::<_, CouponRow>(&format!(
            "SELECT {COUPON_COLUMNS} FROM coupons \
             WHERE ($1 IS NULL OR program_id = $1) AND ($2 IS NULL OR partner_id = $2) \
             ORDER BY created_at, id LIMIT $3 OFFSET $4"
        ))
        .bind(filter.program_id.as_ref().map(|p| p.as_str()))
        .bind(filter.partner_id.as_ref().map(|p| p.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await
        .context("listing coupons")?
        .into_iter()
        .map(Coupon::try_from)
        .collect()
    }
}

const LINK_COLUMNS: &str = "id, program_id, partner_id, code, destination, source, \
     medium, campaign, content, utm_source, utm_medium, utm_campaign, utm_content, expires_at, \
     created_at";

#[derive(FromRow)]
struct LinkRow {
    id: String,
    program_id: String,
    partner_id: String,
    code: String,
    destination: String,
    source: Option<String>,
    medium: Option<String>,
    campaign: Option<String>,
    content: Option<String>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_content: Option<String>,
    expires_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<LinkRow> for Link {
    type Error = StoreError;
    fn try_from(r: LinkRow) -> Result<Self> {
        Ok(Link {
            id: LinkId::parse(&r.id).map_err(corrupt("link id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("link program"))?,
            partner_id: PartnerId::parse(&r.partner_id).map_err(corrupt("link partner"))?,
            code: ShortCode::parse(&r.code).map_err(corrupt("link code"))?,
            destination: r.destination,
            source: r.source,
            medium: r.medium,
            campaign: r.campaign,
            content: r.content,
            utm: Utm {
                source: r.utm_source,
                medium: r.utm_medium,
                campaign: r.utm_campaign,
                content: r.utm_content,
            },
            expires_at: r.expires_at.map(from_ms).transpose()?,
            created_at: from_ms(r.created_at)?,
        })
    }
}

const COUPON_COLUMNS: &str = "id, program_id, partner_id, code, created_at";

#[derive(FromRow)]
struct CouponRow {
    id: String,
    program_id: String,
    partner_id: String,
    code: String,
    created_at: i64,
}

impl TryFrom<CouponRow> for Coupon {
    type Error = StoreError;
    fn try_from(r: CouponRow) -> Result<Self> {
        Ok(Coupon {
            id: CouponId::parse(&r.id).map_err(corrupt("coupon id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("coupon program"))?,
            partner_id: PartnerId::parse(&r.partner_id).map_err(corrupt("coupon partner"))?,
            code: CouponCode::parse(&r.code).map_err(corrupt("coupon code"))?,
            created_at: from_ms(r.created_at)?,
        })
    }
}
