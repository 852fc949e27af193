//! Row structs as the database returns them, and their conversion into
//! domain values. A value that no longer parses is reported as corrupt.

use sqlx::FromRow;
use tribute_core::apikey::Scope;
use tribute_core::coupon::{Coupon, CouponCode};
use tribute_core::ids::{ApiKeyId, CouponId, LinkId, PartnerId, ProgramId};
use tribute_core::link::{Link, ShortCode, Utm};
use tribute_core::money::Currency;
use tribute_core::partner::{Email, Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};

use crate::keys::ApiKey;
use crate::{corrupt, from_ms, Result, StoreError};

pub(crate) const PROGRAM_COLUMNS: &str = "id, name, currency, allowed_domains, default_model, \
     window_days, cookie_days, hold_days, created_at";

#[derive(FromRow)]
pub(crate) struct ProgramRow {
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
                    .map(|d| AllowedDomain::parse(d))
                    .collect::<Result<_, _>>()
                    .map_err(corrupt("program allowed_domains"))?,
                default_model: r.default_model,
                window_days: r.window_days,
                cookie_days: r.cookie_days,
                hold_days: r.hold_days,
            },
            created_at: from_ms(r.created_at)?,
        })
    }
}

pub(crate) const PARTNER_COLUMNS: &str =
    "id, program_id, slug, name, email, status, tier, group_name, team_lead_id, created_at";

#[derive(FromRow)]
pub(crate) struct PartnerRow {
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

pub(crate) const LINK_COLUMNS: &str = "id, program_id, partner_id, code, destination, source, \
     medium, campaign, content, utm_source, utm_medium, utm_campaign, utm_content, expires_at, \
     created_at";

#[derive(FromRow)]
pub(crate) struct LinkRow {
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

pub(crate) const COUPON_COLUMNS: &str = "id, program_id, partner_id, code, created_at";

#[derive(FromRow)]
pub(crate) struct CouponRow {
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

/// The key of a user agent in `user_agents`: a fixed-key SipHash, the same
/// on every node and in every version.
pub(crate) fn ua_id(user_agent: &str) -> i64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x7472_6962, 0x7561);
    h.write(user_agent.as_bytes());
    h.finish() as i64
}

pub(crate) const KEY_COLUMNS: &str = "id, scope, partner_id, program_id, name, created_at";

#[derive(FromRow)]
pub(crate) struct ApiKeyRow {
    id: String,
    scope: String,
    partner_id: Option<String>,
    program_id: Option<String>,
    name: Option<String>,
    created_at: i64,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<Self> {
        Ok(ApiKey {
            id: ApiKeyId::parse(&r.id).map_err(corrupt("key id"))?,
            scope: Scope::parse(&r.scope).map_err(corrupt("key scope"))?,
            partner_id: r
                .partner_id
                .as_deref()
                .map(PartnerId::parse)
                .transpose()
                .map_err(corrupt("key partner"))?,
            program_id: r
                .program_id
                .as_deref()
                .map(ProgramId::parse)
                .transpose()
                .map_err(corrupt("key program"))?,
            name: r.name,
            created_at: from_ms(r.created_at)?,
        })
    }
}
