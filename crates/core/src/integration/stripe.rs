//! Stripe events, as Stripe sends them (`{id, object: "event", type,
//! created, data: {object: {…}}, livemode, api_version}`), read into
//! Tribute's actions.
//!
//! | event type | becomes |
//! |---|---|
//! | `checkout.session.completed`, `checkout.session.async_payment_succeeded` | a conversion, once paid |
//! | `invoice.paid` | a conversion (`recurring: true` for a subscription's later invoice) |
//! | `charge.refunded` | a refund per listed refund, else one cumulative refund |
//! | `charge.dispute.created` | a chargeback |
//! | `customer.created`, `customer.updated` | identifiers seen together |
//!
//! A subscription's first payment arrives twice, as a completed checkout
//! session and as its first paid invoice: both use the invoice id as the
//! order id, so they are one conversion. Every other id Stripe may later
//! name the sale by (session, payment intent, invoice, subscription,
//! charge) is kept in [`InboundConversion::refs`] so a refund or dispute
//! naming any of them finds it.
//!
//! The partner comes from a Tribute click id (`clk_…`) the owner put in
//! the session's or the customer's `metadata.tribute_click_id`, or in the
//! Checkout `client_reference_id` (which is otherwise taken for the
//! visitor's anonymous id). Stripe takes no mapping settings.
//!
//! Errors name the field's path in the event, e.g. `data.object.amount_total`.

use serde_json::Value;

use super::{
    click_id, currency, id_text, sale_metadata, settings_map, text, unix_seconds, Inbound,
    InboundConversion, InboundIdentify, InboundRefund, RefundKind,
};
use crate::identity::RawIdentifiers;
use crate::money::check_amount;
use crate::tracking::Product;
use crate::FieldError;

/// Stripe integrations take no settings: `{}` or null.
pub fn check_settings(settings: &Value) -> Result<(), FieldError> {
    settings_map(settings, &[]).map(|_| ())
}

/// Read a Stripe event.
pub fn interpret(json: &Value) -> Result<Vec<Inbound>, FieldError> {
    let event_type = text(json, "type").ok_or_else(|| FieldError::new("type", "is required"))?;
    let object = json
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or_else(|| FieldError::new("data.object", "is required"))?;
    let livemode = json.get("livemode").and_then(Value::as_bool);
    Ok(match event_type {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            vec![checkout_session(object, livemode)?]
        }
        "invoice.paid" => vec![invoice_paid(object, livemode)?],
        "charge.refunded" => charge_refunded(object)?,
        "charge.dispute.created" => vec![dispute(object)?],
        "customer.created" | "customer.updated" => vec![customer(object)?],
        other => vec![Inbound::Ignored(format!(
            "stripe event type {other} is not acted on"
        ))],
    })
}

/// `data.object.<path>` for error messages.
fn at(path: &str) -> String {
    format!("data.object.{path}")
}

/// An expandable field's id: the string, or the expanded object's `id`.
fn expandable(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => id_text(o.get("id")),
        other => id_text(Some(other)),
    }
}

/// An amount in minor units at `data.object.<key>`.
fn minor(object: &Value, key: &str) -> Result<i64, FieldError> {
    let field = at(key);
    let v = object
        .get(key)
        .filter(|v| !v.is_null())
        .ok_or_else(|| FieldError::new(&field, "is required"))?;
    let n = v
        .as_i64()
        .ok_or_else(|| FieldError::new(&field, "must be an integer in minor units"))?;
    check_amount(&field, n)
}

/// Upper-case currency at `data.object.<key>`.
fn currency_at(object: &Value, key: &str) -> Result<String, FieldError> {
    Ok(currency(&at(key), text(object, key))?.as_str().to_owned())
}

fn created(object: &Value, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, FieldError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => unix_seconds(&at(key), v).map(Some),
    }
}

fn metadata_text<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata").and_then(|m| text(m, key))
}

/// Push every id present and not already there.
fn push_refs(refs: &mut Vec<String>, ids: impl IntoIterator<Item = Option<String>>) {
    for id in ids.into_iter().flatten() {
        if !refs.contains(&id) {
            refs.push(id);
        }
    }
}

fn checkout_session(s: &Value, livemode: Option<bool>) -> Result<Inbound, FieldError> {
    let status = text(s, "payment_status").unwrap_or("unpaid");
    if !matches!(status, "paid" | "no_payment_required") {
        return Ok(Inbound::Ignored(format!(
            "checkout session is not paid yet (payment_status {status}): \
             checkout.session.async_payment_succeeded follows when it is"
        )));
    }
    let value = minor(s, "amount_total")?;
    if value == 0 {
        return Ok(Inbound::Ignored("zero-amount checkout session".into()));
    }
    let session_id =
        id_text(s.get("id")).ok_or_else(|| FieldError::new(at("id"), "is required"))?;
    let payment_intent = expandable(s.get("payment_intent"));
    let invoice = expandable(s.get("invoice"));
    let subscription = expandable(s.get("subscription"));
    // The invoice first: a subscription's first invoice is paid by this
    // session, and its `invoice.paid` must be the same conversion.
    let external_id = invoice
        .clone()
        .or_else(|| payment_intent.clone())
        .unwrap_or_else(|| session_id.clone());
    let mut refs = Vec::new();
    push_refs(
        &mut refs,
        [Some(session_id), payment_intent, invoice, subscription],
    );
    refs.retain(|r| *r != external_id);

    let customer = s.get("customer");
    let email = s
        .get("customer_details")
        .and_then(|d| text(d, "email"))
        .or_else(|| text(s, "customer_email"))
        .map(str::to_owned);
    let mut ids = RawIdentifiers {
        customer_id: expandable(customer),
        email,
        ..Default::default()
    };
    let mut click = click_id(metadata_text(s, "tribute_click_id"));
    if let Some(reference) = text(s, "client_reference_id") {
        match click_id(Some(reference)) {
            Some(c) => {
                click.get_or_insert(c);
            }
            None => ids.anonymous_id = Some(reference.to_owned()),
        }
    }
    if ids.anonymous_id.is_none() {
        ids.anonymous_id = metadata_text(s, "tribute_anonymous_id").map(str::to_owned);
    }
    if click.is_none() {
        click = customer
            .filter(|c| c.is_object())
            .and_then(|c| click_id(metadata_text(c, "tribute_click_id")));
    }
    let coupon = metadata_text(s, "tribute_coupon")
        .or_else(|| metadata_text(s, "coupon"))
        .map(str::to_owned);

    let mut ours = vec![];
    if let Some(mode) = text(s, "mode") {
        ours.push(("stripe_mode", Value::from(mode)));
    }
    if let Some(live) = livemode {
        ours.push(("stripe_livemode", live.into()));
    }
    let metadata = sale_metadata(ours, s.get("metadata"));
    Ok(Inbound::Conversion(InboundConversion {
        external_id,
        refs,
        value,
        currency: currency_at(s, "currency")?,
        ids,
        click_id: click,
        coupon,
        products: Vec::new(),
        occurred_at: created(s, "created")?,
        metadata,
    }))
}

/// The subscription's details on an invoice: `subscription_details` before
/// API version 2025-03-31, `parent.subscription_details` since.
fn subscription_details(inv: &Value) -> Option<&Value> {
    inv.get("subscription_details")
        .filter(|d| d.is_object())
        .or_else(|| {
            inv.pointer("/parent/subscription_details")
                .filter(|d| d.is_object())
        })
}

fn invoice_paid(inv: &Value, livemode: Option<bool>) -> Result<Inbound, FieldError> {
    let id = id_text(inv.get("id")).ok_or_else(|| FieldError::new(at("id"), "is required"))?;
    let value = minor(inv, "amount_paid")?;
    if value == 0 {
        return Ok(Inbound::Ignored("zero-amount invoice".into()));
    }
    let details = subscription_details(inv);
    let subscription = expandable(inv.get("subscription"))
        .or_else(|| details.and_then(|d| expandable(d.get("subscription"))));
    let lines: &[Value] = inv
        .pointer("/lines/data")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let click = click_id(metadata_text(inv, "tribute_click_id"))
        .or_else(|| details.and_then(|d| click_id(metadata_text(d, "tribute_click_id"))))
        .or_else(|| {
            lines
                .iter()
                .find_map(|l| click_id(metadata_text(l, "tribute_click_id")))
        });
    let mut refs = Vec::new();
    push_refs(
        &mut refs,
        [
            expandable(inv.get("payment_intent")),
            expandable(inv.get("charge")),
            subscription,
        ],
    );
    refs.retain(|r| *r != id);

    let customer = inv.get("customer");
    let ids = RawIdentifiers {
        customer_id: expandable(customer),
        email: text(inv, "customer_email").map(str::to_owned),
        anonymous_id: metadata_text(inv, "tribute_anonymous_id").map(str::to_owned),
        ..Default::default()
    };
    let click = click.or_else(|| {
        customer
            .filter(|c| c.is_object())
            .and_then(|c| click_id(metadata_text(c, "tribute_click_id")))
    });

    let reason = text(inv, "billing_reason");
    let mut ours = vec![(
        "recurring",
        Value::from(reason == Some("subscription_cycle")),
    )];
    if let Some(reason) = reason {
        ours.push(("billing_reason", reason.into()));
    }
    if let Some(live) = livemode {
        ours.push(("stripe_livemode", live.into()));
    }
    let metadata = sale_metadata(ours, inv.get("metadata"));
    let occurred_at = match inv.pointer("/status_transitions/paid_at") {
        Some(v) if !v.is_null() => Some(unix_seconds(&at("status_transitions.paid_at"), v)?),
        _ => created(inv, "created")?,
    };
    Ok(Inbound::Conversion(InboundConversion {
        external_id: id,
        refs,
        value,
        currency: currency_at(inv, "currency")?,
        ids,
        click_id: click,
        coupon: metadata_text(inv, "tribute_coupon").map(str::to_owned),
        products: invoice_products(lines),
        occurred_at,
        metadata,
    }))
}

/// The invoice's lines as products, when every line reads as one (a
/// credit line or a proration has a negative amount; a partial list would
/// misstate the order): otherwise none, since products are optional.
fn invoice_products(lines: &[Value]) -> Vec<Product> {
    let product = |(i, line): (usize, &Value)| {
        let sku = expandable(line.pointer("/price/product"))
            .or_else(|| expandable(line.pointer("/pricing/price_details/product")))
            .or_else(|| id_text(line.get("id")))?;
        let p = Product {
            sku,
            quantity: line.get("quantity").and_then(Value::as_i64).unwrap_or(1),
            amount: line.get("amount").and_then(Value::as_i64)?,
        };
        p.validate(i).ok().map(|()| p)
    };
    lines
        .iter()
        .enumerate()
        .map(product)
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

fn charge_refunded(ch: &Value) -> Result<Vec<Inbound>, FieldError> {
    let charge_id =
        id_text(ch.get("id")).ok_or_else(|| FieldError::new(at("id"), "is required"))?;
    let charge_currency = currency_at(ch, "currency")?;
    let mut of = Vec::new();
    push_refs(
        &mut of,
        [
            expandable(ch.get("payment_intent")),
            expandable(ch.get("invoice")),
            Some(charge_id.clone()),
        ],
    );
    let listed = ch.pointer("/refunds/data").and_then(Value::as_array);
    if let Some(refunds) = listed.filter(|r| !r.is_empty()) {
        let mut out = Vec::with_capacity(refunds.len());
        for (i, r) in refunds.iter().enumerate() {
            let field = |k: &str| format!("refunds.data[{i}].{k}");
            // A failed or canceled refund gave nothing back.
            if matches!(text(r, "status"), Some("failed" | "canceled")) {
                continue;
            }
            let id = id_text(r.get("id"))
                .ok_or_else(|| FieldError::new(at(&field("id")), "is required"))?;
            let amount = minor(r, "amount").map_err(|e| e.at(at(&field("amount"))))?;
            if amount == 0 {
                continue;
            }
            let currency = match text(r, "currency") {
                Some(_) => currency_at(r, "currency").map_err(|e| e.at(at(&field("currency"))))?,
                None => charge_currency.clone(),
            };
            let reason = match text(r, "reason") {
                Some(why) => format!("refunded in Stripe: {why}"),
                None => "refunded in Stripe".to_owned(),
            };
            out.push(Inbound::Refund(InboundRefund {
                external_id: id,
                of: of.clone(),
                amount,
                currency,
                kind: RefundKind::Refund,
                reason,
                cumulative: false,
            }));
        }
        if out.is_empty() {
            out.push(Inbound::Ignored(
                "no successful refund on the charge".into(),
            ));
        }
        return Ok(out);
    }
    // API versions since 2022-11-15 do not list the refunds: the charge
    // only says how much has been refunded in all.
    let total = minor(ch, "amount_refunded")?;
    if total == 0 {
        return Ok(vec![Inbound::Ignored(
            "nothing refunded on the charge".into(),
        )]);
    }
    Ok(vec![Inbound::Refund(InboundRefund {
        external_id: format!("{charge_id}:refunded:{total}"),
        of,
        amount: total,
        currency: charge_currency,
        kind: RefundKind::Refund,
        reason: "refunded in Stripe (total refunded so far on the charge)".into(),
        cumulative: true,
    })])
}

fn dispute(d: &Value) -> Result<Inbound, FieldError> {
    let id = id_text(d.get("id")).ok_or_else(|| FieldError::new(at("id"), "is required"))?;
    let amount = minor(d, "amount")?;
    if amount == 0 {
        return Ok(Inbound::Ignored("zero-amount dispute".into()));
    }
    let mut of = Vec::new();
    push_refs(
        &mut of,
        [
            expandable(d.get("payment_intent")),
            expandable(d.get("charge")),
        ],
    );
    if of.is_empty() {
        return Err(FieldError::new(at("charge"), "is required"));
    }
    Ok(Inbound::Refund(InboundRefund {
        external_id: id,
        of,
        amount,
        currency: currency_at(d, "currency")?,
        kind: RefundKind::Chargeback,
        reason: format!(
            "disputed in Stripe: {}",
            text(d, "reason").unwrap_or("no reason given")
        ),
        cumulative: false,
    }))
}

fn customer(c: &Value) -> Result<Inbound, FieldError> {
    let id = id_text(c.get("id")).ok_or_else(|| FieldError::new(at("id"), "is required"))?;
    let click = click_id(metadata_text(c, "tribute_click_id"));
    let anonymous_id = metadata_text(c, "tribute_anonymous_id").map(str::to_owned);
    let email = text(c, "email").map(str::to_owned);
    if click.is_none() && anonymous_id.is_none() && email.is_none() {
        return Ok(Inbound::Ignored(
            "customer carries no click id, anonymous id or e-mail".into(),
        ));
    }
    Ok(Inbound::Identify(InboundIdentify {
        external_id: id.clone(),
        ids: RawIdentifiers {
            customer_id: Some(id),
            email,
            anonymous_id,
            ..Default::default()
        },
        click_id: click,
    }))
}
