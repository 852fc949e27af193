//! Recording a conversion: every way in (the API, postbacks, Segment, the
//! snippet) hands a parsed [`NewConversion`] to [`record`], which converts
//! its value into the program's currency ([`in_program_currency`]), finds
//! the person and their touches, attributes with the program's model, and
//! commits the conversion with its credits before anyone is answered.
//!
//! Money-path work must finish once started: a client that hangs up drops
//! its request future at whatever `.await` it had reached, so the work runs
//! on a task of its own and the request only waits for it.

use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use tribute_core::attribution::{attribute, Touch, TouchKind};
use tribute_core::conversion::{NewConversion, Reporter};
use tribute_core::fx::{convert, convert_at, Converted};
use tribute_core::identity::click_key;
use tribute_core::ids::{ConversionId, PersonId};
use tribute_core::money::Money;
use tribute_core::program::Program;
use tribute_core::tracking::{Conversion, ConversionStatus, Product};
use tribute_core::FieldError;
use tribute_store::Recorded::{Exists, Refused, Written};
use tribute_store::{Journey, NewTouch, Recording, Screening, StoreError};

use super::fit::{fit_for, program_model};
use crate::http::conversion::Fresh;
use crate::http::{ApiError, ApiResult};
use crate::AppState;

/// A recorded conversion, and whether the request was a retry of an
/// earlier one (then `conversion` is the first one's).
#[derive(Debug)]
pub struct Recorded {
    pub conversion: Conversion,
    pub replayed: bool,
    /// Its partners' credits and its fraud risk as written, when it was
    /// written now (a replay's are read when shown).
    pub fresh: Option<Fresh>,
}

/// Record `new` for `program`, to completion even if the caller goes away.
pub async fn record(state: &AppState, program: Program, new: NewConversion) -> ApiResult<Recorded> {
    let state = state.clone();
    tokio::spawn(async move { record_now(&state, &program, new).await })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("recording task failed: {e}")))?
}

/// The conversion a retry of `new` finds, if any: same order id or same
/// idempotency key. The same idempotency key with a different request is
/// refused (`idempotency_key_reused`), as Stripe does.
async fn earlier(state: &AppState, new: &NewConversion) -> ApiResult<Option<Recorded>> {
    let first = state
        .store
        .conversion_by_keys(
            &new.program_id,
            new.external_id().as_deref(),
            new.stored_idempotency_key().as_deref(),
        )
        .await?;
    first.map(|f| replay(new, f)).transpose()
}

/// The answer to a retry of `first`.
fn replay(new: &NewConversion, first: Conversion) -> ApiResult<Recorded> {
    let key = new.stored_idempotency_key();
    let same_key = key.is_some() && first.idempotency_key == key;
    if same_key && new.fingerprint.is_some() && first.request_hash != new.fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(Recorded {
        conversion: first,
        replayed: true,
        fresh: None,
    })
}

/// A value reported in another currency than the program's, converted.
#[derive(Debug)]
pub struct InProgramCurrency {
    /// The original amount, the rate used and the converted amount.
    pub fx: Converted,
    /// The order's lines, each converted at the same rate (rules that pay
    /// line by line compute in the program's currency too).
    pub products: Vec<Product>,
}

/// `value` and its `products` in `program`'s currency, with the owner's
/// rate in force at `at` (`None`: already in it). Without a rate on file
/// the error names `{prefix}currency`, and nothing has been written: the
/// ways in that write events in the same request (the snippet, Segment)
/// call this before writing anything.
pub async fn in_program_currency(
    state: &AppState,
    program: &Program,
    value: Money,
    products: &[Product],
    at: DateTime<Utc>,
    prefix: &str,
) -> ApiResult<Option<InProgramCurrency>> {
    let to = program.settings.currency;
    if value.currency == to {
        return Ok(None);
    }
    // The time as it will be stored, so a check before recording picks the
    // rate recording will.
    let at = at.trunc_subsecs(3);
    let named =
        |field: String, e: FieldError| FieldError::new(format!("{prefix}{field}"), e.message);
    let rates: Vec<_> = state
        .store
        .fx_rate_at(&program.id, value.currency, to, at)
        .await?
        .into_iter()
        .collect();
    let fx = convert_at(&rates, value, to, at).map_err(|e| named(e.field.clone(), e))?;
    let products = match rates.first() {
        Some(rate) => products
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let line = convert(Money::new(p.amount, value.currency), rate)
                    .map_err(|e| named(format!("products[{i}].amount"), e))?;
                Ok(Product {
                    amount: line.minor,
                    ..p.clone()
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?,
        None => products.to_vec(),
    };
    Ok(Some(InProgramCurrency { fx, products }))
}

/// What the fraud rules know of the buyer beyond the conversion: the
/// e-mail's domain, the keyed hash of an `ip` the owner's backend put in
/// the metadata (taken out: the address itself is never stored), a
/// `payment_fingerprint` from the metadata, and the program's statistics.
fn screening(
    state: &AppState,
    program: &Program,
    new: &NewConversion,
) -> (serde_json::Map<String, serde_json::Value>, Screening) {
    let mut metadata = new.metadata.clone();
    let ip = metadata
        .remove("ip")
        .and_then(|v| v.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok()));
    let screening = Screening {
        email_domain: new.email_domain.clone(),
        ip_hash: ip.map(|ip| state.hasher.ip_key(ip)),
        payment_fingerprint: metadata
            .get("payment_fingerprint")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        stats: state.fraud.stats(&state.store, &program.id),
    };
    (metadata, screening)
}

async fn record_now(
    state: &AppState,
    program: &Program,
    new: NewConversion,
) -> ApiResult<Recorded> {
    // A retry is answered with the first conversion. The store looks for it
    // in the transaction that would write this one; only a value in
    // another currency is looked up first, so that a retry is never
    // refused for want of a rate.
    if new.value.currency != program.settings.currency {
        if let Some(first) = earlier(state, &new).await? {
            return Ok(first);
        }
    }
    // Times are stored to the millisecond: the first answer must show what a
    // replay will read back, or the two bodies differ.
    let now = Utc::now().trunc_subsecs(3);
    let occurred_at = new.occurred_at.trunc_subsecs(3);
    // Before anything is written: no rate on file is a 422 that leaves
    // nothing behind.
    let (value, products, fx) =
        match in_program_currency(state, program, new.value, &new.products, occurred_at, "").await?
        {
            Some(c) => (c.fx.converted, c.products, Some(c.fx)),
            None => (new.value, new.products.clone(), None),
        };
    let id = ConversionId::generate();
    let external_id = new.external_id();
    let idempotency_key = new.stored_idempotency_key();
    let (external_id_key, idempotency_key_key) = (external_id.clone(), idempotency_key.clone());
    // A retried request must not leave a second coupon touch: its id derives
    // from what makes the request idempotent.
    let touch_key = external_id
        .clone()
        .or_else(|| idempotency_key.clone())
        .unwrap_or_else(|| id.to_string());
    let mut extra = Vec::new();
    if let Some(code) = &new.coupon {
        if let Some(c) = state.store.coupon_by_code(&program.id, code).await? {
            extra.push(NewTouch {
                id: format!("coupon:{}:{touch_key}", program.id),
                partner_id: c.partner_id,
                kind: TouchKind::Coupon,
                at: occurred_at,
                is_bot: false,
            });
        }
    }
    // A browser's report of an order the owner's backend already reported
    // is kept as evidence, but the server's conversion is the one that counts.
    let mut status = new.status;
    if new.reporter != Reporter::Server {
        if let Some(order) = &new.order_id {
            let server = state
                .store
                .conversion_by_keys(&program.id, Some(order), None)
                .await?;
            if server.is_some() {
                status = ConversionStatus::Superseded;
            }
        }
    }
    let cfg = program_model(program)?;
    let fit = fit_for(state, &program.id, &cfg, true).await?;
    let click_id = new.click_id.as_ref().map(|c| c.to_string());
    let mut keys = Vec::new();
    if let Some(c) = &click_id {
        keys.push(click_key(c));
    }
    keys.extend(new.ids.keys());
    let journey = Journey {
        program: program.id.clone(),
        keys,
        claim: new.claim,
        click_id: click_id.clone(),
        extra,
    };
    let program_id = program.id.clone();
    let coupon = new.coupon.as_ref().map(|c| c.as_str().to_owned());
    let request_hash = new.fingerprint.clone();
    let customer_key = new
        .ids
        .customer_id
        .as_ref()
        .map(|c| format!("customer:{c}"));
    let (metadata, screening) = screening(state, program, &new);
    // The store may ask again (when its group of conversions is written
    // anew), so the decision clones what it hands over.
    let decide = move |person: PersonId, touches: Vec<Touch>| -> ApiResult<Conversion> {
        let attribution = attribute(&touches, occurred_at, &cfg, fit.as_ref())?;
        Ok(Conversion {
            id: id.clone(),
            program_id: program_id.clone(),
            external_id: external_id.clone(),
            idempotency_key: idempotency_key.clone(),
            person_id: Some(person.clone()),
            status,
            value,
            products: products.clone(),
            click_id: click_id.clone(),
            coupon: coupon.clone(),
            occurred_at,
            received_at: now,
            attribution,
            request_hash: request_hash.clone(),
            customer_key: customer_key
                .clone()
                .or_else(|| Some(format!("person:{person}"))),
            metadata: metadata.clone(),
            fx: fx.clone(),
        })
    };
    let recording = Recording {
        external_id: external_id_key,
        idempotency_key: idempotency_key_key,
        journey,
        supersedes: new.browser_reports(),
        decide: Box::new(decide),
        screening,
    };
    match state.store.record_conversion(recording).await {
        Ok(Written {
            conversion,
            credits,
            risk,
        }) => Ok(Recorded {
            conversion,
            replayed: false,
            fresh: Some(Fresh { credits, risk }),
        }),
        Ok(Exists(first)) => replay(&new, first),
        Ok(Refused(refused)) => Err(refused),
        // Another request with the same key committed first: answer with it.
        Err(StoreError::Conflict { .. }) => Ok(earlier(state, &new)
            .await?
            .ok_or_else(|| anyhow::anyhow!("conflicting conversion vanished"))?),
        Err(e) => Err(e.into()),
    }
}
