//! Inbound integrations: what a payment processor, a shop or a CRM tells
//! Tribute by webhook. Each provider's own signature scheme is checked
//! ([`verify`]), then its payload is read into [`Inbound`] actions
//! ([`interpret`]): conversions, refunds, leads and identities seen
//! together. Pure: the server supplies the request, the secret and `now`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::identity::RawIdentifiers;
use crate::money::Currency;
use crate::tracking::Product;
use crate::FieldError;

pub mod generic;
pub mod hubspot;
pub mod shopify;
mod signature;
pub mod stripe;

#[cfg(test)]
mod tests_generic;
#[cfg(test)]
mod tests_hubspot;
#[cfg(test)]
mod tests_shopify;
#[cfg(test)]
mod tests_signature;
#[cfg(test)]
mod tests_stripe;

pub use signature::{verify, InboundRequest, Verified, VerifyError};

/// Which provider an integration receives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationKind {
    Stripe,
    Shopify,
    Hubspot,
    Generic,
}

impl IntegrationKind {
    /// Parse `stripe`, `shopify`, `hubspot` or `generic`; the error names `field`.
    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        Ok(match s {
            "stripe" => Self::Stripe,
            "shopify" => Self::Shopify,
            "hubspot" => Self::Hubspot,
            "generic" => Self::Generic,
            _ => {
                return Err(FieldError::new(
                    field,
                    "must be one of stripe, shopify, hubspot, generic",
                ))
            }
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Shopify => "shopify",
            Self::Hubspot => "hubspot",
            Self::Generic => "generic",
        }
    }
}

/// What one delivery asks Tribute to do. A delivery may carry several
/// (HubSpot batches events), or none that matter ([`Inbound::Ignored`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Conversion(InboundConversion),
    Refund(InboundRefund),
    Lead(InboundLead),
    /// Identifiers the provider vouches belong to one person (a Stripe
    /// customer's id, e-mail and the click id in its metadata), so a later
    /// payment naming only the customer finds the partner.
    Identify(InboundIdentify),
    /// Understood, and nothing to do: the reason says why (an event type
    /// Tribute does not act on, a zero-amount invoice, a deal in another
    /// stage).
    Ignored(String),
}

/// A sale as the provider reported it; the server turns it into a
/// `NewConversion` of the integration's program (verified claim).
#[derive(Debug, Clone)]
pub struct InboundConversion {
    /// The order id Tribute stores: the same id twice is one conversion.
    pub external_id: String,
    /// Other provider ids that name this sale (a Stripe payment intent,
    /// charge, invoice or checkout session), so a later refund or dispute
    /// naming any of them finds it.
    pub refs: Vec<String>,
    /// Value in minor units of `currency`.
    pub value: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
    pub ids: RawIdentifiers,
    /// A Tribute click id (`tid`) found in the payload.
    pub click_id: Option<String>,
    pub coupon: Option<String>,
    pub products: Vec<Product>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// Facts for reward rule conditions (`sale.metadata.*`), e.g. the
    /// provider's metadata and `recurring: true` for a subscription's
    /// later invoice.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Whether money went back by the merchant's choice or by the bank's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundKind {
    Refund,
    Chargeback,
}

/// Money returned on an earlier sale.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRefund {
    /// The provider's id of this refund or dispute: the same id twice is
    /// one refund.
    pub external_id: String,
    /// Ids that may name the sale, in the order to try: an order id or any
    /// of [`InboundConversion::refs`].
    pub of: Vec<String>,
    /// Minor units of `currency`, at least 1.
    pub amount: i64,
    pub currency: String,
    pub kind: RefundKind,
    pub reason: String,
    /// True when `amount` is the total refunded so far on that sale through
    /// this provider rather than one refund's amount (a Stripe charge whose
    /// event does not list its refunds): the server refunds only the
    /// difference with what it has already refunded, so the same total
    /// seen twice refunds nothing more.
    pub cumulative: bool,
}

/// A lead (a sign-up, a new contact) with the identifiers that name them.
#[derive(Debug, Clone)]
pub struct InboundLead {
    /// The provider's id for it: the same id twice is one event.
    pub external_id: String,
    pub ids: RawIdentifiers,
    pub click_id: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Identifiers seen together, vouched for by the provider.
#[derive(Debug, Clone)]
pub struct InboundIdentify {
    pub external_id: String,
    pub ids: RawIdentifiers,
    pub click_id: Option<String>,
}

/// Read a verified delivery's body into what it asks for. `settings` is
/// the integration's `mapping` object (see each provider's module for the
/// keys it reads; the generic provider requires one). `topic` is the
/// `x-shopify-topic` header (Shopify's body does not say what happened;
/// required for Shopify, ignored by the others). A body that cannot be
/// read is an error naming the JSON field at fault.
pub fn interpret(
    kind: IntegrationKind,
    settings: &serde_json::Value,
    topic: Option<&str>,
    body: &[u8],
) -> Result<Vec<Inbound>, FieldError> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| FieldError::new("body", format!("is not JSON: {e}")))?;
    match kind {
        IntegrationKind::Stripe => stripe::interpret(&json),
        IntegrationKind::Shopify => {
            let topic = topic
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    FieldError::new(
                        "x-shopify-topic",
                        "is required: it says what a Shopify delivery is",
                    )
                })?;
            shopify::interpret(settings, topic, &json)
        }
        IntegrationKind::Hubspot => hubspot::interpret(settings, &json),
        IntegrationKind::Generic => generic::interpret(settings, &json),
    }
}

/// Check an integration's `mapping` when the owner saves it, so a bad
/// pointer or an unknown key is a 422 then rather than a failed delivery
/// later. Errors name `mapping.<key>`.
pub fn check_settings(
    kind: IntegrationKind,
    settings: &serde_json::Value,
) -> Result<(), FieldError> {
    match kind {
        IntegrationKind::Stripe => stripe::check_settings(settings),
        IntegrationKind::Shopify => shopify::check_settings(settings),
        IntegrationKind::Hubspot => hubspot::check_settings(settings),
        IntegrationKind::Generic => generic::check_settings(settings),
    }
}

// `RawIdentifiers` has no `PartialEq` (it is an input type), so the
// comparisons tests need are spelled out here.
fn same_ids(a: &RawIdentifiers, b: &RawIdentifiers) -> bool {
    a.anonymous_id == b.anonymous_id
        && a.user_id == b.user_id
        && a.email == b.email
        && a.email_hash == b.email_hash
        && a.customer_id == b.customer_id
        && a.phone == b.phone
        && a.phone_hash == b.phone_hash
}

impl PartialEq for InboundConversion {
    fn eq(&self, o: &Self) -> bool {
        self.external_id == o.external_id
            && self.refs == o.refs
            && self.value == o.value
            && self.currency == o.currency
            && same_ids(&self.ids, &o.ids)
            && self.click_id == o.click_id
            && self.coupon == o.coupon
            && self.products == o.products
            && self.occurred_at == o.occurred_at
            && self.metadata == o.metadata
    }
}

impl PartialEq for InboundLead {
    fn eq(&self, o: &Self) -> bool {
        self.external_id == o.external_id
            && same_ids(&self.ids, &o.ids)
            && self.click_id == o.click_id
            && self.occurred_at == o.occurred_at
    }
}

impl PartialEq for InboundIdentify {
    fn eq(&self, o: &Self) -> bool {
        self.external_id == o.external_id
            && same_ids(&self.ids, &o.ids)
            && self.click_id == o.click_id
    }
}

// ---------------------------------------------------------------------------
// Reading provider JSON: shared by the provider modules.

/// A non-blank string at `v[key]`, trimmed.
fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// An id that may be sent as a string or an integer (Shopify's and
/// HubSpot's ids are numbers).
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// `Some(s)` when `s` is a well-formed Tribute click id. Anything else is
/// dropped rather than refused: a provider retries a failed delivery for
/// days, and a typo in a metadata field must not block a sale.
fn click_id(s: Option<&str>) -> Option<String> {
    let s = s?.trim();
    crate::ids::ClickId::parse(s).ok().map(|_| s.to_owned())
}

/// A currency code at `field`, upper case.
fn currency(field: &str, code: Option<&str>) -> Result<Currency, FieldError> {
    let code = code.ok_or_else(|| FieldError::new(field, "is required"))?;
    Currency::parse(code).map_err(|e| e.at(field))
}

/// An amount in major units (`"12.50"` or `12.5`) into minor units of a
/// currency with `exponent` digits, exactly, checked against the maximum.
fn major_amount(field: &str, v: &Value, exponent: u8) -> Result<i64, FieldError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(FieldError::new(field, "must be an amount")),
    };
    let minor = crate::tracking::parse_decimal_minor(field, &text, exponent)?;
    crate::money::check_amount(field, minor)
}

/// A Unix time in seconds (a number, or digits in a string).
fn unix_seconds(field: &str, v: &Value) -> Result<DateTime<Utc>, FieldError> {
    let secs = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| FieldError::new(field, "must be a Unix time in seconds"))
}

/// An RFC 3339 time such as `2024-03-01T12:00:00-05:00`.
fn rfc3339(field: &str, s: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| FieldError::new(field, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"))
}

/// A sale's metadata: Tribute's own facts (`ours`, which win), then the
/// provider's entries a conversion accepts (see
/// `crate::conversion::parse_metadata`: keys of 1 to 64 characters, plain
/// strings of at most 500 characters, whole numbers, booleans; at most
/// `MAX_METADATA_KEYS`). Others are dropped rather than refused: one odd
/// field the owner cannot change must not fail every delivery.
fn sale_metadata<'a>(
    ours: impl IntoIterator<Item = (&'a str, Value)>,
    theirs: Option<&Value>,
) -> Map<String, Value> {
    use crate::conversion::MAX_METADATA_KEYS;
    let plain = |s: &str| !s.chars().any(crate::text::is_forbidden);
    let mut out: Map<String, Value> = ours.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for (k, v) in theirs.and_then(Value::as_object).into_iter().flatten() {
        let key_ok = (1..=64).contains(&k.chars().count()) && plain(k);
        let value_ok = match v {
            Value::String(s) => s.chars().count() <= 500 && plain(s),
            Value::Number(n) => n.is_i64(),
            Value::Bool(_) => true,
            _ => false,
        };
        if key_ok && value_ok && out.len() < MAX_METADATA_KEYS && !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// The settings object with only `allowed` keys (null is an empty one);
/// errors name `mapping` or `mapping.<key>`.
fn settings_map<'a>(
    settings: &'a Value,
    allowed: &[&str],
) -> Result<Option<&'a Map<String, Value>>, FieldError> {
    let map = match settings {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        _ => return Err(FieldError::new("mapping", "must be an object")),
    };
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let known = if allowed.is_empty() {
            "this provider takes no mapping keys".to_owned()
        } else {
            format!("is not a known key (known: {})", allowed.join(", "))
        };
        return Err(FieldError::new(format!("mapping.{key}"), known));
    }
    Ok(Some(map))
}

/// The `tolerance_seconds` setting: how old a signed delivery may be.
/// An integer from 60 (a minute of clock skew and queueing) to 30 days;
/// `default` when absent or null.
fn tolerance_seconds(settings: &Value, default: i64) -> Result<i64, FieldError> {
    const MAX: i64 = 30 * 24 * 3600;
    match settings.get("tolerance_seconds") {
        None | Some(Value::Null) => Ok(default),
        // A whole number written with a fraction (`60.0`) is read as one.
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .filter(|t| (60..=MAX).contains(t))
            .ok_or_else(|| {
                FieldError::new(
                    "mapping.tolerance_seconds",
                    format!("must be a whole number of seconds from 60 to {MAX}"),
                )
            }),
    }
}
