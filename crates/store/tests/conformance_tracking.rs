//! The storage conformance suite for tracking and attribution: events and
//! the identity graph, partner touches, leads, conversions and their
//! credits, journeys and fits — run against a fresh SQLite file and a fresh
//! PostgreSQL database.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tribute_core::attribution::{
    attribute, fit, Attribution, Journey, ModelConfig, ModelKind, TouchKind,
};
use tribute_core::click::Click;
use tribute_core::identity::{click_key, Identifiers};
use tribute_core::ids::{ClickId, ConversionId, EventId, LinkId, PartnerId, ProgramId};
use tribute_core::link::{Link, ShortCode, Utm};
use tribute_core::money::{Currency, Money};
use tribute_core::partner::{email_hash, Email, Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
use tribute_core::tracking::{
    ConsentMode, Conversion, ConversionStatus, Event, EventType, Product, TrackingSettings,
};
use tribute_store::{ConversionFilter, NewTouch, Page, Store, StoreError, StoredFit};

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

conformance!(
    ingest_events_returns_the_ids_stored_and_skips_a_repeated_external_id,
    an_anonymous_page_view_is_stored_but_creates_no_identity,
    an_event_carrying_two_identifiers_makes_them_one_person,
    a_click_id_in_an_event_joins_the_click_as_a_touch_with_its_bot_flag,
    via_and_referral_events_make_partner_touches,
    identifiers_seen_together_later_merge_two_persons_with_their_touches,
    a_lead_counts_once_per_partner_and_person,
    a_lead_without_a_partner_touch_counts_for_nobody,
    two_persons_with_a_lead_each_count_one_lead_once_merged,
    resolve_journey_finds_the_person_and_adds_click_and_coupon_touches_in_time_order,
    resolve_journey_without_keys_makes_a_new_person_with_the_extra_touches,
    resolve_journey_reports_suspended_partners_on_their_touches,
    concurrent_journeys_of_one_person_all_resolve_to_that_person,
    a_click_of_another_program_is_never_a_touch,
    a_conversion_round_trips_and_its_credits_sum_exactly_to_its_value,
    a_second_conversion_with_the_same_external_id_or_idempotency_key_is_a_conflict,
    conversion_by_keys_finds_the_first_conversion_by_either_key,
    conversions_filter_by_program_partner_status_and_period,
    journeys_are_one_per_person_in_time_order_with_converted_flag,
    the_latest_fit_of_a_model_round_trips_with_its_period,
    conversion_journeys_pair_each_conversion_with_its_persons_touches,
    program_tracking_starts_with_defaults_and_keeps_its_first_token,
    secret_or_init_keeps_the_first_value,
    a_click_written_after_the_event_that_carried_its_id_still_becomes_a_touch,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn hours(h: i64) -> DateTime<Utc> {
    t0() + Duration::hours(h)
}

fn program(name: &str) -> Program {
    Program {
        id: ProgramId::generate(),
        settings: ProgramSettings {
            name: name.into(),
            currency: Currency::parse("EUR").unwrap(),
            allowed_domains: vec![AllowedDomain::parse("acme.test").unwrap()],
            default_model: "last_touch".into(),
            window_days: 30,
            cookie_days: 90,
            hold_days: 14,
        },
        created_at: t0(),
    }
}

fn partner(program: &Program, slug: &str, status: PartnerStatus) -> Partner {
    Partner {
        id: PartnerId::generate(),
        program_id: program.id.clone(),
        slug: Slug::parse(slug).unwrap(),
        name: slug.to_uppercase(),
        email: Some(Email::parse(&format!("{slug}@example.com")).unwrap()),
        status,
        tier: None,
        group: None,
        team_lead_id: None,
        created_at: t0(),
    }
}

/// A program with the active partners `jane` and `sam`.
struct Seed {
    program: Program,
    jane: Partner,
    sam: Partner,
}

async fn seeded(store: &Store) -> Seed {
    let program = program("Acme");
    store.insert_program(&program).await.unwrap();
    let jane = partner(&program, "jane", PartnerStatus::Active);
    let sam = partner(&program, "sam", PartnerStatus::Active);
    store.insert_partner(&jane).await.unwrap();
    store.insert_partner(&sam).await.unwrap();
    Seed { program, jane, sam }
}

/// Store a link of `partner` and one click on it at `at`.
async fn clicked(store: &Store, partner: &Partner, at: DateTime<Utc>, is_bot: bool) -> Click {
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
    };
    store
        .insert_clicks(std::slice::from_ref(&click))
        .await
        .unwrap();
    click
}

fn anon(id: &str) -> Identifiers {
    Identifiers {
        anonymous_id: Some(id.into()),
        ..Default::default()
    }
}

fn anon_and_email(id: &str, email: &str) -> Identifiers {
    Identifiers {
        anonymous_id: Some(id.into()),
        email_hash: Some(email_hash(email)),
        ..Default::default()
    }
}

fn event(p: &Program, event_type: EventType, ids: Identifiers, at: DateTime<Utc>) -> Event {
    Event {
        id: EventId::generate(),
        program_id: p.id.clone(),
        external_id: None,
        event_type,
        name: None,
        ids,
        click_id: None,
        partner: None,
        occurred_at: at,
        received_at: at,
        properties: json!({}),
    }
}

fn with_external_id(mut e: Event, external: &str) -> Event {
    e.external_id = Some(external.into());
    e
}

fn with_click(mut e: Event, click: &Click) -> Event {
    e.click_id = Some(click.id.to_string());
    e
}

fn with_partner(mut e: Event, partner: &Partner, kind: TouchKind) -> Event {
    e.partner = Some((partner.id.clone(), kind));
    e
}

fn key_of(kind: &str, value: &str) -> String {
    format!("{kind}:{value}")
}

async fn person(store: &Store, p: &Program, key: &str) -> tribute_core::ids::PersonId {
    store
        .person_of(&p.id, key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no person for {key}"))
}

/// The (kind, partner) of each of a person's touches, oldest first.
async fn touch_summary(
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

fn attributed(
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

fn conversion(
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
    }
}

/// A person (`anonymous_id:{anon}`) touched by each of `partners` in turn, one hour apart.
async fn touched_person(
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

// --- events and identities -------------------------------------------------

async fn ingest_events_returns_the_ids_stored_and_skips_a_repeated_external_id(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let first = vec![
        with_external_id(event(p, EventType::PageView, anon("a1"), t0()), "msg-1"),
        with_external_id(event(p, EventType::Custom, anon("a1"), t0()), "msg-2"),
        event(p, EventType::PageView, anon("a1"), t0()),
    ];
    let outcome = store.ingest_events(&first).await.unwrap();
    let all: Vec<String> = first.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(outcome.inserted.iter().cloned().collect::<Vec<_>>(), {
        let mut v = all.clone();
        v.sort();
        v
    });

    let again = vec![
        with_external_id(event(p, EventType::PageView, anon("a1"), t0()), "msg-1"),
        with_external_id(event(p, EventType::PageView, anon("a1"), t0()), "msg-3"),
    ];
    let outcome = store.ingest_events(&again).await.unwrap();
    assert_eq!(
        outcome.inserted.into_iter().collect::<Vec<_>>(),
        vec![again[1].id.to_string()],
        "msg-1 was seen before"
    );
    assert_eq!(store.count_events(&p.id).await.unwrap(), 4);

    // External ids are per program.
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let elsewhere = vec![with_external_id(
        event(&other, EventType::PageView, anon("a1"), t0()),
        "msg-1",
    )];
    let outcome = store.ingest_events(&elsewhere).await.unwrap();
    assert_eq!(outcome.inserted.len(), 1);
    assert_eq!(store.count_events(&other.id).await.unwrap(), 1);
}

async fn an_anonymous_page_view_is_stored_but_creates_no_identity(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    store
        .ingest_events(&[event(p, EventType::PageView, anon("a1"), t0())])
        .await
        .unwrap();
    assert_eq!(store.count_events(&p.id).await.unwrap(), 1);
    assert_eq!(
        store
            .person_of(&p.id, &key_of("anonymous_id", "a1"))
            .await
            .unwrap(),
        None
    );
}

async fn an_event_carrying_two_identifiers_makes_them_one_person(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let ids = anon_and_email("a1", "jo@example.com");
    store
        .ingest_events(&[event(p, EventType::Identify, ids.clone(), t0())])
        .await
        .unwrap();
    let by_anon = person(&store, p, &key_of("anonymous_id", "a1")).await;
    let by_email = person(
        &store,
        p,
        &key_of("email_hash", ids.email_hash.as_deref().unwrap()),
    )
    .await;
    assert_eq!(by_anon, by_email);
    let mut keys = ids.keys();
    keys.sort();
    assert_eq!(store.identity_keys_of(&by_anon).await.unwrap(), keys);

    // The same identifiers in another program are another person.
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    store
        .ingest_events(&[event(&other, EventType::Identify, ids, t0())])
        .await
        .unwrap();
    let there = person(&store, &other, &key_of("anonymous_id", "a1")).await;
    assert_ne!(there, by_anon);
}

async fn a_click_id_in_an_event_joins_the_click_as_a_touch_with_its_bot_flag(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let human = clicked(&store, &s.jane, hours(1), false).await;
    let bot = clicked(&store, &s.sam, hours(2), true).await;
    store
        .ingest_events(&[
            with_click(event(p, EventType::PageView, anon("a1"), hours(1)), &human),
            with_click(event(p, EventType::PageView, anon("a1"), hours(2)), &bot),
        ])
        .await
        .unwrap();
    let who = person(&store, p, &key_of("anonymous_id", "a1")).await;
    assert_eq!(
        person(&store, p, &click_key(human.id.as_str())).await,
        who,
        "the click id is one of the person's keys"
    );
    let touches = store.touches_of(&who).await.unwrap();
    assert_eq!(touches.len(), 2);
    assert_eq!(touches[0].id, human.id.to_string());
    assert_eq!(touches[0].kind, TouchKind::Click);
    assert_eq!(touches[0].partner_id, s.jane.id);
    assert_eq!(
        touches[0].at, human.at,
        "a click touch is dated by the click"
    );
    assert!(!touches[0].is_bot);
    assert_eq!(touches[1].id, bot.id.to_string());
    assert!(touches[1].is_bot, "bot clicks are kept, flagged");

    // The same click seen again adds no second touch.
    store
        .ingest_events(&[with_click(
            event(p, EventType::PageView, anon("a1"), hours(3)),
            &human,
        )])
        .await
        .unwrap();
    assert_eq!(store.touches_of(&who).await.unwrap().len(), 2);
}

async fn via_and_referral_events_make_partner_touches(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let via = with_partner(
        event(p, EventType::PageView, anon("a1"), hours(1)),
        &s.jane,
        TouchKind::Via,
    );
    let referral = with_partner(
        event(p, EventType::Signup, anon("a1"), hours(2)),
        &s.sam,
        TouchKind::Referral,
    );
    store
        .ingest_events(&[via.clone(), referral.clone()])
        .await
        .unwrap();
    let who = person(&store, p, &key_of("anonymous_id", "a1")).await;
    let touches = store.touches_of(&who).await.unwrap();
    assert_eq!(
        touches
            .iter()
            .map(|t| (t.id.as_str(), t.kind, &t.partner_id, t.at))
            .collect::<Vec<_>>(),
        vec![
            (
                format!("via:{}", via.id).as_str(),
                TouchKind::Via,
                &s.jane.id,
                hours(1)
            ),
            (
                format!("referral:{}", referral.id).as_str(),
                TouchKind::Referral,
                &s.sam.id,
                hours(2)
            ),
        ]
    );
    assert_eq!(
        touches[0].channel,
        s.jane.id.to_string(),
        "a partner is a channel"
    );
}

async fn identifiers_seen_together_later_merge_two_persons_with_their_touches(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let click = clicked(&store, &s.jane, hours(1), false).await;
    // Device A: a click. Device B: a via visit of another partner.
    store
        .ingest_events(&[with_click(
            event(p, EventType::PageView, anon("a1"), hours(1)),
            &click,
        )])
        .await
        .unwrap();
    store
        .ingest_events(&[with_partner(
            event(p, EventType::PageView, anon("b1"), hours(2)),
            &s.sam,
            TouchKind::Via,
        )])
        .await
        .unwrap();
    let a = person(&store, p, &key_of("anonymous_id", "a1")).await;
    let b = person(&store, p, &key_of("anonymous_id", "b1")).await;
    assert_ne!(a, b, "two devices, two persons until something links them");

    // The same e-mail identified on both devices.
    store
        .ingest_events(&[event(
            p,
            EventType::Identify,
            anon_and_email("b1", "jo@example.com"),
            hours(3),
        )])
        .await
        .unwrap();
    store
        .ingest_events(&[event(
            p,
            EventType::Identify,
            anon_and_email("a1", "jo@example.com"),
            hours(4),
        )])
        .await
        .unwrap();
    let merged = person(&store, p, &key_of("anonymous_id", "a1")).await;
    assert_eq!(
        person(&store, p, &key_of("anonymous_id", "b1")).await,
        merged
    );
    assert!(
        merged == a || merged == b,
        "the merge keeps one of the two persons"
    );
    let gone = if merged == a { &b } else { &a };
    assert!(store.identity_keys_of(gone).await.unwrap().is_empty());
    assert!(store.touches_of(gone).await.unwrap().is_empty());
    let mut expected_keys = vec![
        key_of("anonymous_id", "a1"),
        key_of("anonymous_id", "b1"),
        key_of("email_hash", &email_hash("jo@example.com")),
        click_key(click.id.as_str()),
    ];
    expected_keys.sort();
    assert_eq!(
        store.identity_keys_of(&merged).await.unwrap(),
        expected_keys
    );
    assert_eq!(
        touch_summary(&store, &merged).await,
        vec![
            (TouchKind::Click, s.jane.id.clone()),
            (TouchKind::Via, s.sam.id.clone())
        ]
    );
}

async fn a_lead_counts_once_per_partner_and_person(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let touch = with_partner(
        event(p, EventType::PageView, anon("a1"), hours(0)),
        &s.jane,
        TouchKind::Via,
    );
    store.ingest_events(&[touch]).await.unwrap();
    for h in 1..=3 {
        store
            .ingest_events(&[event(p, EventType::Lead, anon("a1"), hours(h))])
            .await
            .unwrap();
    }
    store
        .ingest_events(&[event(p, EventType::Signup, anon("a1"), hours(4))])
        .await
        .unwrap();
    assert_eq!(store.count_leads(&p.id, &s.jane.id).await.unwrap(), 1);

    // Another person brought by the same partner is another lead; in one batch too.
    store
        .ingest_events(&[
            with_partner(
                event(p, EventType::PageView, anon("a2"), hours(5)),
                &s.jane,
                TouchKind::Via,
            ),
            event(p, EventType::Lead, anon("a2"), hours(6)),
            event(p, EventType::Lead, anon("a2"), hours(6)),
        ])
        .await
        .unwrap();
    assert_eq!(store.count_leads(&p.id, &s.jane.id).await.unwrap(), 2);
    assert_eq!(store.count_leads(&p.id, &s.sam.id).await.unwrap(), 0);
}

async fn a_lead_without_a_partner_touch_counts_for_nobody(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    store
        .ingest_events(&[event(p, EventType::Lead, anon("a1"), hours(1))])
        .await
        .unwrap();
    // A touch after the lead does not make the earlier lead the partner's.
    store
        .ingest_events(&[with_partner(
            event(p, EventType::PageView, anon("a1"), hours(2)),
            &s.jane,
            TouchKind::Via,
        )])
        .await
        .unwrap();
    assert_eq!(store.count_leads(&p.id, &s.jane.id).await.unwrap(), 0);
}

async fn two_persons_with_a_lead_each_count_one_lead_once_merged(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    for device in ["a1", "b1"] {
        store
            .ingest_events(&[
                with_partner(
                    event(p, EventType::PageView, anon(device), hours(0)),
                    &s.jane,
                    TouchKind::Via,
                ),
                event(p, EventType::Lead, anon(device), hours(1)),
            ])
            .await
            .unwrap();
    }
    assert_eq!(store.count_leads(&p.id, &s.jane.id).await.unwrap(), 2);
    store
        .ingest_events(&[
            event(
                p,
                EventType::Identify,
                anon_and_email("a1", "jo@example.com"),
                hours(2),
            ),
            event(
                p,
                EventType::Identify,
                anon_and_email("b1", "jo@example.com"),
                hours(2),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.count_leads(&p.id, &s.jane.id).await.unwrap(),
        1,
        "one person now, so one lead"
    );
}

// --- journeys of conversions -------------------------------------------------

async fn resolve_journey_finds_the_person_and_adds_click_and_coupon_touches_in_time_order(
    store: Store,
) {
    let s = seeded(&store).await;
    let p = &s.program;
    // Earlier: a via visit of Sam, identified by e-mail.
    store
        .ingest_events(&[with_partner(
            event(
                p,
                EventType::Signup,
                anon_and_email("a1", "jo@example.com"),
                hours(3),
            ),
            &s.sam,
            TouchKind::Via,
        )])
        .await
        .unwrap();
    let known = person(&store, p, &key_of("anonymous_id", "a1")).await;
    // The conversion: Jane's click (older than the via visit) and Sam's coupon.
    let click = clicked(&store, &s.jane, hours(1), false).await;
    let coupon = NewTouch {
        id: format!("coupon:{}:order-1", p.id),
        partner_id: s.sam.id.clone(),
        kind: TouchKind::Coupon,
        at: hours(5),
        is_bot: false,
    };
    let keys = vec![
        click_key(click.id.as_str()),
        key_of("email_hash", &email_hash("jo@example.com")),
    ];
    let (who, touches) = store
        .resolve_journey(
            &p.id,
            keys.clone(),
            Some(click.id.as_str()),
            vec![coupon.clone()],
        )
        .await
        .unwrap();
    assert_eq!(who, known, "found through the e-mail hash");
    assert_eq!(
        touches
            .iter()
            .map(|t| (t.kind, t.partner_id.clone(), t.at))
            .collect::<Vec<_>>(),
        vec![
            (TouchKind::Click, s.jane.id.clone(), hours(1)),
            (TouchKind::Via, s.sam.id.clone(), hours(3)),
            (TouchKind::Coupon, s.sam.id.clone(), hours(5)),
        ]
    );
    assert!(touches.iter().all(|t| !t.partner_suspended && !t.is_bot));
    assert_eq!(
        person(&store, p, &click_key(click.id.as_str())).await,
        known
    );

    // Resolving the same journey again (a retry) adds no touch twice.
    let (again, touches) = store
        .resolve_journey(&p.id, keys, Some(click.id.as_str()), vec![coupon])
        .await
        .unwrap();
    assert_eq!(again, known);
    assert_eq!(touches.len(), 3);
}

async fn resolve_journey_without_keys_makes_a_new_person_with_the_extra_touches(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let coupon = NewTouch {
        id: format!("coupon:{}:order-7", p.id),
        partner_id: s.jane.id.clone(),
        kind: TouchKind::Coupon,
        at: hours(1),
        is_bot: false,
    };
    let (who, touches) = store
        .resolve_journey(&p.id, Vec::new(), None, vec![coupon])
        .await
        .unwrap();
    assert_eq!(touches.len(), 1);
    assert_eq!(touches[0].kind, TouchKind::Coupon);
    assert_eq!(touches[0].partner_id, s.jane.id);
    assert_eq!(store.touches_of(&who).await.unwrap(), touches);

    // An unknown click id adds nothing.
    let (_, touches) = store
        .resolve_journey(&p.id, Vec::new(), Some("clk_doesnotexist"), Vec::new())
        .await
        .unwrap();
    assert!(touches.is_empty());
}

async fn resolve_journey_reports_suspended_partners_on_their_touches(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let pending = partner(p, "pat", PartnerStatus::Pending);
    store.insert_partner(&pending).await.unwrap();
    let (who, _) = touched_person(&store, p, "a1", &[&s.jane, &s.sam, &pending]).await;
    let mut sam = s.sam.clone();
    sam.status = PartnerStatus::Suspended;
    store.update_partner(&sam).await.unwrap();
    let (again, touches) = store
        .resolve_journey(&p.id, vec![key_of("anonymous_id", "a1")], None, Vec::new())
        .await
        .unwrap();
    assert_eq!(again, who);
    assert_eq!(
        touches
            .iter()
            .map(|t| (t.partner_id.clone(), t.partner_suspended))
            .collect::<Vec<_>>(),
        vec![
            (s.jane.id.clone(), false),
            (s.sam.id.clone(), true),
            (pending.id.clone(), false),
        ]
    );
}

async fn concurrent_journeys_of_one_person_all_resolve_to_that_person(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let click = clicked(&store, &s.jane, hours(1), false).await;
    // Retries of one order racing each other: each brings a new key too.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            let program = p.id.clone();
            let click = click.id.to_string();
            tokio::spawn(async move {
                let keys = vec![
                    click_key(&click),
                    key_of("email_hash", &email_hash("jo@example.com")),
                    key_of("anonymous_id", &format!("device-{i}")),
                ];
                store
                    .resolve_journey(&program, keys, Some(click.as_str()), Vec::new())
                    .await
            })
        })
        .collect();
    let mut persons = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (person, touches) = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("journey {i} failed: {e:?}"));
        assert_eq!(touches.len(), 1, "journey {i}: the click, once");
        persons.push(person);
    }
    let one = person(&store, p, &click_key(click.id.as_str())).await;
    assert!(persons.iter().all(|p| p == &one), "one person for all");
    for i in 0..10 {
        assert_eq!(
            person(&store, p, &key_of("anonymous_id", &format!("device-{i}"))).await,
            one,
            "device {i} belongs to the one person"
        );
    }
}

async fn a_click_of_another_program_is_never_a_touch(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let kim = partner(&other, "kim", PartnerStatus::Active);
    store.insert_partner(&kim).await.unwrap();
    let foreign = clicked(&store, &kim, hours(1), false).await;

    // A page view in program `p` carrying the other program's click id…
    store
        .ingest_events(&[with_click(
            event(p, EventType::PageView, anon("a1"), hours(1)),
            &foreign,
        )])
        .await
        .unwrap();
    let who = person(&store, p, &key_of("anonymous_id", "a1")).await;
    assert!(
        store.touches_of(&who).await.unwrap().is_empty(),
        "a click of another program's partner is no touch here"
    );
    // …nor a conversion carrying it.
    let (_, touches) = store
        .resolve_journey(
            &p.id,
            vec![click_key(foreign.id.as_str())],
            Some(foreign.id.as_str()),
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(touches.is_empty(), "got {touches:?}");
}

// --- conversions ---------------------------------------------------------------

async fn a_conversion_round_trips_and_its_credits_sum_exactly_to_its_value(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (who, touches) = touched_person(&store, p, "a1", &[&s.jane, &s.sam]).await;
    let at = hours(5);
    let mut c = conversion(
        p,
        Some(who),
        1001,
        at,
        attributed(&touches, at, ModelKind::Linear),
    );
    c.external_id = Some("order-1".into());
    c.coupon = Some("JANE10".into());
    store.insert_conversion(&c).await.unwrap();

    let stored = store.conversion(&c.id).await.unwrap().expect("stored");
    assert_eq!(stored, c);
    let credits = store.conversion_credits(&c.id).await.unwrap();
    // Equal shares: the odd cent goes to the partner who touched first.
    assert_eq!(
        credits
            .iter()
            .map(|cr| (cr.partner_id.as_str(), cr.slug.as_str(), cr.amount_minor))
            .collect::<Vec<_>>(),
        vec![
            (s.jane.id.as_str(), "jane", 501),
            (s.sam.id.as_str(), "sam", 500)
        ]
    );
    assert_eq!(credits[0].weight, credits[1].weight);
    assert_eq!(credits.iter().map(|cr| cr.amount_minor).sum::<i64>(), 1001);
    let total: u64 = credits[0].weight_total.parse().unwrap();
    let weights: u64 = credits
        .iter()
        .map(|cr| cr.weight.parse::<u64>().unwrap())
        .sum();
    assert_eq!(weights, total, "the exact shares add up to one");

    // An unattributed conversion has no credits.
    let lone = conversion(p, None, 700, at, attributed(&[], at, ModelKind::LastTouch));
    store.insert_conversion(&lone).await.unwrap();
    assert!(store.conversion_credits(&lone.id).await.unwrap().is_empty());
    assert_eq!(
        store.conversion(&ConversionId::generate()).await.unwrap(),
        None
    );
}

async fn a_second_conversion_with_the_same_external_id_or_idempotency_key_is_a_conflict(
    store: Store,
) {
    let s = seeded(&store).await;
    let p = &s.program;
    let at = hours(1);
    let none = || attributed(&[], at, ModelKind::LastTouch);
    let mut first = conversion(p, None, 100, at, none());
    first.external_id = Some("order-1".into());
    store.insert_conversion(&first).await.unwrap();
    let mut by_key = conversion(p, None, 100, at, none());
    by_key.idempotency_key = Some("key-1".into());
    store.insert_conversion(&by_key).await.unwrap();

    let mut same_order = conversion(p, None, 200, at, none());
    same_order.external_id = Some("order-1".into());
    let mut same_key = conversion(p, None, 200, at, none());
    same_key.idempotency_key = Some("key-1".into());
    for (case, c) in [("external id", &same_order), ("idempotency key", &same_key)] {
        match store.insert_conversion(c).await {
            Err(StoreError::Conflict { .. }) => {}
            other => panic!("{case}: expected a conflict, got {other:?}"),
        }
        assert_eq!(
            store.conversion(&c.id).await.unwrap(),
            None,
            "{case}: nothing written"
        );
        assert!(store.conversion_credits(&c.id).await.unwrap().is_empty());
    }

    // Keys are per program; conversions without keys never collide.
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let mut elsewhere = conversion(&other, None, 100, at, none());
    elsewhere.external_id = Some("order-1".into());
    store.insert_conversion(&elsewhere).await.unwrap();
    store
        .insert_conversion(&conversion(p, None, 1, at, none()))
        .await
        .unwrap();
    store
        .insert_conversion(&conversion(p, None, 1, at, none()))
        .await
        .unwrap();
    let all = store
        .conversions(
            &ConversionFilter {
                program_id: Some(p.id.clone()),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
}

async fn conversion_by_keys_finds_the_first_conversion_by_either_key(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let at = hours(1);
    let mut c = conversion(p, None, 100, at, attributed(&[], at, ModelKind::LastTouch));
    c.external_id = Some("order-1".into());
    c.idempotency_key = Some("key-1".into());
    store.insert_conversion(&c).await.unwrap();
    let found = |e: Option<&'static str>, k: Option<&'static str>| {
        let store = store.clone();
        let id = p.id.clone();
        async move {
            store
                .conversion_by_keys(&id, e, k)
                .await
                .unwrap()
                .map(|c| c.id)
        }
    };
    assert_eq!(found(Some("order-1"), None).await, Some(c.id.clone()));
    assert_eq!(found(None, Some("key-1")).await, Some(c.id.clone()));
    assert_eq!(
        found(Some("order-2"), Some("key-1")).await,
        Some(c.id.clone())
    );
    assert_eq!(found(Some("order-2"), None).await, None);
    assert_eq!(found(None, None).await, None);
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    assert_eq!(
        store
            .conversion_by_keys(&other.id, Some("order-1"), None)
            .await
            .unwrap(),
        None,
        "keys are per program"
    );
}

async fn conversions_filter_by_program_partner_status_and_period(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (jo, jo_touches) = touched_person(&store, p, "a1", &[&s.jane]).await;
    let (al, al_touches) = touched_person(&store, p, "a2", &[&s.sam]).await;
    let day = |d: i64| t0() + Duration::days(d);
    let janes = conversion(
        p,
        Some(jo),
        100,
        day(1),
        attributed(&jo_touches, day(1), ModelKind::LastTouch),
    );
    let mut sams = conversion(
        p,
        Some(al),
        200,
        day(2),
        attributed(&al_touches, day(2), ModelKind::LastTouch),
    );
    sams.status = ConversionStatus::Pending;
    let mut nobodys = conversion(
        p,
        None,
        300,
        day(3),
        attributed(&[], day(3), ModelKind::LastTouch),
    );
    nobodys.status = ConversionStatus::Rejected;
    for c in [&janes, &sams, &nobodys] {
        store.insert_conversion(c).await.unwrap();
    }
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    store
        .insert_conversion(&conversion(
            &other,
            None,
            1,
            day(1),
            attributed(&[], day(1), ModelKind::LastTouch),
        ))
        .await
        .unwrap();

    let in_p = ConversionFilter {
        program_id: Some(p.id.clone()),
        ..Default::default()
    };
    let cases: Vec<(&str, ConversionFilter, Vec<&ConversionId>)> = vec![
        (
            "program, newest first",
            in_p.clone(),
            vec![&nobodys.id, &sams.id, &janes.id],
        ),
        (
            "credited to jane",
            ConversionFilter {
                partner_id: Some(s.jane.id.clone()),
                ..in_p.clone()
            },
            vec![&janes.id],
        ),
        (
            "pending",
            ConversionFilter {
                status: Some(ConversionStatus::Pending),
                ..in_p.clone()
            },
            vec![&sams.id],
        ),
        (
            "period [day 2, day 3)",
            ConversionFilter {
                from: Some(day(2)),
                to: Some(day(3)),
                ..in_p.clone()
            },
            vec![&sams.id],
        ),
        (
            "sam but approved",
            ConversionFilter {
                partner_id: Some(s.sam.id.clone()),
                status: Some(ConversionStatus::Approved),
                ..in_p.clone()
            },
            vec![],
        ),
    ];
    for (case, filter, expected) in cases {
        let got = store.conversions(&filter, Page::default()).await.unwrap();
        assert_eq!(
            got.iter().map(|c| &c.id).collect::<Vec<_>>(),
            expected,
            "{case}"
        );
    }
    let all = store
        .conversions(&ConversionFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4, "no filter: every program");
    let page = store
        .conversions(
            &in_p,
            Page {
                limit: 1,
                offset: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|c| &c.id).collect::<Vec<_>>(),
        vec![&sams.id]
    );
}

// --- journeys and fits -----------------------------------------------------------

async fn journeys_are_one_per_person_in_time_order_with_converted_flag(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (jo, jo_touches) = touched_person(&store, p, "a1", &[&s.jane, &s.sam, &s.jane]).await;
    touched_person(&store, p, "a2", &[&s.sam]).await;
    // A bot click is no journey.
    let bot = clicked(&store, &s.jane, hours(1), true).await;
    store
        .ingest_events(&[with_click(
            event(p, EventType::PageView, anon("a3"), hours(1)),
            &bot,
        )])
        .await
        .unwrap();
    let at = hours(4);
    store
        .insert_conversion(&conversion(
            p,
            Some(jo),
            100,
            at,
            attributed(&jo_touches, at, ModelKind::LastTouch),
        ))
        .await
        .unwrap();

    let mut journeys = store
        .journeys(&p.id, t0(), t0() + Duration::days(1))
        .await
        .unwrap();
    journeys.sort_by_key(|j| j.path.len());
    let (jane, sam) = (s.jane.id.to_string(), s.sam.id.to_string());
    assert_eq!(
        journeys,
        vec![
            Journey::not_converted(vec![sam.clone()]),
            Journey::converted(vec![jane.clone(), sam.clone(), jane.clone()]),
        ]
    );
    // Only the touches of the period count, and a conversion after it does not.
    let later = store.journeys(&p.id, hours(1), hours(3)).await.unwrap();
    assert_eq!(later, vec![Journey::not_converted(vec![sam, jane])]);
}

async fn the_latest_fit_of_a_model_round_trips_with_its_period(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (jane, sam) = (s.jane.id.to_string(), s.sam.id.to_string());
    let journeys = vec![
        Journey::converted(vec![jane.clone(), sam.clone()]),
        Journey::not_converted(vec![sam.clone()]),
        Journey::converted(vec![jane.clone()]),
    ];
    let markov = fit(&journeys, &ModelConfig::new(ModelKind::Markov))
        .unwrap()
        .expect("markov is fitted");
    let shapley = fit(&journeys, &ModelConfig::new(ModelKind::Shapley))
        .unwrap()
        .expect("shapley is fitted");
    let stored = |id: &str, model: &str, fit: &tribute_core::attribution::Fit, created| StoredFit {
        id: id.into(),
        model: model.into(),
        period_from: t0() - Duration::days(90),
        period_to: t0(),
        journeys: 3,
        fit: fit.clone(),
        created_at: created,
    };
    assert!(store.latest_fit(&p.id, "markov").await.unwrap().is_none());
    store
        .insert_fit(&p.id, &stored("fit_old", "markov", &markov, hours(1)))
        .await
        .unwrap();
    store
        .insert_fit(&p.id, &stored("fit_new", "markov", &markov, hours(2)))
        .await
        .unwrap();
    store
        .insert_fit(&p.id, &stored("fit_shap", "shapley", &shapley, hours(3)))
        .await
        .unwrap();
    let latest = store
        .latest_fit(&p.id, "markov")
        .await
        .unwrap()
        .expect("a fit");
    assert_eq!(latest.id, "fit_new");
    assert_eq!(latest.model, "markov");
    assert_eq!(
        (latest.period_from, latest.period_to),
        (t0() - Duration::days(90), t0())
    );
    assert_eq!(latest.journeys, 3);
    assert_eq!(latest.created_at, hours(2));
    assert_eq!(
        serde_json::to_value(&latest.fit).unwrap(),
        serde_json::to_value(&markov).unwrap()
    );
    assert_eq!(
        store
            .latest_fit(&p.id, "shapley")
            .await
            .unwrap()
            .map(|f| f.id),
        Some("fit_shap".to_owned())
    );
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    assert!(store
        .latest_fit(&other.id, "markov")
        .await
        .unwrap()
        .is_none());
}

async fn conversion_journeys_pair_each_conversion_with_its_persons_touches(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (jo, jo_touches) = touched_person(&store, p, "a1", &[&s.jane, &s.sam]).await;
    let day = |d: i64| t0() + Duration::days(d);
    let first = conversion(
        p,
        Some(jo.clone()),
        1001,
        day(1),
        attributed(&jo_touches, day(1), ModelKind::LastTouch),
    );
    let lone = conversion(
        p,
        None,
        50,
        day(2),
        attributed(&[], day(2), ModelKind::LastTouch),
    );
    let mut rejected = conversion(
        p,
        Some(jo),
        70,
        day(2),
        attributed(&jo_touches, day(2), ModelKind::LastTouch),
    );
    rejected.status = ConversionStatus::Rejected;
    let outside = conversion(
        p,
        None,
        90,
        day(9),
        attributed(&[], day(9), ModelKind::LastTouch),
    );
    for c in [&first, &lone, &rejected, &outside] {
        store.insert_conversion(c).await.unwrap();
    }
    let got = store
        .conversion_journeys(&p.id, t0(), day(5))
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|j| (&j.id, j.value_minor, j.occurred_at, j.touches.len()))
            .collect::<Vec<_>>(),
        vec![(&first.id, 1001, day(1), 2), (&lone.id, 50, day(2), 0)],
        "in time order; rejected and out-of-period conversions left out"
    );
    assert_eq!(got[0].touches, jo_touches);
}

// --- settings and secrets ---------------------------------------------------------

async fn program_tracking_starts_with_defaults_and_keeps_its_first_token(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (settings, token) = store
        .program_tracking(&p.id, || "first-token".into())
        .await
        .unwrap();
    assert_eq!(settings, TrackingSettings::default());
    assert_eq!(token, "first-token");
    let (_, again) = store
        .program_tracking(&p.id, || "second-token".into())
        .await
        .unwrap();
    assert_eq!(again, "first-token", "the token is made once");

    let changed = TrackingSettings {
        consent: ConsentMode::OptIn,
        honor_dnt: false,
        cookie_domain: Some(".acme.test".into()),
        lead_events: vec!["Trial Started".into()],
        ..TrackingSettings::default()
    };
    store.set_program_tracking(&p.id, &changed).await.unwrap();
    let (settings, token) = store
        .program_tracking(&p.id, || "third-token".into())
        .await
        .unwrap();
    assert_eq!(settings, changed);
    assert_eq!(token, "first-token", "changing settings keeps the token");

    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let (settings, token) = store
        .program_tracking(&other.id, || "other-token".into())
        .await
        .unwrap();
    assert_eq!(
        (settings, token.as_str()),
        (TrackingSettings::default(), "other-token")
    );
}

async fn secret_or_init_keeps_the_first_value(store: Store) {
    let first = store
        .secret_or_init("test_secret", || "one".into())
        .await
        .unwrap();
    let second = store
        .secret_or_init("test_secret", || "two".into())
        .await
        .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    let other = store
        .secret_or_init("other_secret", || "three".into())
        .await
        .unwrap();
    assert_eq!(other, "three");
}

// --- known bugs ---------------------------------------------------------------------
//
// Run with `--ignored`; remove the `ignore` once fixed.

/// The click writer commits asynchronously, so the snippet's page view (with
/// the `tid`) can be committed before the click itself. The click key then
/// joins the person, but no touch is ever made from the click, and a later
/// conversion by e-mail is not credited.
async fn a_click_written_after_the_event_that_carried_its_id_still_becomes_a_touch(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let click = Click {
        id: ClickId::generate(),
        ..clicked(&store, &s.jane, hours(1), false).await
    };
    store
        .ingest_events(&[with_click(
            event(
                p,
                EventType::Signup,
                anon_and_email("a1", "jo@example.com"),
                hours(1),
            ),
            &click,
        )])
        .await
        .unwrap();
    store
        .insert_clicks(std::slice::from_ref(&click))
        .await
        .unwrap();
    let (_, touches) = store
        .resolve_journey(
            &p.id,
            vec![key_of("email_hash", &email_hash("jo@example.com"))],
            None,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        touches.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        vec![click.id.as_str()],
        "the late click is the person's touch"
    );
}
