//! A conversion as it enters Tribute, before it is attributed.
//!
//! Every way in (the JSON API, postbacks, Segment, the snippet) parses its
//! own wire shape straight into a [`NewConversion`], naming its own fields in
//! its errors; from there on one pipeline records it. What a conversion may
//! claim depends on who reported it ([`Reporter`]): anyone can read a
//! publishable key out of a web page, so the browser's order ids live in
//! their own namespace and its conversions are always pending.
//!
//! The snippet and Segment describe an order with the same e-commerce
//! properties (`revenue`, `products`, `order_id`, `coupon`…), so one mapper
//! ([`Commerce::from_properties`]) reads them for both, and one rule
//! ([`scrub_contact`]) keeps contact details out of stored properties.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::coupon::CouponCode;
use crate::identity::{Claim, Identifiers};
use crate::ids::{ClickId, ProgramId};
use crate::money::{Currency, Money};
use crate::tracking::{parse_decimal_minor, ConversionStatus, Product};
use crate::FieldError;

/// Longest stored external id.
pub const MAX_EXTERNAL_ID: usize = 200;

/// Longest order id a browser may send: its namespace prefix must still fit
/// in [`MAX_EXTERNAL_ID`].
pub const MAX_BROWSER_ORDER_ID: usize = 180;

/// Who reported a conversion, which decides what it may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter {
    /// The owner's backend: an admin or secret key, a postback carrying the
    /// program's token, a verified inbound webhook.
    Server,
    /// The first-party snippet, with the program's publishable key.
    Snippet,
    /// A Segment-compatible client with a publishable write key.
    Segment,
}

impl Reporter {
    /// The namespace a reporter's order ids are stored in: a browser must
    /// never claim an order id first and make the owner's own report of
    /// that order look like a replay.
    pub fn namespace(&self) -> Option<&'static str> {
        match self {
            Self::Server => None,
            Self::Snippet => Some("snippet:"),
            Self::Segment => Some("segment:"),
        }
    }

    /// Whether the reporter is the owner's own system (it may set a status).
    pub fn is_server(&self) -> bool {
        matches!(self, Self::Server)
    }

    /// Every namespace a server order id may have been pre-reported in by a
    /// browser.
    pub fn browser_namespaces() -> [&'static str; 2] {
        ["snippet:", "segment:"]
    }
}

/// An order or deal id as reported: trimmed, 1 to `max` characters of plain
/// text (see [`crate::text`]). Empty means none.
pub fn parse_external_id(
    field: &str,
    v: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > max => Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(s) => {
            crate::text::check_plain_text(field, s)?;
            Ok(Some(s.to_owned()))
        }
    }
}

/// A conversion as reported, every value parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversion {
    pub program_id: ProgramId,
    pub reporter: Reporter,
    /// The order or deal id as reported (without any namespace).
    pub order_id: Option<String>,
    /// What makes a retry of the same report idempotent when there is no
    /// order id (an `Idempotency-Key` header, a snippet event id).
    pub idempotency_key: Option<String>,
    /// The value as reported, in the currency reported: converted into the
    /// program's when the conversion is recorded (see [`reported_currency`]).
    pub value: Money,
    pub status: ConversionStatus,
    pub ids: Identifiers,
    /// The domain of the buyer's e-mail, when the report carried the
    /// address (kept only for the disposable-address rule, never stored).
    pub email_domain: Option<String>,
    /// Who vouches for `ids` being this buyer's: verified from the owner's
    /// backend, unverified from a key anyone could have read.
    pub claim: Claim,
    pub click_id: Option<ClickId>,
    pub coupon: Option<CouponCode>,
    pub products: Vec<Product>,
    pub occurred_at: DateTime<Utc>,
    /// A digest of the request as sent, to tell a retry from a different
    /// request reusing the same idempotency key.
    pub fingerprint: Option<String>,
    /// What the owner's backend says about the sale, for rule conditions.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl NewConversion {
    /// The external id as stored: the order id in its reporter's namespace.
    pub fn external_id(&self) -> Option<String> {
        let order = self.order_id.as_deref()?;
        Some(match self.reporter.namespace() {
            Some(ns) => format!("{ns}{order}"),
            None => order.to_owned(),
        })
    }

    /// The stored idempotency key, namespaced like order ids.
    pub fn stored_idempotency_key(&self) -> Option<String> {
        let key = self.idempotency_key.as_deref()?;
        Some(match self.reporter.namespace() {
            Some(ns) if !key.starts_with(ns) => format!("{ns}{key}"),
            _ => key.to_owned(),
        })
    }

    /// External ids of browser reports this server report confirms: the
    /// same order seen by the snippet or Segment before the owner's backend.
    pub fn browser_reports(&self) -> Vec<String> {
        match (&self.order_id, self.reporter) {
            (Some(order), Reporter::Server) => Reporter::browser_namespaces()
                .iter()
                .map(|ns| format!("{ns}{order}"))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A conversion's status as a reporter may set it: the browser's are always
/// pending (the owner approves), the server's default to approved.
pub fn reported_status(
    field: &str,
    reporter: Reporter,
    given: Option<&str>,
) -> Result<ConversionStatus, FieldError> {
    match (reporter.is_server(), given) {
        (true, None) => Ok(ConversionStatus::Approved),
        (true, Some(s)) => match ConversionStatus::parse(s) {
            Ok(ConversionStatus::Superseded) | Err(_) => Err(FieldError::new(
                field,
                "must be one of pending, approved, rejected",
            )),
            Ok(status) => Ok(status),
        },
        (false, None) => Ok(ConversionStatus::Pending),
        (false, Some(_)) => Err(FieldError::new(
            field,
            "may only be set with a secret key (browser conversions are pending)",
        )),
    }
}

/// The most keys a conversion's metadata may hold.
pub const MAX_METADATA_KEYS: usize = 50;

/// A conversion's metadata: at most [`MAX_METADATA_KEYS`] keys of plain
/// text (1 to 64 characters), each a string (at most 500 characters), a
/// whole number or a boolean: what rule conditions can compare.
pub fn parse_metadata(
    field: &str,
    m: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, FieldError> {
    use serde_json::Value;
    if m.len() > MAX_METADATA_KEYS {
        return Err(FieldError::new(
            field,
            format!("may hold at most {MAX_METADATA_KEYS} keys"),
        ));
    }
    for (k, v) in &m {
        let at = format!("{field}.{k}");
        if k.is_empty() || k.chars().count() > 64 {
            return Err(FieldError::new(at, "keys must be 1 to 64 characters"));
        }
        crate::text::check_plain_text(&at, k)?;
        match v {
            Value::String(s) if s.chars().count() <= 500 => crate::text::check_plain_text(&at, s)?,
            Value::Number(n) if n.is_i64() => {}
            Value::Bool(_) => {}
            _ => {
                return Err(FieldError::new(
                    at,
                    "must be a string of at most 500 characters, a whole number or a boolean",
                ))
            }
        }
    }
    Ok(m)
}

/// The currency a conversion is reported in: any ISO 4217 code. A
/// conversion keeps the currency it was sent in ([`NewConversion::value`]);
/// one in another currency than the program's is converted when it is
/// recorded, with the owner's rate in force at its time (`crate::fx`), and
/// refused there when no rate is on file.
pub fn reported_currency(field: &str, code: &str) -> Result<Currency, FieldError> {
    Currency::parse(code).map_err(|e| e.at(field))
}

/// A conversion value: never negative (refunds reverse a conversion), at
/// most [`crate::money::MAX_MINOR`].
pub fn conversion_value(field: &str, minor: i64, currency: Currency) -> Result<Money, FieldError> {
    crate::money::check_amount(field, minor)?;
    Ok(Money::new(minor, currency))
}

/// An order as e-commerce properties describe it (Segment's e-commerce spec,
/// which the snippet's `tribute.conversion(props)` follows too).
#[derive(Debug, Clone, PartialEq)]
pub struct Commerce {
    pub value: Money,
    pub order_id: Option<String>,
    pub products: Vec<Product>,
    pub coupon: Option<CouponCode>,
}

/// A property as text: strings trimmed, numbers as written; blank is none.
fn text(props: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, FieldError> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FieldError::new(field, "must be a string or a number")),
    }
}

/// A whole number given as a number or as text.
fn whole(v: &Value, field: &str) -> Result<i64, FieldError> {
    let err = || FieldError::new(field, "must be a whole number");
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(err),
        Value::String(s) => s.trim().parse().map_err(|_| err()),
        _ => Err(err()),
    }
}

impl Commerce {
    /// Read `properties` (errors name `properties.…`). The value is, in
    /// order: `value` (minor units), `revenue` or `total` (major units), or
    /// what the product lines add up to, in `currency` (default: the
    /// program's), whose minor unit reads the major-unit amounts.
    pub fn from_properties(
        props: &Map<String, Value>,
        program: Currency,
    ) -> Result<Self, FieldError> {
        let currency = match props.get("currency") {
            None | Some(Value::Null) => program,
            Some(Value::String(s)) => reported_currency("properties.currency", s)?,
            Some(_) => {
                return Err(FieldError::new(
                    "properties.currency",
                    "must be a currency code",
                ))
            }
        };
        let exponent = currency.exponent();
        let products = products(props, exponent)?;
        let (field, minor) = match props.get("value") {
            Some(Value::Number(n)) => (
                "properties.value",
                n.as_i64().ok_or_else(|| {
                    FieldError::new("properties.value", "must be an integer in minor units")
                })?,
            ),
            Some(Value::Null) | None => {
                match (
                    text(props, "revenue", "properties.revenue")?,
                    text(props, "total", "properties.total")?,
                ) {
                    (Some(v), _) => (
                        "properties.revenue",
                        parse_decimal_minor("properties.revenue", &v, exponent)?,
                    ),
                    (None, Some(v)) => (
                        "properties.total",
                        parse_decimal_minor("properties.total", &v, exponent)?,
                    ),
                    (None, None) if products.is_empty() => {
                        return Err(FieldError::new(
                            "properties.value",
                            "is required (minor units), or revenue in major units",
                        ))
                    }
                    // Neither: what the lines add up to.
                    (None, None) => (
                        "properties.products",
                        products
                            .iter()
                            .try_fold(0i64, |sum, p| sum.checked_add(p.amount))
                            .ok_or_else(|| {
                                FieldError::new("properties.products", "amounts overflow")
                            })?,
                    ),
                }
            }
            Some(_) => {
                return Err(FieldError::new(
                    "properties.value",
                    "must be an integer in minor units",
                ))
            }
        };
        let value = conversion_value(field, minor, currency)?;
        let order_id = match text(props, "order_id", "properties.order_id")? {
            Some(o) => Some(o),
            None => text(props, "external_id", "properties.order_id")?,
        };
        let order_id = parse_external_id(
            "properties.order_id",
            order_id.as_deref(),
            MAX_BROWSER_ORDER_ID,
        )?;
        let coupon = match props.get("coupon") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => {
                Some(CouponCode::parse(s).map_err(|e| e.at("properties.coupon"))?)
            }
            Some(_) => return Err(FieldError::new("properties.coupon", "must be a string")),
        };
        Ok(Self {
            value,
            order_id,
            products,
            coupon,
        })
    }
}

/// `properties.products[]` as conversion lines: each has a `sku` (or
/// `product_id`), a `quantity` (default 1), and an `amount` in minor units
/// or a unit `price` in major units.
fn products(props: &Map<String, Value>, exponent: u8) -> Result<Vec<Product>, FieldError> {
    let items = match props.get("products") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(FieldError::new("properties.products", "must be an array")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("properties.products[{i}].{f}");
        let Value::Object(line) = item else {
            return Err(FieldError::new(
                format!("properties.products[{i}]"),
                "must be an object",
            ));
        };
        let sku = match text(line, "sku", &at("sku"))? {
            Some(s) => s,
            None => text(line, "product_id", &at("product_id"))?
                .ok_or_else(|| FieldError::new(at("sku"), "a product needs a sku or product_id"))?,
        };
        let quantity = match line.get("quantity") {
            None | Some(Value::Null) => 1,
            Some(v) => whole(v, &at("quantity"))?,
        };
        let amount = match (line.get("amount"), text(line, "price", &at("price"))?) {
            (Some(Value::Number(n)), _) => n.as_i64().ok_or_else(|| {
                FieldError::new(at("amount"), "must be an integer in minor units")
            })?,
            (Some(Value::Null) | None, Some(p)) => parse_decimal_minor(&at("price"), &p, exponent)?
                .checked_mul(quantity)
                .ok_or_else(|| FieldError::new(at("price"), "price × quantity is too large"))?,
            (Some(Value::Null) | None, None) => 0,
            (Some(_), _) => {
                return Err(FieldError::new(
                    at("amount"),
                    "must be an integer in minor units",
                ))
            }
        };
        let product = Product {
            sku,
            quantity,
            amount,
        };
        product
            .validate(i)
            .map_err(|e| FieldError::new(format!("properties.{}", e.field), e.message))?;
        out.push(product);
    }
    Ok(out)
}

/// Remove contact details in clear from properties that will be stored:
/// the phone always, the e-mail unless the program keeps e-mails
/// (identities keep their hashes either way).
pub fn scrub_contact(props: &mut Map<String, Value>, keep_email: bool) {
    if !keep_email {
        props.remove("email");
    }
    props.remove("phone");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn commerce_reads_value_revenue_total_or_the_lines_in_that_order() {
        let cases = [
            ("value wins", json!({"value": 1234, "revenue": "99"}), 1234),
            ("revenue in major units", json!({"revenue": "49.99"}), 4999),
            ("total as a number", json!({"total": 12.5}), 1250),
            (
                "lines add up",
                json!({"products": [{"sku": "A", "price": "2.50", "quantity": 2}, {"sku": "B", "amount": 100}]}),
                600,
            ),
        ];
        for (name, p, want) in cases {
            let c = Commerce::from_properties(&props(p), usd()).unwrap();
            assert_eq!(c.value.minor, want, "{name}");
        }
    }

    #[test]
    fn commerce_errors_name_the_property_at_fault() {
        let cases = [
            ("no value", json!({}), "properties.value"),
            (
                "negative revenue",
                json!({"revenue": "-1"}),
                "properties.revenue",
            ),
            (
                "not a currency",
                json!({"value": 1, "currency": "EURO"}),
                "properties.currency",
            ),
            (
                "bad line",
                json!({"value": 1, "products": [{"sku": "A", "quantity": 0}]}),
                "properties.products[0].quantity",
            ),
            (
                "coupon not text",
                json!({"value": 1, "coupon": 5}),
                "properties.coupon",
            ),
            (
                "long order id",
                json!({"value": 1, "order_id": "x".repeat(181)}),
                "properties.order_id",
            ),
            (
                "order id with NUL",
                json!({"value": 1, "order_id": "o\u{0}1"}),
                "properties.order_id",
            ),
            (
                "order id with a bidi override",
                json!({"value": 1, "order_id": "o\u{202e}1"}),
                "properties.order_id",
            ),
            (
                "value over the maximum",
                json!({"value": crate::money::MAX_MINOR + 1}),
                "properties.value",
            ),
            (
                "revenue over the maximum",
                json!({"revenue": "92233720368547758.07"}),
                "properties.revenue",
            ),
            (
                "lines adding up past the maximum",
                json!({"products": [{"sku": "A", "amount": crate::money::MAX_MINOR}, {"sku": "B", "amount": 1}]}),
                "properties.products",
            ),
            (
                "sku with NUL",
                json!({"value": 1, "products": [{"sku": "A\u{0}"}]}),
                "properties.products[0].sku",
            ),
        ];
        for (name, p, field) in cases {
            let e = Commerce::from_properties(&props(p), usd()).unwrap_err();
            assert_eq!(e.field, field, "{name}");
        }
    }

    #[test]
    fn another_currency_is_kept_and_reads_major_units_with_its_own_exponent() {
        let c =
            Commerce::from_properties(&props(json!({"revenue": "1500", "currency": "jpy"})), usd())
                .unwrap();
        assert_eq!(c.value, Money::new(1500, Currency::parse("JPY").unwrap()));
        let c =
            Commerce::from_properties(&props(json!({"revenue": "12.5", "currency": "EUR"})), usd())
                .unwrap();
        assert_eq!(c.value, Money::new(1250, Currency::parse("EUR").unwrap()));
    }

    #[test]
    fn the_same_properties_give_the_same_order_whatever_the_spelling() {
        let a = Commerce::from_properties(
            &props(json!({"order_id": 17, "revenue": 10, "products": [{"product_id": "P", "price": 10}]})),
            usd(),
        )
        .unwrap();
        let b = Commerce::from_properties(
            &props(json!({"external_id": "17", "value": 1000, "products": [{"sku": "P", "amount": 1000}]})),
            usd(),
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn browser_order_ids_live_in_their_reporters_namespace() {
        let mut c = NewConversion {
            program_id: ProgramId::generate(),
            reporter: Reporter::Segment,
            order_id: Some("o-5000".into()),
            idempotency_key: None,
            value: Money::new(1, usd()),
            status: ConversionStatus::Pending,
            ids: Identifiers::default(),
            email_domain: None,
            claim: Claim::Unverified,
            click_id: None,
            coupon: None,
            products: vec![],
            occurred_at: Utc::now(),
            fingerprint: None,
            metadata: Default::default(),
        };
        assert_eq!(c.external_id().as_deref(), Some("segment:o-5000"));
        assert!(c.browser_reports().is_empty());
        c.reporter = Reporter::Server;
        assert_eq!(c.external_id().as_deref(), Some("o-5000"));
        assert_eq!(
            c.browser_reports(),
            vec!["snippet:o-5000".to_owned(), "segment:o-5000".to_owned()]
        );
    }

    #[test]
    fn only_the_server_may_set_a_status() {
        assert_eq!(
            reported_status("status", Reporter::Server, None).unwrap(),
            ConversionStatus::Approved
        );
        assert_eq!(
            reported_status("status", Reporter::Snippet, None).unwrap(),
            ConversionStatus::Pending
        );
        assert!(reported_status("status", Reporter::Segment, Some("approved")).is_err());
        assert!(reported_status("status", Reporter::Server, Some("superseded")).is_err());
    }

    #[test]
    fn scrubbing_removes_phone_always_and_email_unless_kept() {
        let mut p = props(json!({"email": "a@b.c", "phone": "+1", "plan": "pro"}));
        scrub_contact(&mut p, true);
        assert!(p.contains_key("email") && !p.contains_key("phone"));
        scrub_contact(&mut p, false);
        assert_eq!(p, props(json!({"plan": "pro"})));
    }
}
