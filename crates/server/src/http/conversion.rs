//! How a conversion is shown, by who is asking: an admin, or the owner's
//! backend that reported it (a secret ingest key), sees everything, its
//! attribution explained; a partner sees only its own part, and no other
//! partner's identifiers (their coupon, their click).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tribute_core::attribution::Attribution;
use tribute_core::fraud::Reason;
use tribute_core::fx::Converted;
use tribute_core::ids::{ConversionId, PartnerId};
use tribute_core::money::Currency;
use tribute_core::tracking::{Conversion, ConversionStatus, Product};
use tribute_store::{Credit, Store, StoredRisk};

use super::error::ApiResult;

/// Who a conversion is shown to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// An admin, or the owner's backend (a secret ingest key).
    Owner,
    Partner(PartnerId),
}

/// A partner's part of a conversion, as the API shows it.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct PartnerPart {
    pub partner_id: String,
    pub slug: String,
    /// Exact share as a fraction `weight/weight_total`.
    pub share: String,
    /// The same share as a number, for display.
    pub share_ratio: f64,
    pub amount: i64,
}

/// A conversion reported in another currency than the program's: the
/// amount as reported and the owner's rate it was converted with (its
/// `value` and `currency` are the program's).
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct FxView {
    pub original_value: i64,
    pub original_currency: Currency,
    /// One unit of the original currency in the program's, exact, as text.
    pub rate: String,
    /// When the rate used took effect.
    pub rate_effective_at: DateTime<Utc>,
}

impl From<Converted> for FxView {
    fn from(c: Converted) -> Self {
        Self {
            original_value: c.original.minor,
            original_currency: c.original.currency,
            rate: c.rate.to_string(),
            rate_effective_at: c.rate_effective_at,
        }
    }
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct ConversionView {
    pub id: ConversionId,
    pub program_id: String,
    pub external_id: Option<String>,
    pub status: ConversionStatus,
    pub value: i64,
    pub currency: Currency,
    pub products: Vec<Product>,
    pub click_id: Option<String>,
    pub coupon: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub partners: Vec<PartnerPart>,
    /// Set when the conversion came in another currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fx: Option<FxView>,
    /// Model, window, touches counted and excluded: admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The fraud score and its reasons: admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskView>,
    /// `under_review` while the conversion's commissions are held for the
    /// owner's review: what a partner sees instead of the reasons, which
    /// would teach the fraud.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<&'static str>,
}

/// What recording a conversion wrote beside it: its partners' credits
/// and its fraud risk (`None`: not scored).
#[derive(Debug)]
pub struct Fresh {
    pub credits: Vec<Credit>,
    pub risk: Option<StoredRisk>,
}

/// A conversion's fraud score as its owner sees it.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct RiskView {
    /// 0 to 100.
    pub score: u8,
    /// Strongest first: the rule, the evidence, what it added.
    pub reasons: Vec<Reason>,
    /// `none` (never held), `held`, `approved` or `rejected`.
    pub review: String,
}

fn part(cr: Credit) -> PartnerPart {
    PartnerPart {
        share: format!("{}/{}", cr.weight, cr.weight_total),
        share_ratio: cr.share_ratio(),
        partner_id: cr.partner_id,
        slug: cr.slug,
        amount: cr.amount_minor,
    }
}

impl ConversionView {
    /// The view of `c` with its `credits` for `viewer`. For a partner,
    /// `own_coupon` and `own_click` say whether the conversion's coupon and
    /// click are the partner's own (otherwise they are another partner's
    /// identifiers and are left out). `None` when a partner has no part.
    pub fn new(
        c: Conversion,
        credits: Vec<Credit>,
        viewer: &Viewer,
        own_coupon: bool,
        own_click: bool,
        risk: Option<StoredRisk>,
    ) -> Option<Self> {
        let partners: Vec<PartnerPart> = credits
            .into_iter()
            .filter(|cr| match viewer {
                Viewer::Partner(p) => p.as_str() == cr.partner_id,
                _ => true,
            })
            .map(part)
            .collect();
        let partner = matches!(viewer, Viewer::Partner(_));
        if partner && partners.is_empty() {
            return None;
        }
        let admin = *viewer == Viewer::Owner;
        Some(Self {
            id: c.id,
            program_id: c.program_id.to_string(),
            external_id: c.external_id,
            status: c.status,
            value: c.value.minor,
            currency: c.value.currency,
            products: c.products,
            click_id: c.click_id.filter(|_| !partner || own_click),
            coupon: c.coupon.filter(|_| !partner || own_coupon),
            occurred_at: c.occurred_at,
            received_at: c.received_at,
            partners,
            fx: c.fx.map(FxView::from),
            summary: admin.then(|| c.attribution.summary()),
            attribution: admin.then_some(c.attribution),
            review: risk
                .as_ref()
                .filter(|r| partner && r.review == "held")
                .map(|_| "under_review"),
            risk: risk.filter(|_| admin).map(|r| RiskView {
                score: r.score,
                reasons: r.reasons,
                review: r.review,
            }),
        })
    }

    /// Load `c`'s credits and show it to `viewer` (`None`: not theirs).
    pub async fn load(store: &Store, c: Conversion, viewer: &Viewer) -> ApiResult<Option<Self>> {
        Self::load_with(store, c, None, viewer).await
    }

    /// [`ConversionView::load`], with the credits and risk when the caller
    /// has them already (a conversion just written is answered with them
    /// as written, without reading them back).
    pub async fn load_with(
        store: &Store,
        c: Conversion,
        fresh: Option<Fresh>,
        viewer: &Viewer,
    ) -> ApiResult<Option<Self>> {
        let Fresh { credits, risk } = match fresh {
            Some(fresh) => fresh,
            None => Fresh {
                credits: store.conversion_credits(&c.id).await?,
                risk: store.conversion_risk(&c.id).await?,
            },
        };
        let (own_coupon, own_click) = ownership(store, &c, viewer).await?;
        Ok(Self::new(c, credits, viewer, own_coupon, own_click, risk))
    }
}

/// Whether `c`'s coupon and click belong to the partner viewing it.
pub async fn ownership(store: &Store, c: &Conversion, viewer: &Viewer) -> ApiResult<(bool, bool)> {
    let Viewer::Partner(me) = viewer else {
        return Ok((true, true));
    };
    let own_coupon = match c.coupon.as_deref() {
        None => false,
        Some(code) => match tribute_core::coupon::CouponCode::parse(code) {
            Ok(code) => store
                .coupon_by_code(&c.program_id, &code)
                .await?
                .is_some_and(|k| &k.partner_id == me),
            Err(_) => false,
        },
    };
    let own_click = match c.click_id.as_deref() {
        None => false,
        Some(id) => match tribute_core::ids::ClickId::parse(id) {
            Ok(id) => store.click_partner(&id).await?.as_ref() == Some(me),
            Err(_) => false,
        },
    };
    Ok((own_coupon, own_click))
}
