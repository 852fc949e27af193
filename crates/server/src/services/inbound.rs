//! Acting on a verified inbound delivery: what the provider's payload asks
//! for (`tribute_core::integration::interpret`) becomes conversions (through
//! the same `services::conversions::record` as every other way in), refunds
//! and chargebacks of the conversion a provider id names, and lead or
//! identify events (through the event writer). Used by `POST /hooks/…` and
//! by a retry by hand.
//!
//! A delivery's actions are each idempotent (a conversion by its order id,
//! a refund by its id, an event by its external id), so processing one
//! again after a failure half-way repeats nothing.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tribute_core::attribution::TouchKind;
use tribute_core::conversion::{
    conversion_value, parse_external_id, parse_metadata, reported_currency, reported_status,
    NewConversion, Reporter, MAX_EXTERNAL_ID,
};
use tribute_core::coupon::CouponCode;
use tribute_core::fx::convert;
use tribute_core::identity::{email_domain, Claim, RawIdentifiers};
use tribute_core::ids::{ClickId, ConversionId, EventId, InboundDeliveryId};
use tribute_core::integration::{
    interpret, Inbound, InboundConversion, InboundRefund, RefundKind as ProviderRefundKind,
};
use tribute_core::money::Money;
use tribute_core::tracking::{parse_click_id, Event, EventType};
use tribute_core::FieldError;
use tribute_store::{InboundStatus, NewRefund, RefundKind, StoredIntegration};

use super::conversions::record;
use crate::http::{ApiError, ApiResult};
use crate::AppState;

/// What processing a delivery did: one JSON item per action, and whether
/// any of them did something.
#[derive(Debug)]
pub struct Processed {
    pub status: InboundStatus,
    pub result: Value,
}

/// Process a verified delivery of `integration`, to completion even if the
/// provider hangs up (on a task of its own).
pub async fn process(
    state: &AppState,
    integration: &StoredIntegration,
    topic: Option<String>,
    body: Vec<u8>,
) -> ApiResult<Processed> {
    let (state, integration) = (state.clone(), integration.clone());
    tokio::spawn(async move { process_now(&state, &integration, topic.as_deref(), &body).await })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("inbound task failed: {e}")))?
}

/// Process a logged delivery and record how it ended: the answer carries
/// the delivery id and what was done; an error is recorded on the
/// delivery, then returned.
pub async fn process_logged(
    state: &AppState,
    integration: &StoredIntegration,
    delivery: &InboundDeliveryId,
    topic: Option<String>,
    body: Vec<u8>,
) -> ApiResult<Value> {
    match process(state, integration, topic, body).await {
        Ok(done) => {
            state
                .store
                .finish_inbound_delivery(delivery, done.status, &done.result, None, Utc::now())
                .await?;
            Ok(json!({
                "status": done.status,
                "delivery_id": delivery,
                "result": done.result,
            }))
        }
        Err(e) => {
            let message = match &e {
                ApiError::Internal(_) => "internal error (see the server log)".to_owned(),
                other => other.to_string(),
            };
            state
                .store
                .finish_inbound_delivery(
                    delivery,
                    InboundStatus::Failed,
                    &Value::Null,
                    Some(&message),
                    Utc::now(),
                )
                .await?;
            Err(e)
        }
    }
}

async fn process_now(
    state: &AppState,
    integration: &StoredIntegration,
    topic: Option<&str>,
    body: &[u8],
) -> ApiResult<Processed> {
    let actions = interpret(integration.kind, &integration.mapping, topic, body)?;
    let now = Utc::now();
    let mut items = Vec::with_capacity(actions.len());
    let mut acted = false;
    for action in actions {
        let item = match action {
            Inbound::Conversion(c) => conversion(state, integration, c, now).await?,
            Inbound::Refund(r) => refund(state, integration, r, now).await?,
            Inbound::Lead(l) => {
                let ids = (l.ids, l.click_id.as_deref());
                event(
                    state,
                    integration,
                    EventType::Lead,
                    &l.external_id,
                    ids,
                    l.occurred_at,
                    now,
                )
                .await?
            }
            Inbound::Identify(i) => {
                let ids = (i.ids, i.click_id.as_deref());
                event(
                    state,
                    integration,
                    EventType::Identify,
                    &i.external_id,
                    ids,
                    None,
                    now,
                )
                .await?
            }
            Inbound::Ignored(reason) => json!({ "action": "ignored", "reason": reason }),
        };
        acted |= item["action"] != "ignored";
        items.push(item);
    }
    Ok(Processed {
        status: if acted {
            InboundStatus::Processed
        } else {
            InboundStatus::Ignored
        },
        result: Value::Array(items),
    })
}

/// A click id the provider carried, if it is one: a malformed value (a
/// customer's typo in metadata) is dropped rather than failing the sale.
fn click_id(v: Option<&str>) -> Option<ClickId> {
    parse_click_id("click_id", v).ok().flatten()
}

/// A provider time, never in the future (clocks differ). A time given to
/// the second (Stripe's, HubSpot's) covers the whole second: its end is
/// taken, so a click earlier in that same second still counts as before
/// the sale.
fn occurred(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    at.map_or(now, |t| {
        let t = if t.timestamp_subsec_nanos() == 0 {
            t + chrono::Duration::milliseconds(999)
        } else {
            t
        };
        t.min(now)
    })
}

async fn conversion(
    state: &AppState,
    integration: &StoredIntegration,
    c: InboundConversion,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let program = state
        .program(&integration.program_id)
        .await?
        .ok_or(ApiError::NotFound("program"))?;
    let currency = reported_currency("currency", &c.currency)?;
    let products = if c
        .products
        .iter()
        .enumerate()
        .all(|(i, p)| p.validate(i).is_ok())
    {
        c.products
    } else {
        Vec::new()
    };
    // Kept in case the sale turns out to be recorded already (see below).
    let click_ids = click_id(c.click_id.as_deref()).map(|_| (c.ids.clone(), c.click_id.clone()));
    let new = NewConversion {
        program_id: program.id.clone(),
        reporter: Reporter::Server,
        order_id: parse_external_id("external_id", Some(&c.external_id), MAX_EXTERNAL_ID)?,
        idempotency_key: None,
        value: conversion_value("value", c.value, currency)?,
        status: reported_status("status", Reporter::Server, None)?,
        ids: c.ids.parse()?,
        email_domain: email_domain(c.ids.email.as_deref()),
        claim: Claim::Verified,
        click_id: click_id(c.click_id.as_deref()),
        coupon: c.coupon.as_deref().and_then(|s| CouponCode::parse(s).ok()),
        products,
        occurred_at: occurred(c.occurred_at, now),
        fingerprint: None,
        metadata: parse_metadata("metadata", c.metadata)?,
    };
    let recorded = record(state, (*program).clone(), new).await?;
    let id = &recorded.conversion.id;
    let refs: Vec<String> = c
        .refs
        .into_iter()
        .filter(|r| parse_external_id("ref", Some(r), MAX_EXTERNAL_ID).is_ok())
        .collect();
    state
        .store
        .save_conversion_refs(&program.id, id, &refs)
        .await?;
    // A provider may report one sale twice in no set order, the click id
    // in only one report (Stripe: a subscription's first `invoice.paid` and
    // its `checkout.session.completed`). When the report without it came
    // first, the sale is recorded already; linking this report's
    // identifiers to the click still lets the customer's later payments
    // (renewals naming only the customer) find the partner.
    if let Some((ids, click)) = click_ids.filter(|_| recorded.replayed) {
        let link = format!("ids-of:{id}");
        let ids = (ids, click.as_deref());
        event(
            state,
            integration,
            EventType::Identify,
            &link,
            ids,
            None,
            now,
        )
        .await?;
    }
    Ok(json!({
        "action": "conversion",
        "conversion_id": id,
        "external_id": recorded.conversion.external_id,
        "replayed": recorded.replayed,
    }))
}

async fn refund(
    state: &AppState,
    integration: &StoredIntegration,
    r: InboundRefund,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let Some(id) = state
        .store
        .conversion_by_ref(&integration.program_id, &r.of)
        .await?
    else {
        let reason = format!("no conversion is known by {}", r.of.join(", "));
        return Ok(json!({ "action": "ignored", "reason": reason }));
    };
    let total = in_conversion_currency(state, &id, &r).await?;
    // A cumulative amount (the total refunded so far on the sale) is
    // refunded as the slice not refunded yet, keyed by where it starts:
    // two deliveries racing from the same point (Stripe sends events
    // concurrently) write one slice, as the store checks the key under the
    // conversion's lock, and the other starts again from the new point.
    // Keyed by the total instead, both would refund from zero.
    for _ in 0..10 {
        let (external_id, amount) = if r.cumulative {
            let prefix = r.external_id.split(":refunded:").next().unwrap_or("");
            let before: i64 = state
                .store
                .refunds_of(&id)
                .await?
                .iter()
                .filter(|f| f.external_id.starts_with(&format!("{prefix}:refunded")))
                .map(|f| f.amount)
                .sum();
            (format!("{prefix}:refunded-from:{before}"), total - before)
        } else {
            (r.external_id.clone(), total)
        };
        if amount <= 0 {
            return Ok(json!({ "action": "ignored", "reason": "nothing more was refunded" }));
        }
        let new = NewRefund {
            conversion_id: id.clone(),
            external_id: parse_external_id("external_id", Some(&external_id), 200)?
                .ok_or_else(|| FieldError::new("external_id", "is required"))?,
            kind: match r.kind {
                ProviderRefundKind::Refund => RefundKind::Refund,
                ProviderRefundKind::Chargeback => RefundKind::Chargeback,
            },
            amount,
            reason: plain_reason(&r.reason),
        };
        let store = state.store.clone();
        let (stored, replayed) =
            tokio::spawn(async move { store.refund_conversion(&new, now).await })
                .await
                .map_err(|e| anyhow::anyhow!("refund task failed: {e}"))??;
        if r.cumulative && replayed {
            continue;
        }
        return Ok(json!({
            "action": stored.kind,
            "refund_id": stored.id,
            "conversion_id": stored.conversion_id,
            "amount": stored.amount,
            "replayed": replayed,
        }));
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "refunds of {id} kept changing while refunding {}",
        r.external_id
    )))
}

/// A provider's refund reason (a merchant's free-text note) as plain text
/// of at most 500 characters: control and bidirectional-control characters
/// become spaces (PostgreSQL text holds no NUL; a reason is shown as one
/// line).
fn plain_reason(reason: &str) -> String {
    let plain: String = reason
        .chars()
        .map(|c| {
            if tribute_core::text::is_forbidden(c) {
                ' '
            } else {
                c
            }
        })
        .take(500)
        .collect();
    plain.trim().to_owned()
}

/// A refund's amount in the currency its conversion is kept in: the
/// program's, converted at the rate the sale was converted with.
async fn in_conversion_currency(
    state: &AppState,
    id: &ConversionId,
    r: &InboundRefund,
) -> ApiResult<i64> {
    let c = state
        .store
        .conversion(id)
        .await?
        .ok_or(ApiError::NotFound("conversion"))?;
    let currency = reported_currency("currency", &r.currency)?;
    if currency == c.value.currency {
        return Ok(r.amount);
    }
    match &c.fx {
        Some(fx) if fx.original.currency == currency => {
            let rate = tribute_core::fx::FxRate::new(
                currency,
                c.value.currency,
                fx.rate,
                fx.rate_effective_at,
            )?;
            Ok(convert(Money::new(r.amount, currency), &rate)?.minor)
        }
        _ => Err(FieldError::new(
            "currency",
            format!(
                "the refund is in {currency}, the conversion in {}",
                c.value.currency
            ),
        )
        .into()),
    }
}

async fn event(
    state: &AppState,
    integration: &StoredIntegration,
    kind: EventType,
    external_id: &str,
    (ids, click): (RawIdentifiers, Option<&str>),
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let external = format!("{}:{external_id}", integration.kind.as_str());
    let e = Event {
        id: EventId::generate_ordered(now.timestamp_millis()),
        program_id: integration.program_id.clone(),
        external_id: parse_external_id("external_id", Some(&external), MAX_EXTERNAL_ID)?,
        event_type: kind,
        name: Some(format!("{} {}", integration.kind.as_str(), kind.as_str())),
        ids: ids.parse()?,
        claim: Claim::Verified,
        click_id: click_id(click),
        partner: None::<(tribute_core::ids::PartnerId, TouchKind)>,
        occurred_at: occurred(at, now),
        received_at: now,
        properties: json!({ "integration_id": integration.id }),
    };
    let event_id = e.id.to_string();
    let stored = state.events.write(vec![e]).await?;
    Ok(json!({
        "action": kind.as_str(),
        "event_id": event_id,
        "replayed": !stored.contains(&event_id),
    }))
}
