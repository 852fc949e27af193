//! Shopify webhooks (REST Admin API payloads) read into Tribute's actions.
//! The body does not say what happened: the topic is the `x-shopify-topic`
//! header, which the server passes along.
//!
//! | topic | becomes |
//! |---|---|
//! | `orders/paid` | a conversion (order id; `name` such as `#1001` and the GraphQL id as refs) |
//! | `refunds/create` | a refund of the order: its successful refund transactions |
//! | anything else | ignored |
//!
//! The partner comes from a Tribute click id in the order's note
//! attributes (`tribute_click_id` or `tid`, set by the storefront from the
//! `tid` in the landing URL), else from the `tid` query parameter of the
//! order's `landing_site`.
//!
//! Settings: `tolerance_seconds`, how old a delivery's
//! `x-shopify-triggered-at` may be (default 48 hours, Shopify's retry period).
//! Errors name the field in the order or refund, e.g. `total_price`.

use serde_json::{Map, Value};

use super::{
    click_id, currency, id_text, major_amount, rfc3339, settings_map, text, tolerance_seconds,
    Inbound, InboundConversion, InboundRefund, RefundKind,
};
use crate::identity::RawIdentifiers;
use crate::tracking::Product;
use crate::FieldError;

const KEYS: &[&str] = &["tolerance_seconds"];

/// Check a Shopify integration's settings (`tolerance_seconds` only).
pub fn check_settings(settings: &Value) -> Result<(), FieldError> {
    settings_map(settings, KEYS)?;
    tolerance_seconds(settings, 0).map(|_| ())
}

/// Read a Shopify delivery of `topic` (the `x-shopify-topic` header).
/// No setting changes how a body reads (`settings` is for symmetry with
/// the other providers).
pub fn interpret(_settings: &Value, topic: &str, json: &Value) -> Result<Vec<Inbound>, FieldError> {
    if !json.is_object() {
        return Err(FieldError::new("body", "must be a JSON object"));
    }
    Ok(match topic.trim() {
        "orders/paid" => vec![order_paid(json)?],
        "refunds/create" => vec![refund_created(json)?],
        other => vec![Inbound::Ignored(format!(
            "shopify topic {other} is not acted on"
        ))],
    })
}

fn order_paid(order: &Value) -> Result<Inbound, FieldError> {
    let id = id_text(order.get("id")).ok_or_else(|| FieldError::new("id", "is required"))?;
    let currency = currency("currency", text(order, "currency"))?;
    let exponent = currency.exponent();
    let total = order
        .get("total_price")
        .filter(|v| !v.is_null())
        .ok_or_else(|| FieldError::new("total_price", "is required"))?;
    let value = major_amount("total_price", total, exponent)?;

    let mut refs = Vec::new();
    for key in ["admin_graphql_api_id", "name"] {
        if let Some(r) = text(order, key) {
            if r != id && !refs.iter().any(|x| x == r) {
                refs.push(r.to_owned());
            }
        }
    }
    let customer = order.get("customer").filter(|c| c.is_object());
    let ids = RawIdentifiers {
        email: text(order, "email")
            .or_else(|| customer.and_then(|c| text(c, "email")))
            .map(str::to_owned),
        customer_id: customer.and_then(|c| id_text(c.get("id"))),
        ..Default::default()
    };
    let click = note_attribute_click_id(order).or_else(|| {
        text(order, "landing_site").and_then(|site| click_id(query_tid(site).as_deref()))
    });
    let coupon = order
        .get("discount_codes")
        .and_then(Value::as_array)
        .and_then(|codes| codes.iter().find_map(|c| text(c, "code")))
        .map(str::to_owned);
    let occurred_at = match text(order, "processed_at") {
        Some(t) => Some(rfc3339("processed_at", t)?),
        None => text(order, "created_at")
            .map(|t| rfc3339("created_at", t))
            .transpose()?,
    };
    let mut metadata = Map::new();
    if order.get("test").and_then(Value::as_bool) == Some(true) {
        metadata.insert("shopify_test".into(), true.into());
    }
    if let Some(source) = text(order, "source_name") {
        metadata.insert("shopify_source".into(), source.into());
    }
    Ok(Inbound::Conversion(InboundConversion {
        external_id: id,
        refs,
        value,
        currency: currency.as_str().to_owned(),
        ids,
        click_id: click,
        coupon,
        products: line_items(order, exponent),
        occurred_at,
        metadata,
    }))
}

/// The click id from `note_attributes: [{name, value}]`.
fn note_attribute_click_id(order: &Value) -> Option<String> {
    order
        .get("note_attributes")?
        .as_array()?
        .iter()
        .filter(|a| matches!(text(a, "name"), Some("tribute_click_id" | "tid")))
        .find_map(|a| click_id(text(a, "value")))
}

/// The `tid` query parameter of a landing site, which Shopify reports as
/// a path and query (`/products/x?tid=clk_…`) or sometimes a full URL.
fn query_tid(site: &str) -> Option<String> {
    let base = url::Url::parse("https://shop.invalid/").expect("a valid base URL");
    let parsed = base.join(site).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "tid")
        .map(|(_, v)| v.into_owned())
}

/// The order's lines as products (sku, else product or variant id; line
/// amount = price × quantity), when every line reads as one; else none.
fn line_items(order: &Value, exponent: u8) -> Vec<Product> {
    let Some(items) = order.get("line_items").and_then(Value::as_array) else {
        return Vec::new();
    };
    let product = |(i, line): (usize, &Value)| {
        let sku = text(line, "sku")
            .map(str::to_owned)
            .or_else(|| id_text(line.get("product_id")))
            .or_else(|| id_text(line.get("variant_id")))?;
        let quantity = line.get("quantity").and_then(Value::as_i64)?;
        let price = major_amount("price", line.get("price")?, exponent).ok()?;
        let p = Product {
            sku,
            quantity,
            amount: price.checked_mul(quantity)?,
        };
        p.validate(i).ok().map(|()| p)
    };
    items
        .iter()
        .enumerate()
        .map(product)
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

fn refund_created(refund: &Value) -> Result<Inbound, FieldError> {
    let id = id_text(refund.get("id")).ok_or_else(|| FieldError::new("id", "is required"))?;
    let order_id = id_text(refund.get("order_id"))
        .ok_or_else(|| FieldError::new("order_id", "is required"))?;
    let transactions: &[Value] = refund
        .get("transactions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut total: i64 = 0;
    let mut refund_currency = None;
    for (i, t) in transactions.iter().enumerate() {
        if text(t, "kind") != Some("refund") || text(t, "status") != Some("success") {
            continue;
        }
        let field = |k: &str| format!("transactions[{i}].{k}");
        let c = currency(&field("currency"), text(t, "currency"))?;
        if refund_currency.is_some_and(|first| first != c) {
            return Err(FieldError::new(
                field("currency"),
                "differs from the refund's other transactions",
            ));
        }
        refund_currency = Some(c);
        let amount = t
            .get("amount")
            .filter(|v| !v.is_null())
            .ok_or_else(|| FieldError::new(field("amount"), "is required"))?;
        let amount = major_amount(&field("amount"), amount, c.exponent())?;
        total = total
            .checked_add(amount)
            .and_then(|t| crate::money::check_amount("transactions", t).ok())
            .ok_or_else(|| FieldError::new("transactions", "the amounts add up to too much"))?;
    }
    let Some(refund_currency) = refund_currency else {
        return Ok(Inbound::Ignored(
            "refund with no successful transaction".into(),
        ));
    };
    if total == 0 {
        return Ok(Inbound::Ignored("zero-amount refund".into()));
    }
    let reason = match text(refund, "note") {
        Some(note) => format!("refunded in Shopify: {note}"),
        None => "refunded in Shopify".to_owned(),
    };
    Ok(Inbound::Refund(InboundRefund {
        external_id: id,
        of: vec![order_id],
        amount: total,
        currency: refund_currency.as_str().to_owned(),
        kind: RefundKind::Refund,
        reason,
        cumulative: false,
    }))
}
