//! Storage conformance for recording conversions in one transaction
//! (`Store::record_conversion`): the journey found, the caller's decision,
//! the conversion with its credits, all or nothing. On SQLite conversions
//! recorded together share one transaction (group commit), so these tests
//! record many at once: each must stand or fall alone.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use std::sync::Arc;

use tribute_core::attribution::{attribute, ModelConfig, ModelKind, Touch};
use tribute_core::identity::{click_key, Claim};
use tribute_core::ids::{ConversionId, PersonId};
use tribute_core::tracking::Conversion;
use tribute_store::{Journey, Recorded, Recording, Store, StoreError};

use common::*;

conformance!(
    many_conversions_recorded_at_once_are_each_written_with_their_journey_and_credits,
    a_duplicate_order_among_conversions_recorded_at_once_is_refused_alone,
    a_refused_decision_writes_nothing_not_even_the_journey,
    a_recording_whose_caller_goes_away_completes_and_the_store_keeps_recording,
);

/// A recording of a conversion of `value` on `click`'s journey, with order
/// id `order`, deciding by last click.
fn recording(
    s: &Seed,
    click: &tribute_core::click::Click,
    order: &str,
    value: i64,
) -> Recording<String> {
    let p = s.program.clone();
    let order = order.to_owned();
    let at = hours(5);
    let id = ConversionId::generate();
    Recording {
        external_id: Some(order.clone()),
        idempotency_key: None,
        journey: Journey {
            program: p.id.clone(),
            keys: vec![click_key(click.id.as_str())],
            claim: Claim::Verified,
            click_id: Some(click.id.to_string()),
            extra: vec![],
        },
        supersedes: vec![],
        decide: Box::new(move |person: PersonId, touches: Vec<Touch>| {
            let cfg = ModelConfig::new(ModelKind::LastTouch).with_window_days(30);
            let attribution = attribute(&touches, at, &cfg, None).map_err(|e| e.to_string())?;
            let mut c = conversion(&p, Some(person), value, at, attribution);
            c.id = id.clone();
            c.external_id = Some(order.clone());
            Ok(c)
        }),
        screening: Default::default(),
    }
}

/// What each recording came to: the conversion written (checked against
/// the credits it was answered with), or why not, as text.
async fn record_all(
    store: &Store,
    recordings: Vec<Recording<String>>,
) -> Vec<Result<Conversion, String>> {
    let tasks: Vec<_> = recordings
        .into_iter()
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move { store.record_conversion(r).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        match t.await.expect("the task ran") {
            Ok(Recorded::Written {
                conversion,
                credits,
                ..
            }) => {
                assert_eq!(
                    credits,
                    store.conversion_credits(&conversion.id).await.unwrap(),
                    "answered with the credits stored"
                );
                out.push(Ok(conversion));
            }
            Ok(Recorded::Exists(first)) => {
                out.push(Err(format!("exists: {}", first.external_id.unwrap())))
            }
            Ok(Recorded::Refused(why)) => out.push(Err(why)),
            Err(StoreError::Conflict { field, .. }) => out.push(Err(format!("conflict: {field}"))),
            Err(e) => panic!("recording failed: {e:?}"),
        }
    }
    out
}

async fn many_conversions_recorded_at_once_are_each_written_with_their_journey_and_credits(
    store: Store,
) {
    let s = seeded(&store).await;
    let mut recordings = Vec::new();
    let mut expected = Vec::new();
    for i in 0..40 {
        let partner = if i % 2 == 0 { &s.jane } else { &s.sam };
        let click = clicked(&store, partner, hours(1), false).await;
        recordings.push(recording(&s, &click, &format!("order-{i}"), 1000 + i));
        expected.push((partner.id.clone(), 1000 + i));
    }
    let recorded = record_all(&store, recordings).await;
    assert_eq!(recorded.len(), 40);
    let mut persons = std::collections::BTreeSet::new();
    for (r, (partner, value)) in recorded.into_iter().zip(expected) {
        let c: Conversion = r.expect("each conversion is recorded");
        let stored = store.conversion(&c.id).await.unwrap().expect("stored");
        assert_eq!(stored, c);
        let credits = store.conversion_credits(&c.id).await.unwrap();
        assert_eq!(credits.len(), 1, "last click credits one partner");
        assert_eq!(credits[0].partner_id, partner.as_str());
        assert_eq!(credits[0].amount_minor, value);
        let person = c.person_id.clone().expect("a person");
        assert_eq!(
            touch_summary(&store, &person).await.len(),
            1,
            "its click is the person's touch"
        );
        persons.insert(person);
    }
    assert_eq!(persons.len(), 40, "forty clicks, forty persons");
}

async fn a_duplicate_order_among_conversions_recorded_at_once_is_refused_alone(store: Store) {
    let s = seeded(&store).await;
    let mut recordings = Vec::new();
    for i in 0..20 {
        let click = clicked(&store, &s.jane, hours(1), false).await;
        // Orders 0 and 10 are the same order.
        let order = format!("order-{}", i % 10 + usize::from(i >= 11) * 100);
        recordings.push(recording(&s, &click, &order, 500));
    }
    let recorded = record_all(&store, recordings).await;
    let refused: Vec<&String> = recorded.iter().filter_map(|r| r.as_ref().err()).collect();
    // The later of the pair finds the first (in its transaction, or once
    // that one committed), or on PostgreSQL may race it to the unique key.
    assert_eq!(refused.len(), 1, "one of the pair only: {refused:?}");
    assert!(
        ["exists: order-0", "conflict: external_id"].contains(&refused[0].as_str()),
        "{refused:?}"
    );
    let written: Vec<&Conversion> = recorded.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(written.len(), 19);
    for c in written {
        assert!(store.conversion(&c.id).await.unwrap().is_some());
        assert_eq!(store.conversion_credits(&c.id).await.unwrap().len(), 1);
    }
    let listed = store
        .conversions(
            &Default::default(),
            tribute_store::Page {
                limit: 100,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 19, "the refused one left no conversion");
}

async fn a_refused_decision_writes_nothing_not_even_the_journey(store: Store) {
    let s = seeded(&store).await;
    let click = clicked(&store, &s.jane, hours(1), false).await;
    let mut refused = recording(&s, &click, "order-refused", 100);
    refused.decide = Box::new(|_, _| Err("the caller refuses".to_owned()));
    // Recorded together with ten others: on SQLite in one group, which is
    // written again without the refused one's writes.
    let mut recordings = vec![refused];
    let mut ok_clicks = Vec::new();
    for i in 0..10 {
        let c = clicked(&store, &s.sam, hours(1), false).await;
        recordings.push(recording(&s, &c, &format!("order-ok-{i}"), 200));
        ok_clicks.push(c);
    }
    let recorded = record_all(&store, recordings).await;
    assert_eq!(recorded[0].as_ref().unwrap_err(), "the caller refuses");
    assert!(
        recorded[1..].iter().all(Result::is_ok),
        "the others are recorded: {recorded:?}"
    );
    assert_eq!(
        store
            .person_of(&s.program.id, &click_key(click.id.as_str()))
            .await
            .unwrap(),
        None,
        "no person was made for the refused conversion's click"
    );
    for c in &ok_clicks {
        assert!(store
            .person_of(&s.program.id, &click_key(c.id.as_str()))
            .await
            .unwrap()
            .is_some());
    }
}

async fn a_recording_whose_caller_goes_away_completes_and_the_store_keeps_recording(store: Store) {
    let s = Arc::new(seeded(&store).await);
    let click = clicked(&store, &s.jane, hours(1), false).await;
    let abandoned = recording(&s, &click, "order-abandoned", 700);
    // The caller is dropped at its first await, as a client hanging up
    // drops its request's future.
    let gone = {
        let store = store.clone();
        tokio::spawn(async move { store.record_conversion(abandoned).await })
    };
    gone.abort();
    let _ = gone.await;
    // Whatever point it reached, the store goes on: conversions are recorded
    // and the abandoned one is there whole or not at all.
    let next = clicked(&store, &s.sam, hours(1), false).await;
    let recorded = record_all(&store, vec![recording(&s, &next, "order-next", 300)]).await;
    let c = recorded
        .into_iter()
        .next()
        .unwrap()
        .expect("recorded after");
    assert!(store.conversion(&c.id).await.unwrap().is_some());
    let again = clicked(&store, &s.jane, hours(1), false).await;
    let retried = record_all(&store, vec![recording(&s, &again, "order-abandoned", 700)]).await;
    match &retried[0] {
        Ok(c) => {
            assert_eq!(store.conversion_credits(&c.id).await.unwrap().len(), 1);
        }
        Err(e) => {
            assert_eq!(
                e, "exists: order-abandoned",
                "the abandoned one was recorded whole"
            );
            let first = store
                .conversion_by_keys(&s.program.id, Some("order-abandoned"), None)
                .await
                .unwrap()
                .expect("recorded whole");
            let id: ConversionId = first.id;
            assert_eq!(store.conversion_credits(&id).await.unwrap().len(), 1);
        }
    }
}
