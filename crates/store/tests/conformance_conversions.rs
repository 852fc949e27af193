//! Storage conformance for conversions: round trips with credits summing to
//! the value, idempotency by external id or key, lookup by either key, and
//! list filters.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use chrono::Duration;
use tribute_core::attribution::ModelKind;
use tribute_core::ids::ConversionId;
use tribute_core::tracking::ConversionStatus;
use tribute_store::{ConversionFilter, Page, Store, StoreError};

use common::*;

conformance!(
    a_conversion_round_trips_and_its_credits_sum_exactly_to_its_value,
    a_second_conversion_with_the_same_external_id_or_idempotency_key_is_a_conflict,
    conversion_by_keys_finds_the_first_conversion_by_either_key,
    conversions_filter_by_program_partner_status_and_period,
);

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
    let total: u64 = credits[0].weight_total;
    let weights: u64 = credits.iter().map(|cr| cr.weight).sum();
    assert_eq!(weights, total, "the exact shares add up to one");

    // An unattributed conversion has no credits.
    let lone = conversion(p, None, 700, at, attributed(&[], at, ModelKind::LastTouch));
    store.insert_conversion(&lone).await.unwrap();
    assert!(store.conversion_credits(&lone.id).await.unwrap().is_empty());
    assert_eq!(
        store.conversion(&ConversionId::generate()).await.unwrap(),
        None
    );

    // Credits of several conversions at once (lists) are the same credits.
    let many = store
        .conversion_credits_of(&[c.id.clone(), lone.id.clone()])
        .await
        .unwrap();
    assert_eq!(many.get(c.id.as_str()), Some(&credits));
    assert_eq!(many.get(lone.id.as_str()), None, "no credits, no entry");
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
