//! Storage conformance for events and the identity graph: events stored
//! idempotently, identifiers joined into persons, partner touches from
//! clicks, `via` and referrals, and leads counted once per partner and person.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use tribute_core::attribution::TouchKind;
use tribute_core::click::Click;
use tribute_core::identity::{click_key, Claim};
use tribute_core::ids::ClickId;
use tribute_core::partner::email_hash;
use tribute_core::tracking::EventType;
use tribute_store::Store;

use common::*;

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
    a_click_written_after_the_event_that_carried_its_id_still_becomes_a_touch,
    write_events_hands_the_batch_back_in_order_with_what_it_stored,
);

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

/// The event writer moves its group into the store and answers each
/// request from its own stretch of the batch it gets back.
async fn write_events_hands_the_batch_back_in_order_with_what_it_stored(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let click = clicked(&store, &s.jane, t0(), false).await;
    store
        .ingest_events(&[with_external_id(
            event(p, EventType::PageView, anon("a1"), t0()),
            "seen",
        )])
        .await
        .unwrap();
    let batch = vec![
        event(p, EventType::PageView, anon("a1"), t0()),
        with_external_id(event(p, EventType::PageView, anon("a2"), t0()), "seen"),
        with_click(event(p, EventType::PageView, anon("a3"), t0()), &click),
    ];
    let (back, outcome) = store.write_events(batch.clone()).await;
    assert_eq!(back, batch);
    assert_eq!(
        outcome.unwrap().inserted,
        [batch[0].id.to_string(), batch[2].id.to_string()]
            .into_iter()
            .collect()
    );
    // The linking event of the returned batch was stitched: its click is a touch.
    let person = store
        .person_of(&p.id, &click_key(click.id.as_str()))
        .await
        .unwrap()
        .expect("the click id joined a person");
    assert_eq!(store.touches_of(&person).await.unwrap().len(), 1);
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

// --- late clicks ---------------------------------------------------------------------
//
// The redirect commits clicks in the background, so an event can carry a
// click id before the click is stored; the click still becomes a touch.

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
            Claim::Verified,
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
