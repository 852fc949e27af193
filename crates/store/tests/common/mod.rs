//! Fixtures shared by the storage conformance suites: the `conformance!`
//! macro that runs each test on both backends, and builders for programs,
//! partners, clicks, events, conversions, touched persons and webhook
//! endpoints.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tribute_core::attribution::{attribute, Attribution, ModelConfig, ModelKind, TouchKind};
use tribute_core::click::Click;
use tribute_core::identity::{Claim, Identifiers};
use tribute_core::ids::WebhookEndpointId;
use tribute_core::ids::{ClickId, ConversionId, EventId, LinkId, PartnerId, ProgramId};
use tribute_core::link::{Link, ShortCode, Utm};
use tribute_core::money::{Currency, Money};
use tribute_core::partner::{email_hash, Email, Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
use tribute_core::tracking::{Conversion, ConversionStatus, Event, EventType, Product};
use tribute_core::webhook::{EventFilter, WebhookSecret};
use tribute_store::{Store, StoredEndpoint};

/// Instantiate each named `async fn(Store)` once per backend, as
/// `sqlite::name` and `postgres::name`, each on a fresh database.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                tribute_store::testing::run_on(tribute_store::Backend::Sqlite, super::$name).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                tribute_store::testing::run_on(tribute_store::Backend::Postgres, super::$name).await;
            })*
        }
    };
}
pub(crate) use conformance;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub fn hours(h: i64) -> DateTime<Utc> {
    t0() + Duration::hours(h)
}

/// A program named `name` created at `t0()`.
pub fn program(name: &str) -> Program {
    program_at(name, t0())
}

/// A program named `name` created at `at`.
pub fn program_at(name: &str, at: DateTime<Utc>) -> Program {
    Program {
        id: ProgramId::generate(),
        settings: ProgramSettings {
            name: name.into(),
            currency: Currency::parse("EUR").unwrap(),
            allowed_domains: vec![AllowedDomain::parse("acme.test").unwrap()],
            default_model: ModelKind::LastTouch,
            window_days: 30,
            cookie_days: 90,
            hold_days: 14,
        },
        created_at: at,
    }
}

pub fn partner(program: &Program, slug: &str, status: PartnerStatus) -> Partner {
    Partner {
        id: PartnerId::generate(),
        program_id: program.id.clone(),
        slug: Slug::parse(slug).unwrap(),
        name: slug.to_uppercase(),
        email: Some(Email::parse(&format!("{slug}@example.com")).unwrap()),
        payout_email: None,
        status,
        tier: None,
        group: None,
        team_lead_id: None,
        created_at: t0(),
    }
}

/// A program with the active partners `jane` and `sam`.
pub struct Seed {
    pub program: Program,
    pub jane: Partner,
    pub sam: Partner,
}

pub async fn seeded(store: &Store) -> Seed {
    let program = program("Acme");
    store.insert_program(&program).await.unwrap();
    let jane = partner(&program, "jane", PartnerStatus::Active);
    let sam = partner(&program, "sam", PartnerStatus::Active);
    store.insert_partner(&jane).await.unwrap();
    store.insert_partner(&sam).await.unwrap();
    Seed { program, jane, sam }
}

/// Store a link of `partner` and one click on it at `at`.
pub async fn clicked(store: &Store, partner: &Partner, at: DateTime<Utc>, is_bot: bool) -> Click {
    let code = format!(
        "{}-{}",
        partner.slug.as_str(),
        ClickId::generate().as_str()[4..12].to_ascii_lowercase()
    );
    let link = Link {
        id: LinkId::generate(),
        program_id: partner.program_id.clone(),
        partner_id: partner.id.clone(),
        code: ShortCode::parse(&code).unwrap(),
        destination: "https://acme.test/".into(),
        source: None,
        medium: None,
        campaign: None,
        content: None,
        utm: Utm::generate(partner.slug.as_str(), None, None, None, None),
        expires_at: None,
        created_at: t0(),
    };
    store.insert_link(&link).await.unwrap();
    let click = Click {
        id: ClickId::generate(),
        program_id: link.program_id.clone(),
        link_id: link.id.clone(),
        partner_id: link.partner_id.clone(),
        at,
        ip_truncated: "203.0.113.0/24".into(),
        ip_hash: "ip".into(),
        visitor_hash: format!("v-{}", ClickId::generate()),
        user_agent: Some("Mozilla/5.0".into()),
        referrer: None,
        source: None,
        is_bot,
        reasons: Vec::new(),
    };
    store
        .insert_clicks(std::slice::from_ref(&click))
        .await
        .unwrap();
    click
}

pub fn anon(id: &str) -> Identifiers {
    Identifiers {
        anonymous_id: Some(id.into()),
        ..Default::default()
    }
}

pub fn anon_and_email(id: &str, email: &str) -> Identifiers {
    Identifiers {
        anonymous_id: Some(id.into()),
        email_hash: Some(email_hash(email)),
        ..Default::default()
    }
}

pub fn event(p: &Program, event_type: EventType, ids: Identifiers, at: DateTime<Utc>) -> Event {
    Event {
        id: EventId::generate(),
        program_id: p.id.clone(),
        external_id: None,
        event_type,
        name: None,
        ids,
        claim: Claim::Verified,
        click_id: None,
        partner: None,
        occurred_at: at,
        received_at: at,
        properties: json!({}),
    }
}

pub fn with_external_id(mut e: Event, external: &str) -> Event {
    e.external_id = Some(external.into());
    e
}

/// The event as the browser sends it: its identifiers unverified.
pub fn unverified(mut e: Event) -> Event {
    e.claim = Claim::Unverified;
    e
}

pub fn with_click(mut e: Event, click: &Click) -> Event {
    e.click_id = Some(click.id.clone());
    e
}

pub fn with_partner(mut e: Event, partner: &Partner, kind: TouchKind) -> Event {
    e.partner = Some((partner.id.clone(), kind));
    e
}

pub fn key_of(kind: &str, value: &str) -> String {
    format!("{kind}:{value}")
}

pub async fn person(store: &Store, p: &Program, key: &str) -> tribute_core::ids::PersonId {
    store
        .person_of(&p.id, key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no person for {key}"))
}

/// The (kind, partner) of each of a person's touches, oldest first.
pub async fn touch_summary(
    store: &Store,
    person: &tribute_core::ids::PersonId,
) -> Vec<(TouchKind, PartnerId)> {
    store
        .touches_of(person)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.kind, t.partner_id))
        .collect()
}

pub fn attributed(
    touches: &[tribute_core::attribution::Touch],
    at: DateTime<Utc>,
    model: ModelKind,
) -> Attribution {
    attribute(
        touches,
        at,
        &ModelConfig::new(model).with_window_days(30),
        None,
    )
    .unwrap()
}

pub fn conversion(
    p: &Program,
    person: Option<tribute_core::ids::PersonId>,
    value: i64,
    at: DateTime<Utc>,
    attribution: Attribution,
) -> Conversion {
    Conversion {
        id: ConversionId::generate(),
        program_id: p.id.clone(),
        external_id: None,
        idempotency_key: None,
        person_id: person,
        status: ConversionStatus::Approved,
        value: Money::new(value, p.settings.currency),
        products: vec![Product {
            sku: "PLAN-PRO".into(),
            quantity: 1,
            amount: value,
        }],
        click_id: None,
        coupon: None,
        occurred_at: at,
        received_at: at,
        attribution,
        request_hash: None,
        customer_key: None,
        metadata: Default::default(),
        fx: None,
    }
}

/// A person (`anonymous_id:{anon}`) touched by each of `partners` in turn, one hour apart.
pub async fn touched_person(
    store: &Store,
    p: &Program,
    anon_id: &str,
    partners: &[&Partner],
) -> (
    tribute_core::ids::PersonId,
    Vec<tribute_core::attribution::Touch>,
) {
    let events: Vec<Event> = partners
        .iter()
        .enumerate()
        .map(|(i, partner)| {
            with_partner(
                event(p, EventType::PageView, anon(anon_id), hours(i as i64)),
                partner,
                TouchKind::Via,
            )
        })
        .collect();
    store.ingest_events(&events).await.unwrap();
    let who = person(store, p, &key_of("anonymous_id", anon_id)).await;
    let touches = store.touches_of(&who).await.unwrap();
    assert_eq!(touches.len(), partners.len(), "one touch per via visit");
    (who, touches)
}

/// Pay team leads `plan`'s override levels in program `p`.
pub async fn overrides(store: &Store, p: &Program, plan: tribute_core::commission::OverridePlan) {
    let terms = tribute_core::program::CommissionTerms {
        override_levels_bps: plan.levels_bps().to_vec(),
        payout_min_amount: 0,
    };
    store.set_commission_terms(&p.id, &terms).await.unwrap();
}

/// An enabled webhook endpoint of `p` for every event, not stored.
pub fn webhook_endpoint(p: &Program) -> StoredEndpoint {
    StoredEndpoint {
        id: WebhookEndpointId::generate(),
        program_id: p.id.clone(),
        url: "https://hooks.example.com/t".into(),
        description: String::new(),
        events: EventFilter::all(),
        partner_id: None,
        secret: WebhookSecret::generate(),
        previous_secret: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: t0(),
        updated_at: t0(),
    }
}
