//! `/api/v1/conversions`: record (idempotently), read and list conversions.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use tribute_core::attribution::{attribute, Attribution, TouchKind};
use tribute_core::coupon::CouponCode;
use tribute_core::identity::{click_key, RawIdentifiers};
use tribute_core::ids::{ConversionId, PartnerId};
use tribute_core::money::{Currency, Money};
use tribute_core::program::Program;
use tribute_core::tracking::{Conversion, ConversionStatus, Product};
use tribute_core::FieldError;
use tribute_store::{ConversionFilter, Credit, NewTouch, StoreError};

use super::{ingest_program, parse_click_id, parse_occurred_at};
use crate::api::partners::parse_time;
use crate::api::{parse_partner_filter, restrict_to_own, serde_urlencoded_query, List, Paging};
use crate::attribution::{fit_for, program_model};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversions", get(list).post(create))
        .route("/conversions/{id}", get(show))
}

/// A conversion as the owner's backend sends it.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConversionInput {
    pub program_id: Option<String>,
    /// The order or deal id: the same id twice is one conversion.
    pub external_id: Option<String>,
    /// Value in minor units (cents).
    pub value: i64,
    pub currency: String,
    pub status: Option<String>,
    #[serde(default)]
    pub products: Vec<Product>,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub email_hash: Option<String>,
    pub customer_id: Option<String>,
    pub phone: Option<String>,
    pub phone_hash: Option<String>,
    pub click_id: Option<String>,
    pub coupon: Option<String>,
    pub occurred_at: Option<String>,
}

impl ConversionInput {
    /// Every check a conversion must pass before anything is written,
    /// naming the field at fault (shared by every way a conversion comes in).
    pub fn check(&self, program: &Program) -> Result<(), FieldError> {
        let currency = Currency::parse(&self.currency)?;
        if currency != program.settings.currency {
            return Err(FieldError::new(
                "currency",
                format!(
                    "is {currency} but the program is in {} and no exchange rate is configured",
                    program.settings.currency
                ),
            ));
        }
        if self.value < 0 {
            return Err(FieldError::new(
                "value",
                "must not be negative (refunds reverse a conversion)",
            ));
        }
        for (i, p) in self.products.iter().enumerate() {
            p.validate(i)?;
        }
        if let Some(s) = self.status.as_deref() {
            ConversionStatus::parse(s)?;
        }
        if let Some(c) = self.coupon.as_deref().filter(|c| !c.trim().is_empty()) {
            CouponCode::parse(c).map_err(|e| e.at("coupon"))?;
        }
        parse_click_id("click_id", self.click_id.as_deref())?;
        RawIdentifiers {
            anonymous_id: self.anonymous_id.clone(),
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            email_hash: self.email_hash.clone(),
            customer_id: self.customer_id.clone(),
            phone: self.phone.clone(),
            phone_hash: self.phone_hash.clone(),
        }
        .parse()?;
        Ok(())
    }
}

/// A partner's part of a conversion, as the API shows it.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct PartnerView {
    pub partner_id: String,
    pub slug: String,
    /// Exact share as a fraction `weight/weight_total`.
    pub share: String,
    /// The same share as a number, for display.
    pub share_ratio: f64,
    pub amount: i64,
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
    pub partners: Vec<PartnerView>,
    /// Model, window, touches counted and excluded: admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

fn view(c: Conversion, credits: Vec<Credit>, only: Option<&PartnerId>) -> ConversionView {
    let partners = credits
        .into_iter()
        .filter(|cr| only.is_none_or(|p| p.as_str() == cr.partner_id))
        .map(|cr| {
            let w: f64 = cr.weight.parse().unwrap_or(0.0);
            let t: f64 = cr.weight_total.parse().unwrap_or(1.0);
            PartnerView {
                share: format!("{}/{}", cr.weight, cr.weight_total),
                share_ratio: if t > 0.0 { w / t } else { 0.0 },
                partner_id: cr.partner_id,
                slug: cr.slug,
                amount: cr.amount_minor,
            }
        })
        .collect();
    let admin = only.is_none();
    ConversionView {
        id: c.id,
        program_id: c.program_id.to_string(),
        external_id: c.external_id,
        status: c.status,
        value: c.value.minor,
        currency: c.value.currency,
        products: c.products,
        click_id: c.click_id,
        coupon: c.coupon,
        occurred_at: c.occurred_at,
        received_at: c.received_at,
        partners,
        summary: admin.then(|| c.attribution.summary()),
        attribution: admin.then_some(c.attribution),
    }
}

pub async fn load_view(
    state: &AppState,
    c: Conversion,
    only: Option<&PartnerId>,
) -> ApiResult<ConversionView> {
    let credits = state.store.conversion_credits(&c.id).await?;
    Ok(view(c, credits, only))
}

/// Record a conversion: validate, find the person and their touches,
/// attribute with the program's model, commit, and only then answer.
/// Returns the view and whether it was a replay of an earlier request.
pub async fn record(
    state: &AppState,
    program: &Program,
    input: ConversionInput,
    idempotency_key: Option<String>,
) -> ApiResult<(ConversionView, bool)> {
    // Times are stored to the millisecond: the first answer must show what a
    // replay will read back, or the two bodies differ.
    let now = Utc::now().trunc_subsecs(3);
    let external_id = match input.external_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) if s.len() > 200 => {
            return Err(FieldError::new("external_id", "must be at most 200 characters").into())
        }
        Some(s) => Some(s.to_owned()),
    };
    if let Some(existing) = state
        .store
        .conversion_by_keys(
            &program.id,
            external_id.as_deref(),
            idempotency_key.as_deref(),
        )
        .await?
    {
        return Ok((load_view(state, existing, None).await?, true));
    }
    input.check(program)?;
    let currency = program.settings.currency;
    let status = input
        .status
        .as_deref()
        .map(ConversionStatus::parse)
        .transpose()?
        .unwrap_or(ConversionStatus::Approved);
    let ids = RawIdentifiers {
        anonymous_id: input.anonymous_id,
        user_id: input.user_id,
        email: input.email,
        email_hash: input.email_hash,
        customer_id: input.customer_id,
        phone: input.phone,
        phone_hash: input.phone_hash,
    }
    .parse()?;
    let click_id = parse_click_id("click_id", input.click_id.as_deref())?;
    let occurred_at =
        parse_occurred_at("occurred_at", input.occurred_at.as_deref(), now)?.trunc_subsecs(3);
    let id = ConversionId::generate();
    // A retried request must not leave a second coupon touch: its id derives
    // from what makes the request idempotent.
    let touch_key = external_id
        .clone()
        .or_else(|| idempotency_key.clone())
        .unwrap_or_else(|| id.to_string());
    let mut extra = Vec::new();
    let coupon = match input.coupon.as_deref().filter(|c| !c.trim().is_empty()) {
        None => None,
        Some(code) => {
            let code = CouponCode::parse(code).map_err(|e| e.at("coupon"))?;
            if let Some(c) = state.store.coupon_by_code(&program.id, &code).await? {
                extra.push(NewTouch {
                    id: format!("coupon:{}:{touch_key}", program.id),
                    partner_id: c.partner_id,
                    kind: TouchKind::Coupon,
                    at: occurred_at,
                    is_bot: false,
                });
            }
            Some(code.as_str().to_owned())
        }
    };
    // Everything that can refuse the request comes before the identity
    // graph changes: bad input changes nothing.
    let cfg = program_model(program)?;
    let fit = fit_for(state, &program.id, &cfg, true).await?;
    let mut keys = Vec::new();
    if let Some(c) = &click_id {
        keys.push(click_key(c));
    }
    keys.extend(ids.keys());
    let (person, touches) = state
        .store
        .resolve_journey(&program.id, keys, click_id.as_deref(), extra)
        .await?;
    let attribution = attribute(&touches, occurred_at, &cfg, fit.as_ref())?;
    let conversion = Conversion {
        id,
        program_id: program.id.clone(),
        external_id,
        idempotency_key,
        person_id: Some(person),
        status,
        value: Money::new(input.value, currency),
        products: input.products,
        click_id,
        coupon,
        occurred_at,
        received_at: now,
        attribution,
    };
    match state.store.insert_conversion(&conversion).await {
        Ok(()) => Ok((load_view(state, conversion, None).await?, false)),
        // Another request with the same key committed first: answer with it.
        Err(StoreError::Conflict { .. }) => {
            let first = state
                .store
                .conversion_by_keys(
                    &program.id,
                    conversion.external_id.as_deref(),
                    conversion.idempotency_key.as_deref(),
                )
                .await?
                .ok_or_else(|| anyhow::anyhow!("conflicting conversion vanished"))?;
            Ok((load_view(state, first, None).await?, true))
        }
        Err(e) => Err(e.into()),
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 200)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        Some("Idempotency-Key".to_owned()),
                        "must be 1 to 200 visible characters",
                    )
                })?;
            Ok(Some(s.to_owned()))
        }
    }
}

/// `POST /conversions`: 201 with the conversion; a replay answers the same
/// body with `Idempotent-Replayed: true`.
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ConversionInput>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let program = ingest_program(&state, &auth.0, input.program_id.as_deref()).await?;
    let (view, replayed) = record(&state, &program, input, key).await?;
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Who may read conversions: admins all; a partner only those credited to them.
fn reader(auth: &Auth) -> ApiResult<Option<PartnerId>> {
    Ok(auth.partner_scope()?.map(|(p, _)| p.clone()))
}

async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversionView>> {
    let only = reader(&auth)?;
    let id = ConversionId::parse(&id).map_err(|_| ApiError::NotFound("conversion"))?;
    let c = state
        .store
        .conversion(&id)
        .await?
        .ok_or(ApiError::NotFound("conversion"))?;
    let v = load_view(&state, c, only.as_ref()).await?;
    if only.is_some() && v.partners.is_empty() {
        return Err(ApiError::NotFound("conversion"));
    }
    Ok(Json(v))
}

#[derive(Deserialize)]
struct ListQuery {
    program_id: Option<String>,
    partner_id: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[allow(dead_code)]
    limit: Option<String>,
    #[allow(dead_code)]
    offset: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<ConversionView>>> {
    let only = reader(&auth)?;
    let q: ListQuery = serde_urlencoded_query(q.as_deref())?;
    let mut filter = ConversionFilter {
        program_id: q
            .program_id
            .as_deref()
            .map(|p| tribute_core::ids::ProgramId::parse(p).map_err(|e| e.at("program_id")))
            .transpose()?,
        partner_id: parse_partner_filter(q.partner_id.as_deref())?,
        status: q
            .status
            .as_deref()
            .map(ConversionStatus::parse)
            .transpose()?,
        from: q
            .from
            .as_deref()
            .map(|s| parse_time("from", s))
            .transpose()?,
        to: q.to.as_deref().map(|s| parse_time("to", s)).transpose()?,
    };
    restrict_to_own(&mut filter.partner_id, only.as_ref())?;
    let rows = state.store.conversions(&filter, page).await?;
    let ids: Vec<ConversionId> = rows.iter().map(|c| c.id.clone()).collect();
    // One query for every listed conversion's credits, not one per row.
    let mut credits = state.store.conversion_credits_of(&ids).await?;
    let views = rows
        .into_iter()
        .map(|c| {
            let mine = credits.remove(c.id.as_str()).unwrap_or_default();
            view(c, mine, only.as_ref())
        })
        .collect();
    Ok(Json(List::from_overfetch(views, page)))
}
