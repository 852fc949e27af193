//! Ingestion: events, conversions and postbacks, from the native API, the
//! snippet and Segment-compatible clients.
//!
//! Every way in turns its payload into `tribute_core` values here, then
//! events go through the group-commit writer and conversions are attributed
//! and committed before the request is answered.

pub mod collect;
mod conversions;
pub(crate) mod events;
pub mod hooks;
pub mod postback;
pub mod segment;

use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tribute_core::apikey::Principal;
use tribute_core::attribution::TouchKind;
use tribute_core::identity::{Claim, RawIdentifiers};
use tribute_core::ids::{EventId, PartnerId, ProgramId};
use tribute_core::partner::Slug;
use tribute_core::program::Program;
use tribute_core::text::PlainText;
pub use tribute_core::tracking::parse_occurred_at;
use tribute_core::tracking::{Event, EventType};
use tribute_core::FieldError;

use crate::http::error::{ApiError, ApiResult};
use crate::AppState;

/// Ingestion's routes under `/api/v1` (events and conversions).
pub fn api_router() -> Router<AppState> {
    Router::new()
        .merge(events::router())
        .merge(conversions::router())
}

/// The program an ingesting caller writes to: an ingest key's own program,
/// or (admin keys) the `program_id` of the payload.
pub async fn ingest_program(
    state: &AppState,
    principal: &Principal,
    given: Option<&str>,
) -> ApiResult<Program> {
    let id = match (principal, given) {
        (
            Principal::Ingest {
                program_id: Some(p),
                ..
            },
            None,
        ) => p.clone(),
        (
            Principal::Ingest {
                program_id: Some(p),
                ..
            },
            Some(g),
        ) => {
            if g != p.as_str() {
                return Err(
                    FieldError::new("program_id", "this key writes to another program").into(),
                );
            }
            p.clone()
        }
        (Principal::Admin, Some(g))
        | (
            Principal::Ingest {
                program_id: None, ..
            },
            Some(g),
        ) => ProgramId::parse(g).map_err(|e| e.at("program_id"))?,
        (Principal::Admin, None)
        | (
            Principal::Ingest {
                program_id: None, ..
            },
            None,
        ) => return Err(FieldError::new("program_id", "is required with this key").into()),
        (Principal::Partner { .. }, _) => return Err(ApiError::Forbidden),
    };
    state
        .program(&id)
        .await?
        .map(|p| p.as_ref().clone())
        .ok_or_else(|| FieldError::new("program_id", "no such program").into())
}

/// The partner a `?via=` value names: a partner slug of the program, or a
/// link code of the program. `None` when it names nothing.
pub async fn resolve_via(
    state: &AppState,
    program: &ProgramId,
    via: &str,
) -> ApiResult<Option<PartnerId>> {
    if let Ok(slug) = Slug::parse(via) {
        if let Some(p) = state.store.partner_by_slug(program, &slug).await? {
            return Ok(Some(p.id));
        }
    }
    Ok(state
        .store
        .link_by_code(via)
        .await?
        .filter(|l| &l.program_id == program)
        .map(|l| l.partner_id))
}

/// One event as the native API and the snippet send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    #[serde(rename = "type")]
    pub event_type: String,
    pub event_id: Option<String>,
    pub name: Option<String>,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub email_hash: Option<String>,
    pub customer_id: Option<String>,
    pub phone: Option<String>,
    pub phone_hash: Option<String>,
    pub click_id: Option<String>,
    /// A partner slug or link code seen as `?via=` on the landing URL.
    pub via: Option<String>,
    /// A referral naming the partner directly.
    pub partner_id: Option<String>,
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub properties: serde_json::Map<String, serde_json::Value>,
    pub program_id: Option<String>,
}

/// How strictly to treat a `via` that names no partner.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum UnknownVia {
    /// The API: a clear error.
    Refuse,
    /// The snippet: landing URLs carry all sorts of `via` values; ignore.
    Ignore,
}

impl EventInput {
    /// Build the domain event, its identifiers claimed as `claim` says;
    /// errors are prefixed with `prefix` (e.g. `batch[3].`).
    pub async fn into_event(
        self,
        state: &AppState,
        program: &Program,
        now: DateTime<Utc>,
        prefix: &str,
        unknown_via: UnknownVia,
        claim: Claim,
    ) -> ApiResult<Event> {
        let at = |e: FieldError| {
            ApiError::from(FieldError::new(format!("{prefix}{}", e.field), e.message))
        };
        let event_type = EventType::parse(&self.event_type).map_err(at)?;
        let ids = RawIdentifiers {
            anonymous_id: self.anonymous_id,
            user_id: self.user_id,
            email: self.email,
            email_hash: self.email_hash,
            customer_id: self.customer_id,
            phone: self.phone,
            phone_hash: self.phone_hash,
        }
        .parse()
        .map_err(at)?;
        let external_id =
            PlainText::parse_optional("event_id", self.event_id.as_deref(), 200).map_err(at)?;
        let name = PlainText::parse_optional("name", self.name.as_deref(), 200).map_err(at)?;
        let click_id = tribute_core::tracking::parse_click_id("click_id", self.click_id.as_deref())
            .map_err(at)?;
        let mut partner = None;
        if let Some(via) = self.via.as_deref().filter(|v| !v.is_empty()) {
            match resolve_via(state, &program.id, via).await? {
                Some(p) => partner = Some((p, TouchKind::Via)),
                None if unknown_via == UnknownVia::Refuse => {
                    return Err(at(FieldError::new(
                        "via",
                        "names no partner or link of this program",
                    )))
                }
                None => {}
            }
        }
        if let Some(pid) = self.partner_id.as_deref() {
            let pid = PartnerId::parse(pid).map_err(|e| at(e.at("partner_id")))?;
            match state.store.partner(&pid).await? {
                Some(p) if p.program_id == program.id => {
                    partner = Some((p.id, TouchKind::Referral))
                }
                _ => {
                    return Err(at(FieldError::new(
                        "partner_id",
                        "no such partner in this program",
                    )))
                }
            }
        }
        let occurred_at =
            parse_occurred_at("occurred_at", self.occurred_at.as_deref(), now).map_err(at)?;
        Ok(Event {
            id: EventId::generate_ordered(now.timestamp_millis()),
            program_id: program.id.clone(),
            external_id,
            event_type,
            name,
            ids,
            claim,
            click_id,
            partner,
            occurred_at,
            received_at: now,
            properties: serde_json::Value::Object(self.properties),
        })
    }
}
