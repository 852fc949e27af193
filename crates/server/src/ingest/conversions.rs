//! `POST /api/v1/conversions`: the owner's backend reports a conversion.
//! The body is parsed straight into a `NewConversion` (errors name the
//! body's fields), then recorded by `services::conversions`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tribute_core::conversion::{
    conversion_value, parse_external_id, parse_metadata, reported_currency, reported_status,
    NewConversion, Reporter, MAX_EXTERNAL_ID,
};
use tribute_core::coupon::CouponCode;
use tribute_core::identity::{email_domain, Claim, RawIdentifiers};
use tribute_core::program::Program;
use tribute_core::tracking::{parse_click_id, parse_occurred_at, Product};
use tribute_core::FieldError;

use super::ingest_program;
use crate::http::conversion::ConversionView;
use crate::http::{ApiError, ApiJson, ApiResult, Auth};
use crate::services::conversions::record;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/conversions", post(create))
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
    /// Facts about the sale for reward rule conditions (`sale.metadata.*`;
    /// `country` and `source` are the customer's).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl ConversionInput {
    /// Parse into a conversion of `program`, naming this body's fields.
    pub fn parse(
        self,
        program: &Program,
        now: DateTime<Utc>,
        idempotency_key: Option<String>,
        fingerprint: Option<String>,
    ) -> Result<NewConversion, FieldError> {
        // Another currency than the program's is converted when recorded.
        let currency = reported_currency("currency", &self.currency)?;
        let value = conversion_value("value", self.value, currency)?;
        for (i, p) in self.products.iter().enumerate() {
            p.validate(i)?;
        }
        let coupon = match self.coupon.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(c) => Some(CouponCode::parse(c).map_err(|e| e.at("coupon"))?),
            None => None,
        };
        Ok(NewConversion {
            program_id: program.id.clone(),
            reporter: Reporter::Server,
            order_id: parse_external_id(
                "external_id",
                self.external_id.as_deref(),
                MAX_EXTERNAL_ID,
            )?,
            idempotency_key,
            value,
            status: reported_status("status", Reporter::Server, self.status.as_deref())?,
            email_domain: email_domain(self.email.as_deref()),
            ids: RawIdentifiers {
                anonymous_id: self.anonymous_id,
                user_id: self.user_id,
                email: self.email,
                email_hash: self.email_hash,
                customer_id: self.customer_id,
                phone: self.phone,
                phone_hash: self.phone_hash,
            }
            .parse()?,
            claim: Claim::Verified,
            click_id: parse_click_id("click_id", self.click_id.as_deref())?,
            coupon,
            products: self.products,
            occurred_at: parse_occurred_at("occurred_at", self.occurred_at.as_deref(), now)?,
            fingerprint,
            metadata: parse_metadata("metadata", self.metadata)?,
        })
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
                .filter(|s| tribute_core::text::check_plain_text("Idempotency-Key", s).is_ok())
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

/// A digest of the request as parsed (not its bytes: the same fields in
/// another order or spacing are the same request).
fn fingerprint(value: &serde_json::Value) -> String {
    // serde_json's maps are ordered by key, so this text is canonical.
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// `POST /conversions`: 201 with the conversion; a replay answers the same
/// body with `Idempotent-Replayed: true`.
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Response> {
    // Who may do this comes first, then whether the request is valid; only
    // then is it looked up, so a replay tells nothing to a key that may not
    // write, or to a malformed request.
    let viewer = auth.conversion_writer()?;
    let key = idempotency_key(&headers)?;
    let print = key.as_ref().map(|_| fingerprint(&body));
    let input: ConversionInput = crate::http::extract::from_json_value(body)?;
    let program = ingest_program(&state, &auth.0, input.program_id.as_deref()).await?;
    let new = NewConversion {
        // The owner's backend vouches for its buyer's identifiers.
        claim: Claim::of(&auth.0),
        ..input.parse(&program, Utc::now(), key, print)?
    };
    let recorded = record(&state, program, new).await?;
    let view =
        ConversionView::load_with(&state.store, recorded.conversion, recorded.fresh, &viewer)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a conversion writer sees every conversion it wrote"))?;
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if recorded.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}
