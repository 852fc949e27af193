//! Tracking: event types, conversions as received, and a program's tracking
//! settings (consent, snippet cookie, which named events are leads or
//! conversions).

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PageView,
    Lead,
    DemoRequest,
    Signup,
    /// An identify or alias call: identifiers seen together, nothing else.
    Identify,
    Custom,
}

impl EventType {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Ok(match s {
            "page_view" => Self::PageView,
            "lead" => Self::Lead,
            "demo_request" => Self::DemoRequest,
            "signup" => Self::Signup,
            "identify" => Self::Identify,
            "custom" => Self::Custom,
            _ => {
                return Err(FieldError::new(
                    "type",
                    "must be one of page_view, lead, demo_request, signup, identify, custom",
                ))
            }
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PageView => "page_view",
            Self::Lead => "lead",
            Self::DemoRequest => "demo_request",
            Self::Signup => "signup",
            Self::Identify => "identify",
            Self::Custom => "custom",
        }
    }

    /// Lead-like events: at most one per partner and person counts.
    pub fn is_lead(&self) -> bool {
        matches!(self, Self::Lead | Self::Signup | Self::DemoRequest)
    }
}

/// A conversion's state as the owner's systems report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionStatus {
    Pending,
    Approved,
    Rejected,
    /// A browser's report of an order that the owner's backend reported
    /// too: the server's conversion is the one that counts.
    Superseded,
}

impl ConversionStatus {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "rejected" => Ok(Self::Rejected),
            "superseded" => Ok(Self::Superseded),
            _ => Err(FieldError::new(
                "status",
                "must be one of pending, approved, rejected, superseded",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Superseded => "superseded",
        }
    }
}

/// A line of a conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub sku: String,
    #[serde(default = "one")]
    pub quantity: i64,
    /// Line amount in minor units.
    pub amount: i64,
}

fn one() -> i64 {
    1
}

impl Product {
    pub fn validate(&self, index: usize) -> Result<(), FieldError> {
        let at = |f: &str| format!("products[{index}].{f}");
        if self.sku.trim().is_empty() || self.sku.chars().count() > 200 {
            return Err(FieldError::new(at("sku"), "must be 1 to 200 characters"));
        }
        crate::text::check_plain_text(&at("sku"), &self.sku)?;
        if self.quantity < 1 {
            return Err(FieldError::new(at("quantity"), "must be at least 1"));
        }
        crate::money::check_amount(&at("amount"), self.amount)?;
        Ok(())
    }
}

/// When nothing may be stored or sent by the snippet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Track unless the visitor opts out (`tribute.consent(false)`).
    #[default]
    OptOut,
    /// Nothing is stored or sent until `tribute.consent(true)`.
    OptIn,
}

/// A program's tracking settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingSettings {
    pub consent: ConsentMode,
    /// Treat a browser's Do Not Track signal as a refusal.
    pub honor_dnt: bool,
    /// Treat Global Privacy Control as a refusal.
    pub honor_gpc: bool,
    /// Cookie domain for the snippet (e.g. `.example.com` for subdomains);
    /// none: the current host only.
    pub cookie_domain: Option<String>,
    /// Keep e-mail addresses in clear besides their hash (off by default).
    pub store_email: bool,
    /// Track event names that are leads (Segment `track`, `tribute.track`).
    pub lead_events: Vec<String>,
    /// Track event names that are conversions (with `revenue`/`total`, `currency`).
    pub conversion_events: Vec<String>,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        Self {
            consent: ConsentMode::OptOut,
            honor_dnt: true,
            honor_gpc: true,
            cookie_domain: None,
            store_email: false,
            lead_events: vec!["Signed Up".into(), "Lead Created".into()],
            conversion_events: vec!["Order Completed".into()],
        }
    }
}

/// What a named track event means for attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackMeaning {
    Lead,
    Conversion,
    Custom,
}

impl TrackingSettings {
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(d) = &self.cookie_domain {
            let bare = d.trim_start_matches('.');
            let domain =
                crate::program::AllowedDomain::parse(bare).map_err(|e| e.at("cookie_domain"))?;
            if domain.port().is_some() {
                return Err(FieldError::new(
                    "cookie_domain",
                    "a cookie domain has no port",
                ));
            }
        }
        for (field, list) in [
            ("lead_events", &self.lead_events),
            ("conversion_events", &self.conversion_events),
        ] {
            if list
                .iter()
                .any(|n| n.trim().is_empty() || n.chars().count() > 200)
            {
                return Err(FieldError::new(
                    field,
                    "event names must be 1 to 200 characters",
                ));
            }
            for n in list {
                crate::text::check_plain_text(field, n)?;
            }
        }
        Ok(())
    }

    /// Map a track event name: conversions first, then leads (exact match).
    pub fn meaning(&self, event_name: &str) -> TrackMeaning {
        if self.conversion_events.iter().any(|n| n == event_name) {
            TrackMeaning::Conversion
        } else if self.lead_events.iter().any(|n| n == event_name) {
            TrackMeaning::Lead
        } else {
            TrackMeaning::Custom
        }
    }
}

/// When something happened: now if not given; never more than five minutes
/// in the future (clock skew), never before 2000.
pub fn parse_occurred_at(
    field: &str,
    v: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, FieldError> {
    let Some(s) = v else { return Ok(now) };
    let at = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|_| FieldError::new(field, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"))?
        .with_timezone(&chrono::Utc);
    if at > now + chrono::Duration::minutes(5) {
        return Err(FieldError::new(field, "is in the future"));
    }
    if at.timestamp() < 946_684_800 {
        return Err(FieldError::new(field, "is before the year 2000"));
    }
    Ok(at)
}

/// A click id as reported: blank is none; an unknown but well-formed id
/// simply matches nothing.
pub fn parse_click_id(
    field: &str,
    v: Option<&str>,
) -> Result<Option<crate::ids::ClickId>, FieldError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => crate::ids::ClickId::parse(s)
            .map(Some)
            .map_err(|_| FieldError::new(field, "is not a click id (clk_…)")),
    }
}

/// Parse a decimal amount (`"49.99"`, `49.99`, `50`) into minor units of a
/// currency with `exponent` digits, exactly: no float rounding ever.
pub fn parse_decimal_minor(field: &str, text: &str, exponent: u8) -> Result<i64, FieldError> {
    let err = || FieldError::new(field, format!("`{text}` is not an amount"));
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    let exp = exponent as usize;
    if frac.trim_end_matches('0').len() > exp {
        return Err(FieldError::new(
            field,
            format!("`{text}` has more than {exponent} decimal places"),
        ));
    }
    let mut digits = String::from(if int.is_empty() { "0" } else { int });
    digits.push_str(&format!("{frac:0<exp$}")[..exp]);
    // Leading zeros cannot make an amount too large; digits past i64 can.
    let too_large = || {
        FieldError::new(
            field,
            format!(
                "`{text}` is more than the largest amount accepted ({} minor units)",
                crate::money::MAX_MINOR
            ),
        )
    };
    let v: i64 = digits.parse().map_err(|_| too_large())?;
    if v > crate::money::MAX_MINOR {
        return Err(too_large());
    }
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_become_exact_minor_units() {
        assert_eq!(parse_decimal_minor("revenue", "49.99", 2).unwrap(), 4999);
        assert_eq!(parse_decimal_minor("revenue", "50", 2).unwrap(), 5000);
        assert_eq!(parse_decimal_minor("revenue", "0.1", 2).unwrap(), 10);
        assert_eq!(parse_decimal_minor("revenue", "1200", 0).unwrap(), 1200);
        assert_eq!(parse_decimal_minor("revenue", "-3.5", 2).unwrap(), -350);
        assert_eq!(parse_decimal_minor("revenue", "19.990", 2).unwrap(), 1999);
    }

    #[test]
    fn decimal_amounts_refuse_extra_precision_and_junk() {
        assert!(parse_decimal_minor("revenue", "1.999", 2).is_err());
        assert!(parse_decimal_minor("revenue", "1e3", 2).is_err());
        assert!(parse_decimal_minor("revenue", "", 2).is_err());
        assert_eq!(
            parse_decimal_minor("total", "abc", 2).unwrap_err().field,
            "total"
        );
    }

    #[test]
    fn default_mapping_knows_segment_ecommerce_names() {
        let s = TrackingSettings::default();
        assert_eq!(s.meaning("Order Completed"), TrackMeaning::Conversion);
        assert_eq!(s.meaning("Signed Up"), TrackMeaning::Lead);
        assert_eq!(s.meaning("Lead Created"), TrackMeaning::Lead);
        assert_eq!(s.meaning("Button Clicked"), TrackMeaning::Custom);
    }

    #[test]
    fn product_errors_name_the_line_and_field() {
        let p = Product {
            sku: "A".into(),
            quantity: 0,
            amount: 5,
        };
        assert_eq!(p.validate(2).unwrap_err().field, "products[2].quantity");
    }

    #[test]
    fn product_lines_refuse_control_characters_in_skus_and_amounts_over_the_maximum() {
        let line = |sku: &str, amount: i64| Product {
            sku: sku.into(),
            quantity: 1,
            amount,
        };
        assert!(line("SKU-1", crate::money::MAX_MINOR).validate(0).is_ok());
        for (case, p, field) in [
            ("nul in sku", line("SKU\u{0}1", 5), "products[1].sku"),
            (
                "bidi override in sku",
                line("SKU\u{202e}1", 5),
                "products[1].sku",
            ),
            (
                "amount over the maximum",
                line("SKU-1", crate::money::MAX_MINOR + 1),
                "products[1].amount",
            ),
            ("negative amount", line("SKU-1", -1), "products[1].amount"),
        ] {
            assert_eq!(p.validate(1).unwrap_err().field, field, "case {case}");
        }
    }

    #[test]
    fn decimal_amounts_over_the_maximum_are_refused_naming_the_field() {
        let max = crate::money::MAX_MINOR;
        assert_eq!(
            parse_decimal_minor("amount", &format!("{}", max / 100), 2),
            Ok(max)
        );
        for (case, text) in [
            ("one minor unit over", format!("{}.01", max / 100)),
            ("i64::MAX minor units", "92233720368547758.07".to_owned()),
            ("past i64", "99999999999999999999999".to_owned()),
        ] {
            let err = parse_decimal_minor("amount", &text, 2).expect_err(case);
            assert_eq!(err.field, "amount", "case {case}");
            assert!(err.message.contains("largest amount"), "case {case}: {err}");
        }
    }

    #[test]
    fn tracked_event_names_refuse_control_characters() {
        let mut s = TrackingSettings::default();
        s.lead_events.push("Signed\u{0}Up".into());
        assert_eq!(s.validate().unwrap_err().field, "lead_events");
        let mut s = TrackingSettings::default();
        s.conversion_events.push("Order\u{2066}Completed".into());
        assert_eq!(s.validate().unwrap_err().field, "conversion_events");
    }
}

/// An event as accepted at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: crate::ids::EventId,
    pub program_id: crate::ids::ProgramId,
    /// The sender's id (`event_id`, Segment `messageId`): a repeat is ignored.
    pub external_id: Option<String>,
    pub event_type: EventType,
    /// The track event name (`Order Completed`) or page name.
    pub name: Option<String>,
    pub ids: crate::identity::Identifiers,
    /// Who vouches for `ids` belonging together: unverified when anyone
    /// could have sent the event (the snippet, a publishable write key).
    pub claim: crate::identity::Claim,
    /// The `tid` of the click that brought the visitor, if known.
    pub click_id: Option<crate::ids::ClickId>,
    /// A partner named by `?via=` or a referral event.
    pub partner: Option<(crate::ids::PartnerId, crate::attribution::TouchKind)>,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub properties: serde_json::Value,
}

impl Event {
    /// The identifier keys this event sees together (its click id included).
    pub fn group(&self) -> Vec<String> {
        let mut keys = self.ids.keys();
        if let Some(c) = &self.click_id {
            keys.push(crate::identity::click_key(c.as_str()));
        }
        keys
    }

    /// Whether the event says anything about who a person is or which
    /// partner touched them. An anonymous page view does not: it is stored
    /// and never enters the identity graph, which keeps ingestion cheap.
    pub fn links_identity(&self) -> bool {
        let n = self.group().len();
        n >= 2 || (n >= 1 && (self.partner.is_some() || self.event_type.is_lead()))
    }
}

/// A conversion as stored: what was received and how it was attributed.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub id: crate::ids::ConversionId,
    pub program_id: crate::ids::ProgramId,
    /// The order or deal id: a second conversion with it is refused.
    pub external_id: Option<String>,
    /// The `Idempotency-Key` header of the request that created it.
    pub idempotency_key: Option<String>,
    pub person_id: Option<crate::ids::PersonId>,
    pub status: ConversionStatus,
    pub value: crate::money::Money,
    pub products: Vec<Product>,
    pub click_id: Option<String>,
    pub coupon: Option<String>,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub attribution: crate::attribution::Attribution,
    /// A digest of the request that created it (see `NewConversion::fingerprint`).
    pub request_hash: Option<String>,
    /// Whose payment it is, for reward durations (`once`, N months,
    /// lifetime): the customer id when reported, else the person.
    pub customer_key: Option<String>,
    /// What the owner's backend said about the sale, for rule conditions
    /// (`sale.metadata.<key>`; `country` and `source` are the customer's).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Set when the conversion came in another currency: the original
    /// amount and the owner's rate used (`value` is the converted amount).
    pub fx: Option<crate::fx::Converted>,
}
