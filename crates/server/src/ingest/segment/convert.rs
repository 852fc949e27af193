//! What Segment messages mean to Tribute: each checked message becomes
//! events (identities, leads, page views, custom tracks) and, for a track
//! the program maps to a conversion, a conversion with its order lines.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tribute_core::attribution::TouchKind;
use tribute_core::conversion::{scrub_contact, Commerce, NewConversion, Reporter};
use tribute_core::identity::{Claim, Identifiers, RawIdentifiers};
use tribute_core::ids::{ClickId, EventId, PartnerId};
use tribute_core::link::CLICK_ID_PARAM;
use tribute_core::program::Program;
use tribute_core::text::{check_plain_text, PlainText};
use tribute_core::tracking::{
    parse_click_id, ConversionStatus, Event, EventType, TrackMeaning, TrackingSettings,
};
use tribute_core::FieldError;

use super::message::{bad, id_text, parse_time, query_param, text_of, Kind, Located};
use crate::http::error::{ApiError, ApiResult};
use crate::ingest::{parse_occurred_at, resolve_via};
use crate::services::conversions::in_program_currency;
use crate::AppState;

/// Longest `messageId` kept: derived external ids add a short suffix and
/// must stay within the store's 200 characters.
const MAX_MESSAGE_ID: usize = 180;

/// The query parameter naming a partner on a landing URL.
const VIA_PARAM: &str = "via";

/// A request being turned into events and conversions.
pub(super) struct Ctx<'a> {
    pub(super) state: &'a AppState,
    pub(super) program: &'a Program,
    pub(super) settings: &'a TrackingSettings,
    pub(super) now: DateTime<Utc>,
    pub(super) events: Vec<Event>,
    /// Who the write key says is reporting (a browser, or the owner's backend).
    pub(super) reporter: Reporter,
    /// Who vouches for the messages' identifiers: unverified when the write
    /// key is publishable (anyone may have read it).
    pub(super) claim: Claim,
    pub(super) conversions: Vec<NewConversion>,
}

/// A value and the field of the message (Segment naming) it came from.
type Sourced = Option<(String, String)>;

/// Identity fields of a message, each with the field it came from.
#[derive(Default)]
struct RawIds {
    anonymous_id: Sourced,
    user_id: Sourced,
    email: Sourced,
    phone: Sourced,
}

impl RawIds {
    fn parse(&self) -> Result<Identifiers, FieldError> {
        let value = |s: &Sourced| s.as_ref().map(|(_, v)| v.clone());
        let field = |s: &Sourced, default: &str| {
            s.as_ref()
                .map_or_else(|| default.to_owned(), |(f, _)| f.clone())
        };
        RawIdentifiers {
            anonymous_id: value(&self.anonymous_id),
            user_id: value(&self.user_id),
            email: value(&self.email),
            phone: value(&self.phone),
            ..Default::default()
        }
        .parse()
        .map_err(|e| {
            let at = match e.field.as_str() {
                "anonymous_id" => field(&self.anonymous_id, "anonymousId"),
                "user_id" => field(&self.user_id, "userId"),
                "email" => field(&self.email, "email"),
                "phone" => field(&self.phone, "phone"),
                other => other.to_owned(),
            };
            e.at(at)
        })
    }
}

/// A track event or page name: trimmed plain text, at most 200 characters.
fn event_name(v: Option<String>, field: &str) -> Result<Option<String>, FieldError> {
    PlainText::parse_optional(field, v.as_deref(), 200)
}

/// Copy `map` without contact details in clear (unless the program keeps them).
fn scrub(map: Option<Map<String, Value>>, keep_email: bool) -> Map<String, Value> {
    let mut map = map.unwrap_or_default();
    scrub_contact(&mut map, keep_email);
    map
}

impl Ctx<'_> {
    /// Check one message and add what it means to the plan.
    pub(super) async fn message(&mut self, located: Located) -> ApiResult<()> {
        let Located {
            prefix,
            kind,
            message: m,
            batch_sent_at,
        } = located;
        // Every field is named from the message; the prefix says which one.
        let at = |e: FieldError| bad(FieldError::new(format!("{prefix}{}", e.field), e.message));

        let message_id = id_text(m.message_id);
        if message_id
            .as_ref()
            .is_some_and(|id| id.len() > MAX_MESSAGE_ID)
        {
            return Err(at(FieldError::new(
                "messageId",
                format!("must be at most {MAX_MESSAGE_ID} characters"),
            )));
        }
        if let Some(id) = &message_id {
            check_plain_text("messageId", id).map_err(at)?;
        }
        let occurred_at = self
            .occurred_at(
                m.timestamp.as_deref(),
                m.original_timestamp.as_deref(),
                m.sent_at.as_deref(),
                batch_sent_at,
            )
            .map_err(at)?;

        let context = m.context.unwrap_or_default();
        let page = context.page.unwrap_or_default();
        let traits_of = |key: &str| -> Result<Sourced, FieldError> {
            if kind == Kind::Identify {
                let field = format!("traits.{key}");
                if let Some(v) = text_of(m.traits.as_ref(), key, &field)? {
                    return Ok(Some((field, v)));
                }
            }
            let field = format!("context.traits.{key}");
            Ok(text_of(context.traits.as_ref(), key, &field)?.map(|v| (field, v)))
        };
        let mut email = traits_of("email").map_err(at)?;
        let phone = traits_of("phone").map_err(at)?;
        if email.is_none() && kind == Kind::Track {
            email = text_of(m.properties.as_ref(), "email", "properties.email")
                .map_err(at)?
                .map(|v| ("properties.email".to_owned(), v));
        }
        let ids = RawIds {
            anonymous_id: id_text(m.anonymous_id).map(|v| ("anonymousId".to_owned(), v)),
            user_id: id_text(m.user_id).map(|v| ("userId".to_owned(), v)),
            email,
            phone,
        };

        // Landing URLs: the page's own (`properties.url` of a page call),
        // then the context's. A malformed `tid` in a URL is ignored (visitors
        // edit URLs); an explicit `properties.tid` must be well formed.
        let mut urls: Vec<String> = Vec::new();
        if matches!(kind, Kind::Page | Kind::Screen) {
            if let Some(u) = text_of(m.properties.as_ref(), "url", "properties.url").map_err(at)? {
                urls.push(u);
            }
        }
        urls.extend(page.url);
        urls.extend(page.search);
        let click_id =
            match text_of(m.properties.as_ref(), CLICK_ID_PARAM, "properties.tid").map_err(at)? {
                Some(tid) => parse_click_id("properties.tid", Some(&tid)).map_err(at)?,
                None => urls
                    .iter()
                    .filter_map(|u| query_param(u, CLICK_ID_PARAM))
                    .find_map(|tid| parse_click_id("tid", Some(&tid)).ok().flatten()),
            };
        let mut partner: Option<(PartnerId, TouchKind)> = None;
        if let Some(via) = urls.iter().find_map(|u| query_param(u, VIA_PARAM)) {
            // A `via` naming nobody is ignored, as the snippet does.
            if let Some(pid) = resolve_via(self.state, &self.program.id, &via).await? {
                partner = Some((pid, TouchKind::Via));
            }
        }

        let keep_email = self.settings.store_email;
        let base = Event {
            id: EventId::generate_ordered(self.now.timestamp_millis()),
            program_id: self.program.id.clone(),
            external_id: message_id.clone(),
            event_type: EventType::Custom,
            name: None,
            ids: Identifiers::default(),
            claim: self.claim,
            click_id: click_id.clone(),
            partner,
            occurred_at,
            received_at: self.now,
            properties: Value::Object(Map::new()),
        };
        // Every call but alias names its person by userId or anonymousId.
        let person = |ids: &RawIds| -> Result<Identifiers, FieldError> {
            if ids.user_id.is_none() && ids.anonymous_id.is_none() {
                return Err(FieldError::new(
                    "userId",
                    "userId or anonymousId is required",
                ));
            }
            ids.parse()
        };

        match kind {
            Kind::Alias => {
                let user = ids
                    .user_id
                    .clone()
                    .ok_or_else(|| at(FieldError::new("userId", "is required on an alias")))?;
                let previous = id_text(m.previous_id)
                    .map(|v| ("previousId".to_owned(), v))
                    .ok_or_else(|| at(FieldError::new("previousId", "is required on an alias")))?;
                check_plain_text("previousId", &previous.1).map_err(at)?;
                // `previousId` is an anonymous id or an earlier user id; which
                // one, the message does not say. It is linked under both, so a
                // later message carrying it either way finds the same person.
                let mut links = vec![
                    (None, Some(previous.clone()), Some(user.clone())),
                    (
                        Some("previousId"),
                        Some(previous.clone()),
                        Some(previous.clone()),
                    ),
                ];
                if let Some(anon) = ids.anonymous_id.clone().filter(|a| a.1 != previous.1) {
                    links.push((Some("anonymousId"), Some(anon), Some(user.clone())));
                }
                for (suffix, anonymous_id, user_id) in links {
                    let parsed = RawIds {
                        anonymous_id,
                        user_id,
                        ..Default::default()
                    }
                    .parse()
                    .map_err(at)?;
                    self.events.push(Event {
                        id: EventId::generate_ordered(self.now.timestamp_millis()),
                        event_type: EventType::Identify,
                        name: Some("alias".into()),
                        // Each link of one alias is its own event, each
                        // idempotent by the messageId.
                        external_id: match suffix {
                            None => message_id.clone(),
                            Some(s) => message_id.as_ref().map(|id| format!("{id}:{s}")),
                        },
                        ids: parsed,
                        ..base.clone()
                    });
                }
            }
            Kind::Identify => {
                self.events.push(Event {
                    event_type: EventType::Identify,
                    name: Some("identify".into()),
                    ids: person(&ids).map_err(at)?,
                    properties: Value::Object(scrub(m.traits, keep_email)),
                    ..base
                });
            }
            Kind::Group => {
                self.events.push(Event {
                    event_type: EventType::Identify,
                    name: Some("group".into()),
                    ids: person(&ids).map_err(at)?,
                    properties: json!({
                        "groupId": id_text(m.group_id),
                        "traits": scrub(m.traits, keep_email),
                    }),
                    ..base
                });
            }
            Kind::Page | Kind::Screen => {
                let mut props = scrub(m.properties, keep_email);
                if kind == Kind::Screen {
                    props.insert("screen".into(), Value::Bool(true));
                }
                self.events.push(Event {
                    event_type: EventType::PageView,
                    name: event_name(m.name, "name").map_err(at)?,
                    ids: person(&ids).map_err(at)?,
                    properties: Value::Object(props),
                    ..base
                });
            }
            Kind::Track => {
                let event = event_name(m.event, "event")
                    .map_err(at)?
                    .ok_or_else(|| at(FieldError::new("event", "is required on a track")))?;
                let parsed = person(&ids).map_err(at)?;
                let meaning = self.settings.meaning(&event);
                if meaning == TrackMeaning::Conversion {
                    let input = self
                        .conversion(
                            m.properties.as_ref(),
                            parsed.clone(),
                            click_id,
                            occurred_at,
                            message_id,
                        )
                        .map_err(at)?;
                    // Checked now, before any event is written: a currency
                    // without a rate refuses the request and writes nothing.
                    in_program_currency(
                        self.state,
                        self.program,
                        input.value,
                        &input.products,
                        input.occurred_at,
                        "properties.",
                    )
                    .await
                    .map_err(|e| match e {
                        ApiError::Invalid(f) => at(f),
                        other => other,
                    })?;
                    self.conversions.push(input);
                }
                self.events.push(Event {
                    event_type: match meaning {
                        TrackMeaning::Lead => EventType::Lead,
                        // The conversion itself is recorded apart; the track
                        // stays visible as an event.
                        TrackMeaning::Conversion | TrackMeaning::Custom => EventType::Custom,
                    },
                    name: Some(event),
                    ids: parsed,
                    properties: Value::Object(scrub(m.properties, keep_email)),
                    ..base
                });
            }
        }
        Ok(())
    }

    /// When the message happened, corrected for the client's clock as
    /// Segment does: `receivedAt - (sentAt - timestamp)`. Without `sentAt`
    /// the time is taken as given (at most five minutes ahead).
    fn occurred_at(
        &self,
        timestamp: Option<&str>,
        original_timestamp: Option<&str>,
        sent_at: Option<&str>,
        batch_sent_at: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, FieldError> {
        let (field, base) = match (timestamp, original_timestamp) {
            (Some(t), _) => ("timestamp", t),
            (None, Some(t)) => ("originalTimestamp", t),
            (None, None) => return Ok(self.now),
        };
        let sent = match sent_at {
            Some(s) => Some(parse_time("sentAt", s)?),
            None => batch_sent_at,
        };
        // "In the future" is judged by the client's own clock when the
        // client said what that clock read when it sent.
        let at = parse_occurred_at(field, Some(base), sent.unwrap_or(self.now))?;
        let corrected = match sent {
            Some(sent) => at + (self.now - sent),
            None => return Ok(at),
        };
        // The correction comes from the client's `sentAt`: the corrected
        // time must pass the same bounds as any other.
        parse_occurred_at(field, Some(&corrected.to_rfc3339()), self.now).map_err(|e| {
            FieldError::new(
                "sentAt",
                format!("moves `{field}` out of bounds: {}", e.message),
            )
        })
    }

    /// The conversion an `Order Completed` (or any mapped) track records:
    /// its order from the e-commerce properties (the mapper the snippet
    /// uses too), its person from the message's identifiers.
    fn conversion(
        &self,
        props: Option<&Map<String, Value>>,
        person: Identifiers,
        click_id: Option<ClickId>,
        occurred_at: DateTime<Utc>,
        message_id: Option<String>,
    ) -> Result<NewConversion, FieldError> {
        let empty = Map::new();
        let order =
            Commerce::from_properties(props.unwrap_or(&empty), self.program.settings.currency)?;
        Ok(NewConversion {
            program_id: self.program.id.clone(),
            reporter: self.reporter,
            // Without an order id, the messageId makes a retry idempotent.
            order_id: order.order_id.or(message_id),
            idempotency_key: None,
            value: order.value,
            // A write key may be public (analytics.js): the owner approves.
            // Segment has no status: the owner approves, whoever the sender.
            status: ConversionStatus::Pending,
            ids: person,
            // Segment's traits e-mail is hashed with the person before it
            // gets here: the disposable-address rule has no domain to read.
            email_domain: None,
            claim: self.claim,
            click_id,
            coupon: order.coupon,
            products: order.products,
            occurred_at,
            fingerprint: None,
            metadata: Default::default(),
        })
    }
}
