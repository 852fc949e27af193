//! What a snippet batch means: each event becomes a stored event or, for a
//! conversion, a `NewConversion` read by the e-commerce mapper Segment uses
//! too; events are written first, then conversions are recorded.

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tribute_core::attribution::TouchKind;
use tribute_core::conversion::{reported_status, scrub_contact, Commerce, NewConversion, Reporter};
use tribute_core::coupon::CouponCode;
use tribute_core::identity::{email_domain, Claim, RawIdentifiers};
use tribute_core::program::Program;
use tribute_core::tracking::{parse_click_id, Event, TrackMeaning, TrackingSettings};
use tribute_core::FieldError;

use super::{tracking, MAX_EVENTS};
use crate::http::extract::field_of;
use crate::http::{ApiError, ApiResult};
use crate::ingest::{EventInput, UnknownVia};
use crate::services::conversions::{in_program_currency, record};
use crate::AppState;

/// Oldest an event may be when it arrives (the snippet sends its age).
const MAX_AGE_MS: u64 = 24 * 3600 * 1000;

/// One event as the snippet sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnippetEvent {
    #[serde(rename = "type")]
    event_type: String,
    event_id: Option<String>,
    name: Option<String>,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    email: Option<String>,
    click_id: Option<String>,
    via: Option<String>,
    coupon: Option<String>,
    /// Milliseconds since the event happened: an age, not a time, because
    /// the visitor's clock may be wrong.
    ago: Option<u64>,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnippetBatch {
    #[allow(dead_code)]
    key: Option<String>,
    events: Vec<Value>,
}

#[derive(Serialize)]
pub(super) struct Collected {
    /// Events stored by this request.
    accepted: usize,
    /// Events already stored (a retried batch): ignored.
    duplicates: usize,
    /// Conversions recorded (or found again, for a retry).
    conversions: usize,
}

/// Deserialize `value` as `T`, naming the field at fault under `prefix`.
fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = field_of(&path, &message).map(|f| format!("{prefix}{f}"));
        let field = field.or_else(|| Some(prefix.trim_end_matches('.').to_owned()));
        ApiError::bad_request(field.filter(|f| !f.is_empty()), message)
    })
}

/// The same error, its field under `prefix` (e.g. `events[2].`).
fn prefixed(e: ApiError, prefix: &str) -> ApiError {
    match e {
        ApiError::Invalid(f) => {
            let field = format!("{prefix}{}", f.field);
            ApiError::Invalid(f.at(field))
        }
        ApiError::BadRequest {
            field: Some(f),
            message,
        } => ApiError::bad_request(Some(format!("{prefix}{f}")), message),
        other => other,
    }
}

/// What one snippet event becomes.
enum Item {
    Event(Box<Event>),
    Conversion(Box<NewConversion>),
}

pub(super) async fn ingest(
    state: &AppState,
    program: &Program,
    value: Value,
) -> ApiResult<Collected> {
    let batch: SnippetBatch = from_value(value, "")?;
    if batch.events.is_empty() {
        return Err(ApiError::bad_request(Some("events".into()), "is empty"));
    }
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::TooLarge {
            message: format!("at most {MAX_EVENTS} events per request"),
        });
    }
    let settings = tracking(state, program).await?;
    let now = Utc::now();
    let mut items = Vec::with_capacity(batch.events.len());
    for (i, raw) in batch.events.into_iter().enumerate() {
        let prefix = format!("events[{i}].");
        let e: SnippetEvent = from_value(raw, &prefix)?;
        items.push(
            item(state, program, &settings, e, now)
                .await
                .map_err(|err| prefixed(err, &prefix))?,
        );
    }
    let mut events = Vec::new();
    let mut conversions = Vec::new();
    for item in items {
        match item {
            Item::Event(e) => events.push(*e),
            Item::Conversion(c) => conversions.push(*c),
        }
    }
    let total = events.len();
    let accepted = if events.is_empty() {
        0
    } else {
        state.events.write(events).await?.len()
    };
    let recorded = conversions.len();
    for new in conversions {
        record(state, program.clone(), new).await?;
    }
    Ok(Collected {
        accepted,
        duplicates: total - accepted,
        conversions: recorded,
    })
}

async fn item(
    state: &AppState,
    program: &Program,
    settings: &TrackingSettings,
    e: SnippetEvent,
    now: DateTime<Utc>,
) -> ApiResult<Item> {
    let ago = e.ago.unwrap_or(0);
    if ago > MAX_AGE_MS {
        return Err(FieldError::new("ago", "must be at most one day (86400000 ms)").into());
    }
    let occurred_at = now - Duration::milliseconds(ago as i64);
    let meaning = match (e.event_type.as_str(), e.name.as_deref()) {
        ("conversion", _) => TrackMeaning::Conversion,
        ("custom", Some(name)) => settings.meaning(name),
        _ => TrackMeaning::Custom,
    };
    let mut properties = e.properties;
    // Kept in clear only when the owner asked for it; the hash always is.
    scrub_contact(&mut properties, false);
    if settings.store_email {
        if let Some(email) = e.email.as_deref().filter(|m| !m.trim().is_empty()) {
            properties.insert("email".into(), Value::String(email.trim().to_owned()));
        }
    }
    if meaning == TrackMeaning::Conversion {
        let event_id = e.event_id.as_deref().map(str::trim).unwrap_or("");
        if event_id.is_empty() || event_id.len() > 180 {
            return Err(FieldError::new(
                "event_id",
                "a conversion needs an event_id of 1 to 180 characters",
            )
            .into());
        }
        tribute_core::text::check_plain_text("event_id", event_id)?;
        let order = Commerce::from_properties(&properties, program.settings.currency)?;
        let coupon = match e.coupon.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(c) => Some(CouponCode::parse(c).map_err(|err| err.at("coupon"))?),
            None => order.coupon,
        };
        let new = NewConversion {
            program_id: program.id.clone(),
            reporter: Reporter::Snippet,
            order_id: order.order_id,
            // A retried batch must find the first conversion, not make a second.
            idempotency_key: Some(event_id.to_owned()),
            value: order.value,
            status: reported_status("status", Reporter::Snippet, None)?,
            email_domain: email_domain(e.email.as_deref()),
            ids: RawIdentifiers {
                anonymous_id: e.anonymous_id,
                user_id: e.user_id,
                email: e.email,
                ..RawIdentifiers::default()
            }
            .parse()?,
            // Whatever key the page holds, anyone could have sent this.
            claim: Claim::Unverified,
            click_id: parse_click_id("click_id", e.click_id.as_deref())?,
            coupon,
            products: order.products,
            occurred_at,
            fingerprint: None,
            metadata: Default::default(),
        };
        // Checked now, before the batch's events are written: a currency
        // without a rate refuses the whole batch and writes nothing.
        in_program_currency(
            state,
            program,
            new.value,
            &new.products,
            new.occurred_at,
            "properties.",
        )
        .await?;
        return Ok(Item::Conversion(Box::new(new)));
    }
    let event_type = match meaning {
        TrackMeaning::Lead => "lead".to_owned(),
        _ => e.event_type,
    };
    let coupon = match e.coupon.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(c) => Some(CouponCode::parse(c).map_err(|err| err.at("coupon"))?),
        None => None,
    };
    if let Some(c) = &coupon {
        properties.insert("coupon".into(), Value::String(c.as_str().to_owned()));
    }
    let input = EventInput {
        event_type,
        event_id: e.event_id,
        name: e.name,
        anonymous_id: e.anonymous_id,
        user_id: e.user_id,
        email: e.email,
        email_hash: None,
        customer_id: None,
        phone: None,
        phone_hash: None,
        click_id: e.click_id,
        via: e.via,
        partner_id: None,
        occurred_at: Some(occurred_at.to_rfc3339()),
        properties,
        program_id: None,
    };
    let mut event = input
        .into_event(
            state,
            program,
            now,
            "",
            UnknownVia::Ignore,
            Claim::Unverified,
        )
        .await?;
    // A coupon in the landing URL is a touch of its partner, like `via`.
    if let (None, Some(code)) = (&event.partner, &coupon) {
        if let Some(c) = state.store.coupon_by_code(&program.id, code).await? {
            event.partner = Some((c.partner_id, TouchKind::Coupon));
        }
    }
    Ok(Item::Event(Box::new(event)))
}
