//! HubSpot deals read into conversions.
//!
//! The supported shape is a workflow's "Send a webhook" action on deals:
//! the body is one deal (or an array of them) whose properties are either
//! flat (`{"hs_object_id": "123", "dealstage": "closedwon", "amount":
//! "1200.50", "deal_currency_code": "EUR", "email": "a@b.c"}`), under
//! `properties` as the CRM API returns them (`{"properties": {"amount":
//! "1200.50"}}`), or in HubSpot's legacy nested form (`{"objectId": 123,
//! "properties": {"dealstage": {"value": "closedwon"}, …}}`). A deal in a
//! won stage becomes a conversion with order id `hubspot-deal:{id}` (so
//! the workflow firing twice is one conversion); a deal in another stage
//! is ignored.
//!
//! HubSpot's app subscriptions (`[{"subscriptionType":
//! "deal.propertyChange", "propertyName": "dealstage", "objectId": …}]`)
//! carry no amount, so they are ignored with a reason saying so: point a
//! workflow's webhook at the integration instead.
//!
//! Settings (`mapping`), all optional:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `won_stage` | `"closedwon"` | the stage id (or a list of them, one per pipeline) that means won |
//! | `amount_property` | `"amount"` | the deal's amount, in major units |
//! | `currency_property` | `"deal_currency_code"` | its currency |
//! | `default_currency` | none | the currency when the deal has none |
//! | `email_property` | `"email"` | the buyer's e-mail (add it to the webhook from the associated contact) |
//! | `click_id_property` | `"tribute_click_id"` | a Tribute click id stored on the deal or contact |
//!
//! Errors name the property (prefixed `[i].` for the i-th deal of an
//! array), e.g. `deal_currency_code`.

use serde_json::{Map, Value};

use super::{
    click_id, currency, id_text, major_amount, rfc3339, settings_map, Inbound, InboundConversion,
};
use crate::identity::RawIdentifiers;
use crate::money::Currency;
use crate::FieldError;

const KEYS: &[&str] = &[
    "won_stage",
    "amount_property",
    "currency_property",
    "email_property",
    "click_id_property",
    "default_currency",
];

/// The settings, read.
struct Settings {
    won_stages: Vec<String>,
    amount: String,
    currency: String,
    email: String,
    click_id: String,
    default_currency: Option<Currency>,
}

fn read_settings(settings: &Value) -> Result<Settings, FieldError> {
    let map = settings_map(settings, KEYS)?;
    let get = |key: &str| map.and_then(|m| m.get(key)).filter(|v| !v.is_null());
    let name = |key: &str, default: &str| -> Result<String, FieldError> {
        match get(key) {
            None => Ok(default.to_owned()),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Some(_) => Err(FieldError::new(
                format!("mapping.{key}"),
                "must be a HubSpot property name",
            )),
        }
    };
    let won_stages = match get("won_stage") {
        None => vec!["closedwon".to_owned()],
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        Some(Value::Array(list))
            if !list.is_empty()
                && list
                    .iter()
                    .all(|s| s.as_str().is_some_and(|s| !s.trim().is_empty())) =>
        {
            list.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_owned())
                .collect()
        }
        Some(_) => {
            return Err(FieldError::new(
                "mapping.won_stage",
                "must be a deal stage id or a list of them",
            ))
        }
    };
    let default_currency = match get("default_currency") {
        None => None,
        Some(v) => Some(currency("mapping.default_currency", v.as_str())?),
    };
    Ok(Settings {
        won_stages,
        amount: name("amount_property", "amount")?,
        currency: name("currency_property", "deal_currency_code")?,
        email: name("email_property", "email")?,
        click_id: name("click_id_property", "tribute_click_id")?,
        default_currency,
    })
}

/// Check a HubSpot integration's settings; errors name `mapping.<key>`.
pub fn check_settings(settings: &Value) -> Result<(), FieldError> {
    read_settings(settings).map(|_| ())
}

/// Read a workflow webhook's deal (or array of deals).
pub fn interpret(settings: &Value, json: &Value) -> Result<Vec<Inbound>, FieldError> {
    let s = read_settings(settings)?;
    match json {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| one(&s, item, &format!("[{i}].")))
            .collect(),
        Value::Object(_) => Ok(vec![one(&s, json, "")?]),
        _ => Err(FieldError::new(
            "body",
            "must be a deal object or an array of them",
        )),
    }
}

/// A deal property's value: flat, under `properties`, or under
/// `properties.<name>.value` (the legacy form). Blank is absent: HubSpot
/// sends `""` for a property that is not set.
fn prop<'a>(deal: &'a Value, name: &str) -> Option<&'a Value> {
    fn scalar(v: &Value) -> Option<&Value> {
        match v {
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(v),
            _ => None,
        }
    }
    deal.get(name)
        .and_then(scalar)
        .or_else(|| match deal.get("properties")?.get(name)? {
            Value::Object(o) => o.get("value").and_then(scalar),
            other => scalar(other),
        })
}

fn prop_text<'a>(deal: &'a Value, name: &str) -> Option<&'a str> {
    prop(deal, name).and_then(Value::as_str).map(str::trim)
}

fn one(s: &Settings, deal: &Value, prefix: &str) -> Result<Inbound, FieldError> {
    let field = |name: &str| format!("{prefix}{name}");
    if !deal.is_object() {
        return Err(FieldError::new(
            field("").trim_end_matches('.'),
            "must be a deal object",
        ));
    }
    if let Some(kind) = deal.get("subscriptionType").and_then(Value::as_str) {
        return Ok(Inbound::Ignored(format!(
            "HubSpot app subscription event {kind} carries no deal amount: \
             send deals from a workflow's \"Send a webhook\" action instead"
        )));
    }
    let id = id_text(prop(deal, "hs_object_id"))
        .or_else(|| id_text(deal.get("objectId")))
        .or_else(|| id_text(deal.get("dealId")))
        .ok_or_else(|| {
            FieldError::new(field("hs_object_id"), "is required (or objectId, dealId)")
        })?;
    let stage = id_text(prop(deal, "dealstage")).ok_or_else(|| {
        FieldError::new(
            field("dealstage"),
            "is required: include the deal stage in the webhook's properties",
        )
    })?;
    if !s.won_stages.contains(&stage) {
        return Ok(Inbound::Ignored(format!(
            "deal {id} is in stage {stage}, not a won stage"
        )));
    }
    let currency = match prop_text(deal, &s.currency) {
        Some(code) => currency(&field(&s.currency), Some(code))?,
        None => s.default_currency.ok_or_else(|| {
            FieldError::new(
                field(&s.currency),
                "is required (or set mapping.default_currency)",
            )
        })?,
    };
    let amount_field = field(&s.amount);
    let amount =
        prop(deal, &s.amount).ok_or_else(|| FieldError::new(&amount_field, "is required"))?;
    let value = major_amount(&amount_field, amount, currency.exponent())?;
    if value == 0 {
        return Ok(Inbound::Ignored(format!("deal {id} has a zero amount")));
    }
    let mut metadata = Map::new();
    if let Some(pipeline) = id_text(prop(deal, "pipeline")) {
        metadata.insert("hubspot_pipeline".into(), pipeline.into());
    }
    metadata.insert("hubspot_dealstage".into(), stage.into());
    Ok(Inbound::Conversion(InboundConversion {
        external_id: format!("hubspot-deal:{id}"),
        refs: Vec::new(),
        value,
        currency: currency.as_str().to_owned(),
        ids: RawIdentifiers {
            email: prop_text(deal, &s.email).map(str::to_owned),
            ..Default::default()
        },
        click_id: click_id(prop_text(deal, &s.click_id)),
        coupon: None,
        products: Vec::new(),
        occurred_at: close_date(deal),
        metadata,
    }))
}

/// `closedate`: Unix milliseconds (how HubSpot stores dates, as a number
/// or digits) or an RFC 3339 time. Unreadable is unknown, not an error:
/// the server then uses the time of receipt.
fn close_date(deal: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let v = prop(deal, "closedate")?;
    let millis = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match millis {
        Some(ms) => chrono::DateTime::from_timestamp_millis(ms),
        None => rfc3339("closedate", v.as_str()?).ok(),
    }
}
