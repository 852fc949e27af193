//! Storage conformance for exchange rates and tiers: rates by pair and
//! time, the rate in force at a moment, conversions keeping the rate they
//! used; tiers by rank with unique names and ranks, renames carried to
//! partners, partners' results over a window, and evaluation moving
//! partners with a recorded reason, once.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use chrono::{DateTime, Duration, Utc};
use tribute_core::attribution::{attribute, ModelConfig, ModelKind};
use tribute_core::commission::{PartnerStats, Threshold, Tier, TierMetric};
use tribute_core::fx::{convert_at, FxRate, Rate};
use tribute_core::ids::{FxRateId, ProgramId, TierId};
use tribute_core::money::{Currency, Money};
use tribute_core::partner::{Partner, PartnerStatus};
use tribute_core::program::Program;
use tribute_core::tracking::ConversionStatus;
use tribute_store::{
    FxRateFilter, NewRefund, Page, RefundKind, Store, StoreError, StoredFxRate, StoredTier,
};

use common::*;

conformance!(
    the_rate_in_force_is_the_latest_of_its_pair_and_program_not_after_the_time,
    rates_list_by_program_and_currency_and_a_deleted_rate_is_gone,
    a_second_rate_of_a_pair_at_the_same_time_is_a_conflict_on_effective_at,
    a_converted_conversion_keeps_its_rate_after_the_rate_is_deleted,
    tiers_list_highest_rank_first_and_a_taken_name_or_rank_is_a_conflict,
    renaming_a_tier_renames_it_on_its_partners_and_deleting_it_leaves_the_name,
    partner_stats_sum_approved_credits_in_the_window_net_of_refunds,
    evaluation_promotes_and_demotes_and_records_each_move_once_with_its_reason,
);

fn cur(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

fn stored_rate(p: &Program, from: &str, rate: &str, at: DateTime<Utc>) -> StoredFxRate {
    StoredFxRate {
        id: FxRateId::generate(),
        program_id: p.id.clone(),
        rate: FxRate::new(
            cur(from),
            p.settings.currency,
            Rate::parse("rate", rate).unwrap(),
            at,
        )
        .unwrap(),
        created_at: t0(),
    }
}

// --- exchange rates ------------------------------------------------------------

async fn the_rate_in_force_is_the_latest_of_its_pair_and_program_not_after_the_time(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    for r in [
        stored_rate(p, "USD", "0.9", hours(0)),
        stored_rate(p, "USD", "0.95", hours(10)),
        stored_rate(p, "GBP", "1.17", hours(0)),
        stored_rate(&other, "USD", "0.5", hours(5)),
    ] {
        store.insert_fx_rate(&r).await.unwrap();
    }
    let at = |code: &str, h: i64| {
        let store = store.clone();
        let id = p.id.clone();
        let code = code.to_owned();
        async move {
            store
                .fx_rate_at(&id, cur(&code), cur("EUR"), hours(h))
                .await
                .unwrap()
                .map(|r| r.rate.to_string())
        }
    };
    let cases = [
        ("before any rate", "USD", -1, None),
        ("the first rate from its time", "USD", 0, Some("0.9")),
        ("the first rate until the next", "USD", 9, Some("0.9")),
        ("the next rate from its time on", "USD", 10, Some("0.95")),
        ("another pair has its own", "GBP", 20, Some("1.17")),
        ("a pair without rates", "CHF", 20, None),
    ];
    for (case, code, h, want) in cases {
        assert_eq!(at(code, h).await.as_deref(), want, "{case}");
    }
    // What the server converts with: 100.00 USD at 0.95 is 95.00 EUR.
    let rate = store
        .fx_rate_at(&p.id, cur("USD"), cur("EUR"), hours(12))
        .await
        .unwrap()
        .expect("a rate");
    let c = convert_at(
        &[rate],
        Money::new(10_000, cur("USD")),
        cur("EUR"),
        hours(12),
    )
    .unwrap();
    assert_eq!(c.converted, Money::new(9_500, cur("EUR")));
    assert_eq!(c.rate_effective_at, hours(10));
}

async fn rates_list_by_program_and_currency_and_a_deleted_rate_is_gone(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let usd_old = stored_rate(p, "USD", "0.9", hours(0));
    let usd_new = stored_rate(p, "USD", "0.95", hours(10));
    let gbp = stored_rate(p, "GBP", "1.17", hours(0));
    let elsewhere = stored_rate(&other, "USD", "0.5", hours(0));
    for r in [&usd_old, &usd_new, &gbp, &elsewhere] {
        store.insert_fx_rate(r).await.unwrap();
    }
    let list = |f: FxRateFilter| {
        let store = store.clone();
        async move {
            store
                .fx_rates(&f, Page::default())
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    let of_program = FxRateFilter {
        program_id: Some(p.id.clone()),
        from: None,
    };
    // By pair, the latest first within it.
    assert_eq!(
        list(of_program.clone()).await,
        vec![gbp.id.clone(), usd_new.id.clone(), usd_old.id.clone()]
    );
    let usd_only = FxRateFilter {
        from: Some(cur("USD")),
        ..of_program.clone()
    };
    assert_eq!(
        list(usd_only).await,
        vec![usd_new.id.clone(), usd_old.id.clone()]
    );
    assert_eq!(list(FxRateFilter::default()).await.len(), 4);
    assert_eq!(
        store.fx_rate(&usd_new.id).await.unwrap(),
        Some(usd_new.clone())
    );

    store.delete_fx_rate(&usd_new.id).await.unwrap();
    assert_eq!(store.fx_rate(&usd_new.id).await.unwrap(), None);
    assert!(matches!(
        store.delete_fx_rate(&usd_new.id).await,
        Err(StoreError::NotFound(_))
    ));
    // The older rate is in force again.
    let now_in_force = store
        .fx_rate_at(&p.id, cur("USD"), cur("EUR"), hours(20))
        .await
        .unwrap();
    assert_eq!(now_in_force, Some(usd_old.rate));
}

async fn a_second_rate_of_a_pair_at_the_same_time_is_a_conflict_on_effective_at(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    store
        .insert_fx_rate(&stored_rate(p, "USD", "0.9", hours(0)))
        .await
        .unwrap();
    match store
        .insert_fx_rate(&stored_rate(p, "USD", "0.91", hours(0)))
        .await
    {
        Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "effective_at"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Another pair at the same time is fine.
    store
        .insert_fx_rate(&stored_rate(p, "GBP", "1.17", hours(0)))
        .await
        .unwrap();
}

async fn a_converted_conversion_keeps_its_rate_after_the_rate_is_deleted(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let rate = stored_rate(p, "USD", "0.9234", hours(0));
    store.insert_fx_rate(&rate).await.unwrap();
    let (who, touches) = touched_person(&store, p, "a1", &[&s.jane]).await;
    let at = hours(3);
    let fx = convert_at(
        std::slice::from_ref(&rate.rate),
        Money::new(1999, cur("USD")),
        cur("EUR"),
        at,
    )
    .unwrap();
    let mut c = conversion(
        p,
        Some(who),
        fx.converted.minor,
        at,
        attributed(&touches, at, ModelKind::LastTouch),
    );
    c.fx = Some(fx.clone());
    store.insert_conversion(&c).await.unwrap();
    store.delete_fx_rate(&rate.id).await.unwrap();
    let stored = store.conversion(&c.id).await.unwrap().expect("stored");
    assert_eq!(stored.fx, Some(fx.clone()));
    assert_eq!(
        stored.value,
        Money::new(1846, cur("EUR")),
        "19.99 × 0.9234 = 18.458… → 18.46"
    );
    assert_eq!(fx.reproduce().unwrap(), stored.value, "the books reproduce");
}

// --- tiers -----------------------------------------------------------------------

fn tier(
    p: &Program,
    name: &str,
    rank: u32,
    multiplier_bps: u32,
    threshold: Option<Threshold>,
) -> StoredTier {
    StoredTier {
        id: TierId::generate(),
        program_id: p.id.clone(),
        tier: Tier {
            name: name.into(),
            multiplier_bps,
            rank,
            threshold,
        },
        created_at: t0(),
    }
}

fn revenue_over(min: i64, window_days: u32) -> Option<Threshold> {
    Some(Threshold {
        metric: TierMetric::Revenue,
        min,
        window_days,
    })
}

async fn tiers_list_highest_rank_first_and_a_taken_name_or_rank_is_a_conflict(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let silver = tier(p, "silver", 1, 11_000, revenue_over(10_000, 30));
    let gold = tier(p, "gold", 2, 12_500, None);
    store.insert_tier(&silver).await.unwrap();
    store.insert_tier(&gold).await.unwrap();
    assert_eq!(
        store.tiers(&p.id).await.unwrap(),
        vec![gold.clone(), silver.clone()]
    );
    assert_eq!(store.tier(&silver.id).await.unwrap(), Some(silver.clone()));
    for (case, t) in [
        ("a taken name", tier(p, "gold", 7, 10_000, None)),
        ("a taken rank", tier(p, "bronze", 1, 10_000, None)),
    ] {
        assert!(
            matches!(
                store.insert_tier(&t).await,
                Err(StoreError::Conflict { .. })
            ),
            "{case}"
        );
    }
    // Another program may use the same names and ranks.
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    store
        .insert_tier(&tier(&other, "gold", 2, 10_000, None))
        .await
        .unwrap();
    assert_eq!(store.tiers(&p.id).await.unwrap().len(), 2);
}

async fn renaming_a_tier_renames_it_on_its_partners_and_deleting_it_leaves_the_name(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let mut gold = tier(p, "gold", 2, 12_500, None);
    store.insert_tier(&gold).await.unwrap();
    let mut jane = s.jane.clone();
    jane.tier = Some("gold".into());
    store.update_partner(&jane).await.unwrap();
    let mut sam = s.sam.clone();
    sam.tier = Some("vip".into());
    store.update_partner(&sam).await.unwrap();

    gold.tier.name = "platinum".into();
    gold.tier.multiplier_bps = 15_000;
    store.update_tier(&gold).await.unwrap();
    assert_eq!(store.tier(&gold.id).await.unwrap(), Some(gold.clone()));
    let tier_of = |partner: &Partner| {
        let store = store.clone();
        let id = partner.id.clone();
        async move { store.partner(&id).await.unwrap().expect("partner").tier }
    };
    assert_eq!(tier_of(&jane).await.as_deref(), Some("platinum"));
    assert_eq!(
        tier_of(&sam).await.as_deref(),
        Some("vip"),
        "another tier's partner stays"
    );

    store.delete_tier(&gold.id).await.unwrap();
    assert_eq!(store.tier(&gold.id).await.unwrap(), None);
    assert_eq!(tier_of(&jane).await.as_deref(), Some("platinum"));
    assert!(matches!(
        store.delete_tier(&gold.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update_tier(&gold).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A conversion of `value` at `at` credited to `partners` (linear).
async fn credited(
    store: &Store,
    p: &Program,
    anon_id: &str,
    partners: &[&Partner],
    value: i64,
    at: DateTime<Utc>,
    status: ConversionStatus,
) -> tribute_core::tracking::Conversion {
    let (who, touches) = touched_person(store, p, anon_id, partners).await;
    // A window wide enough for every sale of these tests to be credited.
    let model = ModelConfig::new(ModelKind::Linear).with_window_days(3650);
    let attribution = attribute(&touches, at, &model, None).unwrap();
    let mut c = conversion(p, Some(who), value, at, attribution);
    c.status = status;
    store.insert_conversion(&c).await.unwrap();
    c
}

async fn partner_stats_sum_approved_credits_in_the_window_net_of_refunds(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let now = hours(24 * 60);
    let day = |d: i64| now - Duration::days(d);
    let approved = ConversionStatus::Approved;
    // Jane and Sam share 10.01 (jane 5.01, sam 5.00), 5 days ago.
    credited(&store, p, "a1", &[&s.jane, &s.sam], 1001, day(5), approved).await;
    // Jane alone: 100.00 refunded by 30.00, 10 days ago.
    let refunded = credited(&store, p, "a2", &[&s.jane], 10_000, day(10), approved).await;
    store
        .refund_conversion(
            &NewRefund {
                conversion_id: refunded.id.clone(),
                external_id: "r1".into(),
                kind: RefundKind::Refund,
                amount: 3_000,
                reason: "partial".into(),
            },
            now,
        )
        .await
        .unwrap();
    // Jane alone: refunded in full: no revenue, not a conversion.
    let gone = credited(&store, p, "a3", &[&s.jane], 4_000, day(3), approved).await;
    store
        .refund_conversion(
            &NewRefund {
                conversion_id: gone.id.clone(),
                external_id: "r2".into(),
                kind: RefundKind::Refund,
                amount: 4_000,
                reason: "full".into(),
            },
            now,
        )
        .await
        .unwrap();
    // Outside the 30 days, pending, or rejected: not counted.
    credited(&store, p, "a4", &[&s.jane], 50_000, day(31), approved).await;
    credited(
        &store,
        p,
        "a5",
        &[&s.jane],
        60_000,
        day(1),
        ConversionStatus::Pending,
    )
    .await;
    credited(
        &store,
        p,
        "a6",
        &[&s.jane],
        70_000,
        day(2),
        ConversionStatus::Rejected,
    )
    .await;

    let stats = store.partner_stats(&p.id, 30, now).await.unwrap();
    assert_eq!(
        stats.get(&s.jane.id),
        Some(&PartnerStats {
            revenue: 501 + 7_000,
            conversions: 2
        })
    );
    assert_eq!(
        stats.get(&s.sam.id),
        Some(&PartnerStats {
            revenue: 500,
            conversions: 1
        })
    );
    // A wider window reaches the older sale.
    let wide = store.partner_stats(&p.id, 40, now).await.unwrap();
    assert_eq!(wide[&s.jane.id].revenue, 501 + 7_000 + 50_000);
    // Another program's partners are not there.
    assert!(store
        .partner_stats(&ProgramId::generate(), 30, now)
        .await
        .unwrap()
        .is_empty());
}

async fn evaluation_promotes_and_demotes_and_records_each_move_once_with_its_reason(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    store
        .insert_tier(&tier(p, "silver", 1, 11_000, revenue_over(0, 30)))
        .await
        .unwrap();
    store
        .insert_tier(&tier(p, "gold", 2, 12_500, revenue_over(10_000, 30)))
        .await
        .unwrap();
    store
        .insert_tier(&tier(p, "partner-of-the-year", 9, 20_000, None))
        .await
        .unwrap();
    let now = hours(24 * 60);
    credited(
        &store,
        p,
        "a1",
        &[&s.jane],
        12_000,
        now - Duration::days(2),
        ConversionStatus::Approved,
    )
    .await;
    // Sam is in gold but earned nothing lately; a manual tier is left alone.
    let mut sam = s.sam.clone();
    sam.tier = Some("gold".into());
    store.update_partner(&sam).await.unwrap();
    let vip = partner(p, "vip", PartnerStatus::Active);
    let vip = Partner {
        tier: Some("partner-of-the-year".into()),
        ..vip
    };
    store.insert_partner(&vip).await.unwrap();

    let eur = p.settings.currency;
    let changes = store.evaluate_tiers(&p.id, eur, now).await.unwrap();
    let mut moves: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c.partner_id.clone(),
                c.change.from.clone(),
                c.change.to.clone(),
            )
        })
        .collect();
    moves.sort();
    let mut want = vec![
        (s.jane.id.clone(), None, Some("gold".to_owned())),
        (
            s.sam.id.clone(),
            Some("gold".to_owned()),
            Some("silver".to_owned()),
        ),
    ];
    want.sort();
    assert_eq!(moves, want);
    let tier_of = |id| {
        let store = store.clone();
        async move { store.partner(&id).await.unwrap().expect("partner").tier }
    };
    assert_eq!(tier_of(s.jane.id.clone()).await.as_deref(), Some("gold"));
    assert_eq!(tier_of(s.sam.id.clone()).await.as_deref(), Some("silver"));
    assert_eq!(
        tier_of(vip.id.clone()).await.as_deref(),
        Some("partner-of-the-year")
    );

    let jane_changes = store.tier_changes(&s.jane.id).await.unwrap();
    assert_eq!(jane_changes.len(), 1);
    assert_eq!(
        jane_changes[0].change.reason,
        "revenue over the last 30 days is 120.00 EUR ≥ 100.00 EUR for gold"
    );
    assert_eq!(jane_changes[0].at, now);
    // Sam was put in gold by hand before (recorded as such, at the time it
    // was done), then demoted by the evaluation.
    let sam_changes = store.tier_changes(&s.sam.id).await.unwrap();
    let reasons: Vec<&str> = sam_changes
        .iter()
        .map(|c| c.change.reason.as_str())
        .collect();
    assert_eq!(sam_changes.len(), 2, "{reasons:?}");
    assert!(
        reasons.contains(&"set by the program's owner"),
        "{reasons:?}"
    );
    let demotion = sam_changes
        .iter()
        .find(|c| c.at == now)
        .expect("the evaluation's move");
    assert!(
        demotion.change.reason.contains("below 100.00 EUR for gold"),
        "{}",
        demotion.change.reason
    );

    // Nothing changed since: evaluating again moves and records nothing.
    assert!(store
        .evaluate_tiers(&p.id, eur, now)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.tier_changes(&s.jane.id).await.unwrap().len(), 1);
    // Later, the sale leaves the window: jane goes down to silver.
    let later = now + Duration::days(30);
    let changes = store.evaluate_tiers(&p.id, eur, later).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].change.to.as_deref(), Some("silver"));
    let history = store.tier_changes(&s.jane.id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|c| c.change.to.as_deref())
            .collect::<Vec<_>>(),
        vec![Some("silver"), Some("gold")],
        "newest first"
    );
}
