//! Any other system's webhooks (a CRM, a billing tool), read through a
//! field mapping the owner writes: each field is a JSON Pointer (RFC 6901)
//! into the body.
//!
//! ```json
//! { "external_id": "/id", "kind": "/type",
//!   "kind_values": {"won": "conversion", "refunded": "refund", "signup": "lead"},
//!   "default_kind": "conversion", "value": "/amount", "value_unit": "major",
//!   "currency": "/currency", "default_currency": "USD",
//!   "email": "/contact/email", "user_id": "/contact/id", "customer_id": "/account/id",
//!   "anonymous_id": "/visitor", "click_id": "/tid", "coupon": "/coupon",
//!   "occurred_at": "/closed_at", "refund_of": "/order_id", "metadata": "/custom_fields",
//!   "signature_header": "x-signature", "timestamp_header": null, "id_header": null,
//!   "tolerance_seconds": 300 }
//! ```
//!
//! - `external_id` and `value` are required (`value` may be left out when
//!   every delivery is a lead: no `kind` and `default_kind: "lead"`).
//! - The kind: with a `kind` pointer, its value is looked up in
//!   `kind_values`, or taken as is when it is literally `conversion`,
//!   `refund`, `chargeback` or `lead`; anything else (or nothing there) is
//!   ignored. Without one, every delivery is `default_kind` (`conversion`).
//! - `value` is a number or a numeric string, in minor units of the
//!   currency unless `value_unit` is `major` (`12.5` USD is 1250).
//! - A refund's own id is the `external_id` value, and it refunds the sale
//!   whose order id is at `refund_of` (by default the same `external_id`
//!   pointer: a system that reports "order 17 was refunded").
//! - `occurred_at` is an RFC 3339 string or Unix seconds.
//! - `metadata` points at an object whose scalar values become the sale's
//!   metadata, for reward rule conditions.
//! - The last four keys configure [`super::verify`].
//!
//! Errors about the body name the pointer, prefixed `body`
//! (`body/amount`); errors about the mapping name `mapping.<key>`.

use serde_json::{Map, Value};

use super::{
    click_id, currency, major_amount, rfc3339, settings_map, tolerance_seconds, unix_seconds,
    Inbound, InboundConversion, InboundLead, InboundRefund, RefundKind,
};
use crate::identity::RawIdentifiers;
use crate::money::{check_amount, Currency};
use crate::FieldError;

const POINTERS: &[&str] = &[
    "external_id",
    "kind",
    "value",
    "currency",
    "email",
    "user_id",
    "customer_id",
    "anonymous_id",
    "click_id",
    "coupon",
    "occurred_at",
    "refund_of",
    "metadata",
];
const OTHER_KEYS: &[&str] = &[
    "kind_values",
    "default_kind",
    "value_unit",
    "default_currency",
    "signature_header",
    "timestamp_header",
    "id_header",
    "tolerance_seconds",
];

/// What a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Conversion,
    Refund,
    Chargeback,
    Lead,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "conversion" => Self::Conversion,
            "refund" => Self::Refund,
            "chargeback" => Self::Chargeback,
            "lead" => Self::Lead,
            _ => return None,
        })
    }
}

const KIND_NAMES: &str = "conversion, refund, chargeback or lead";

/// The mapping, read and checked.
struct Mapping<'a> {
    map: &'a Map<String, Value>,
    kind_values: Vec<(&'a str, Kind)>,
    default_kind: Kind,
    major: bool,
    default_currency: Option<Currency>,
}

impl<'a> Mapping<'a> {
    /// The pointer configured for `key`, if any.
    fn pointer(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).and_then(Value::as_str)
    }
}

fn read_mapping(settings: &Value) -> Result<Mapping<'_>, FieldError> {
    let allowed: Vec<&str> = POINTERS.iter().chain(OTHER_KEYS).copied().collect();
    let map = settings_map(settings, &allowed)?.ok_or_else(|| {
        FieldError::new(
            "mapping",
            "is required: say where the order id and value are",
        )
    })?;
    let bad = |key: &str, message: &str| FieldError::new(format!("mapping.{key}"), message);
    for key in POINTERS {
        match map.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(p)) if p.is_empty() || p.starts_with('/') => {}
            Some(_) => {
                return Err(bad(
                    key,
                    "must be a JSON Pointer into the body, e.g. \"/order/id\"",
                ))
            }
        }
    }
    let mut kind_values = Vec::new();
    match map.get("kind_values") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let kind = v.as_str().and_then(Kind::parse).ok_or_else(|| {
                    bad(
                        &format!("kind_values.{k}"),
                        &format!("must be {KIND_NAMES}"),
                    )
                })?;
                kind_values.push((k.as_str(), kind));
            }
        }
        Some(_) => return Err(bad("kind_values", "must be an object of kind names")),
    }
    let default_kind = match map.get("default_kind") {
        None | Some(Value::Null) => Kind::Conversion,
        Some(v) => v
            .as_str()
            .and_then(Kind::parse)
            .ok_or_else(|| bad("default_kind", &format!("must be {KIND_NAMES}")))?,
    };
    let major = match map.get("value_unit").map(|v| (v, v.as_str())) {
        None | Some((Value::Null, _)) | Some((_, Some("minor"))) => false,
        Some((_, Some("major"))) => true,
        Some(_) => return Err(bad("value_unit", "must be minor or major")),
    };
    let default_currency = match map.get("default_currency") {
        None | Some(Value::Null) => None,
        Some(v) => Some(currency("mapping.default_currency", v.as_str())?),
    };
    let m = Mapping {
        map,
        kind_values,
        default_kind,
        major,
        default_currency,
    };
    if m.pointer("external_id").is_none() {
        return Err(bad(
            "external_id",
            "is required: where the order or event id is",
        ));
    }
    let only_leads = m.pointer("kind").is_none() && default_kind == Kind::Lead;
    if m.pointer("value").is_none() && !only_leads {
        return Err(bad("value", "is required: where the amount is"));
    }
    Ok(m)
}

/// A header name setting: absent, null, or an HTTP token.
fn check_header(map: &Map<String, Value>, key: &str) -> Result<(), FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 100
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) =>
        {
            Ok(())
        }
        Some(_) => Err(FieldError::new(
            format!("mapping.{key}"),
            "must be an HTTP header name",
        )),
    }
}

/// Check a generic integration's mapping: every pointer, kind, unit,
/// currency and header name; errors name `mapping.<key>`.
pub fn check_settings(settings: &Value) -> Result<(), FieldError> {
    let m = read_mapping(settings)?;
    for key in ["signature_header", "timestamp_header", "id_header"] {
        check_header(m.map, key)?;
    }
    tolerance_seconds(settings, 300).map(|_| ())
}

/// The body field named `body<pointer>` in errors.
fn body_field(pointer: &str) -> String {
    format!("body{pointer}")
}

/// The value at the pointer configured for `key` (null is absent).
fn at<'j>(m: &Mapping, json: &'j Value, key: &str) -> Option<&'j Value> {
    json.pointer(m.pointer(key)?).filter(|v| !v.is_null())
}

/// A string or number at the pointer for `key`, as text.
fn text_at(m: &Mapping, json: &Value, key: &str) -> Option<String> {
    match at(m, json, key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Read a delivery through the integration's mapping.
pub fn interpret(settings: &Value, json: &Value) -> Result<Vec<Inbound>, FieldError> {
    let m = read_mapping(settings)?;
    let kind = match m.pointer("kind") {
        None => m.default_kind,
        Some(ptr) => {
            let Some(name) = text_at(&m, json, "kind") else {
                return Ok(vec![Inbound::Ignored(format!("no kind at {ptr}"))]);
            };
            let mapped = m
                .kind_values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, kind)| *kind)
                .or_else(|| Kind::parse(&name));
            match mapped {
                Some(kind) => kind,
                None => {
                    return Ok(vec![Inbound::Ignored(format!(
                        "kind `{name}` at {ptr} is not mapped"
                    ))])
                }
            }
        }
    };
    let id_ptr = m.pointer("external_id").unwrap_or_default();
    let external_id = text_at(&m, json, "external_id").ok_or_else(|| {
        FieldError::new(body_field(id_ptr), "is required (the order or event id)")
    })?;
    let ids = RawIdentifiers {
        email: text_at(&m, json, "email"),
        user_id: text_at(&m, json, "user_id"),
        customer_id: text_at(&m, json, "customer_id"),
        anonymous_id: text_at(&m, json, "anonymous_id"),
        ..Default::default()
    };
    let click = click_id(text_at(&m, json, "click_id").as_deref());
    let occurred_at = match (m.pointer("occurred_at"), at(&m, json, "occurred_at")) {
        (Some(ptr), Some(Value::String(s))) => Some(rfc3339(&body_field(ptr), s)?),
        (Some(ptr), Some(v)) => Some(unix_seconds(&body_field(ptr), v)?),
        _ => None,
    };
    if kind == Kind::Lead {
        return Ok(vec![Inbound::Lead(InboundLead {
            external_id,
            ids,
            click_id: click,
            occurred_at,
        })]);
    }
    let (value, currency) = amount(&m, json)?;
    if kind == Kind::Conversion {
        return Ok(vec![Inbound::Conversion(InboundConversion {
            external_id,
            refs: Vec::new(),
            value,
            currency: currency.as_str().to_owned(),
            ids,
            click_id: click,
            coupon: text_at(&m, json, "coupon"),
            products: Vec::new(),
            occurred_at,
            metadata: metadata(&m, json),
        })]);
    }
    if value == 0 {
        return Ok(vec![Inbound::Ignored("zero-amount refund".into())]);
    }
    let of = match m.pointer("refund_of") {
        Some(ptr) => text_at(&m, json, "refund_of").ok_or_else(|| {
            FieldError::new(body_field(ptr), "is required (the refunded order's id)")
        })?,
        None => external_id.clone(),
    };
    let (refund_kind, reason) = match kind {
        Kind::Chargeback => (RefundKind::Chargeback, "charged back (reported by webhook)"),
        _ => (RefundKind::Refund, "refunded (reported by webhook)"),
    };
    Ok(vec![Inbound::Refund(InboundRefund {
        external_id,
        of: vec![of],
        amount: value,
        currency: currency.as_str().to_owned(),
        kind: refund_kind,
        reason: reason.into(),
        cumulative: false,
    })])
}

/// The value in minor units and its currency.
fn amount(m: &Mapping, json: &Value) -> Result<(i64, Currency), FieldError> {
    let ptr = m.pointer("currency");
    let currency = match ptr.and_then(|p| at(m, json, "currency").map(|v| (p, v))) {
        Some((p, v)) => currency(&body_field(p), v.as_str())?,
        None => m.default_currency.ok_or_else(|| match ptr {
            Some(p) => FieldError::new(
                body_field(p),
                "is required (or set mapping.default_currency)",
            ),
            None => FieldError::new(
                "mapping.default_currency",
                "is required when no currency pointer is set",
            ),
        })?,
    };
    let ptr = m.pointer("value").unwrap_or_default();
    let field = body_field(ptr);
    let v =
        at(m, json, "value").ok_or_else(|| FieldError::new(&field, "is required (the amount)"))?;
    let value = if m.major {
        major_amount(&field, v, currency.exponent())?
    } else {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(FieldError::new(&field, "must be an amount in minor units")),
        };
        let minor = crate::tracking::parse_decimal_minor(&field, &text, 0)?;
        check_amount(&field, minor)?
    };
    Ok((value, currency))
}

/// The entries of the object at the `metadata` pointer that a sale's
/// metadata accepts (see `super::sale_metadata`).
fn metadata(m: &Mapping, json: &Value) -> Map<String, Value> {
    super::sale_metadata([], at(m, json, "metadata"))
}
