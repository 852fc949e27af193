//! Storage conformance for fraud screening: the score decided in the
//! recording transaction from the partner's own identifiers and the
//! program's earlier conversions, commissions held above the threshold,
//! the review queue, approval (the hold comes off), rejection (voided
//! through the ledger), the decision log, and the program statistics the
//! signals compare against.

mod common;

use std::sync::Arc;

use serde_json::json;
use tribute_core::attribution::{attribute, ModelConfig, ModelKind, Touch};
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::fraud::FraudConfig;
use tribute_core::identity::{click_key, Claim};
use tribute_core::ids::{ConversionId, PersonId, RewardRuleId};
use tribute_core::partner::email_hash;
use tribute_core::tracking::Conversion;
use tribute_store::{
    CommissionFilter, Journey, PartnerIdentifiers, ProgramStats, Recorded, Recording,
    ReviewDecision, Screening, Store, StoreError,
};

use common::*;

conformance!(
    a_buyer_with_the_partners_own_email_is_held_with_the_reason_and_a_clean_one_is_not,
    approving_a_held_conversion_takes_the_hold_off_and_logs_who_decided,
    rejecting_a_held_conversion_voids_its_commission_and_marks_it_rejected,
    a_decision_on_a_conversion_not_held_is_a_conflict_and_changes_nothing,
    the_same_order_from_another_source_and_a_repeat_payment_are_duplicates,
    fraud_settings_round_trip_and_turning_fraud_off_holds_nothing,
    program_statistics_count_clicks_rates_and_shared_accounts,
);

const PAGE: tribute_store::Page = tribute_store::Page {
    limit: 100,
    offset: 0,
};

async fn ten_percent(store: &Store, s: &Seed) {
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id: s.program.id.clone(),
        version: 1,
        terms: RuleTerms::from_json(
            &json!({"name": "10%", "event": "sale", "kind": "percentage", "rate_bps": 1000}),
        )
        .unwrap(),
    };
    store.insert_reward_rule(&rule, t0()).await.unwrap();
}

/// A conversion of `value` on `partner`'s click, bought by `email`.
async fn record(
    store: &Store,
    s: &Seed,
    partner: &tribute_core::partner::Partner,
    order: &str,
    value: i64,
    email: &str,
    screening: Screening,
) -> Conversion {
    let click = clicked(store, partner, hours(1), false).await;
    let p = s.program.clone();
    let id = ConversionId::generate();
    let order_id = order.to_owned();
    let r: Recording<String> = Recording {
        external_id: Some(order.to_owned()),
        idempotency_key: None,
        journey: Journey {
            program: p.id.clone(),
            keys: vec![
                click_key(click.id.as_str()),
                format!("email_hash:{}", email_hash(email)),
            ],
            claim: Claim::Verified,
            click_id: Some(click.id.to_string()),
            extra: vec![],
        },
        supersedes: vec![],
        decide: Box::new(move |person: PersonId, touches: Vec<Touch>| {
            let cfg = ModelConfig::new(ModelKind::LastTouch).with_window_days(30);
            let a = attribute(&touches, hours(5), &cfg, None).map_err(|e| e.to_string())?;
            let mut c = conversion(&p, Some(person.clone()), value, hours(5), a);
            c.id = id.clone();
            c.external_id = Some(order_id.clone());
            c.customer_key = Some(format!("person:{person}"));
            // The owner's own order number, the same whichever way it came.
            if let Some((_, number)) = order_id.split_once(':') {
                c.metadata.insert("order_id".into(), json!(number));
            }
            Ok(c)
        }),
        screening,
    };
    match store.record_conversion(r).await.unwrap() {
        Recorded::Written { conversion, .. } => conversion,
        other => panic!("not written: {other:?}"),
    }
}

async fn statuses(store: &Store, c: &Conversion) -> Vec<String> {
    let f = CommissionFilter {
        conversion_id: Some(c.id.clone()),
        ..Default::default()
    };
    let mut v: Vec<String> = store
        .commissions(&f, PAGE)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.status)
        .collect();
    v.sort();
    v
}

async fn held_self_referral(store: &Store) -> (Seed, Conversion) {
    let s = seeded(store).await;
    ten_percent(store, &s).await;
    let c = record(
        store,
        &s,
        &s.jane,
        "o-1",
        10_000,
        "jane@example.com",
        Screening::default(),
    )
    .await;
    (s, c)
}

async fn a_buyer_with_the_partners_own_email_is_held_with_the_reason_and_a_clean_one_is_not(
    store: Store,
) {
    let (s, held) = held_self_referral(&store).await;
    let risk = store.conversion_risk(&held.id).await.unwrap().unwrap();
    assert_eq!(risk.review, "held");
    assert_eq!(risk.partner_id.as_deref(), Some(s.jane.id.as_str()));
    assert!(risk.score >= 60, "{risk:?}");
    assert_eq!(risk.reasons[0].rule, "self_referral");
    assert!(risk.reasons[0].evidence.contains("e-mail"), "{risk:?}");
    assert!(
        !risk.reasons[0].evidence.contains("jane@example.com"),
        "evidence names the identifier, never its value"
    );
    assert_eq!(statuses(&store, &held).await, vec!["held"]);
    let queue = store
        .review_queue(Some(&s.program.id), 10, 0)
        .await
        .unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].conversion_id, held.id.as_str());
    let log = store.fraud_decisions(&held.id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].decision.as_str(), log[0].actor.as_str()),
        ("held", "system")
    );

    let clean = record(
        &store,
        &s,
        &s.sam,
        "o-2",
        10_000,
        "buyer@example.org",
        Screening::default(),
    )
    .await;
    let risk = store.conversion_risk(&clean.id).await.unwrap().unwrap();
    assert_eq!((risk.score, risk.review.as_str()), (0, "none"));
    assert_eq!(statuses(&store, &clean).await, vec!["pending"]);
    // A disposable address scores, below the default threshold alone.
    let screening = Screening {
        email_domain: Some("mailinator.com".into()),
        ..Default::default()
    };
    let c = record(
        &store,
        &s,
        &s.sam,
        "o-3",
        5_000,
        "x@mailinator.com",
        screening,
    )
    .await;
    let risk = store.conversion_risk(&c.id).await.unwrap().unwrap();
    assert_eq!(risk.reasons[0].rule, "disposable_email");
    assert_eq!(risk.review, "none");
    assert_eq!(store.review_queue(None, 10, 0).await.unwrap().len(), 1);
}

async fn approving_a_held_conversion_takes_the_hold_off_and_logs_who_decided(store: Store) {
    let (_, held) = held_self_referral(&store).await;
    let at = hours(6);
    let risk = store
        .review_conversion(
            &held.id,
            ReviewDecision::Approve,
            Some("known customer"),
            "key:k1",
            at,
        )
        .await
        .unwrap();
    assert_eq!(risk.review, "approved");
    assert_eq!(
        statuses(&store, &held).await,
        vec!["pending"],
        "back in the hold period"
    );
    // The hold period is over long since: the release job posts it.
    store.release_due(hours(24 * 400)).await.unwrap();
    assert_eq!(statuses(&store, &held).await, vec!["payable"]);
    let log = store.fraud_decisions(&held.id).await.unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        (
            last.decision.as_str(),
            last.actor.as_str(),
            last.note.as_deref(),
            last.at
        ),
        ("approved", "key:k1", Some("known customer"), at)
    );
    assert!(store.review_queue(None, 10, 0).await.unwrap().is_empty());
}

async fn rejecting_a_held_conversion_voids_its_commission_and_marks_it_rejected(store: Store) {
    let (_, held) = held_self_referral(&store).await;
    store
        .review_conversion(
            &held.id,
            ReviewDecision::Reject,
            Some("self-referral"),
            "key:k1",
            hours(6),
        )
        .await
        .unwrap();
    assert_eq!(statuses(&store, &held).await, vec!["voided"]);
    let c = store.conversion(&held.id).await.unwrap().unwrap();
    assert_eq!(c.status.as_str(), "rejected");
    // The release job has nothing to post, ever.
    assert_eq!(store.release_due(hours(24 * 400)).await.unwrap(), 0);
}

async fn a_decision_on_a_conversion_not_held_is_a_conflict_and_changes_nothing(store: Store) {
    let (_, held) = held_self_referral(&store).await;
    store
        .review_conversion(&held.id, ReviewDecision::Approve, None, "key:k1", hours(6))
        .await
        .unwrap();
    for decision in [ReviewDecision::Approve, ReviewDecision::Reject] {
        let err = store
            .review_conversion(&held.id, decision, None, "key:k2", hours(7))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    field: "decision",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    assert_eq!(statuses(&store, &held).await, vec!["pending"]);
    assert_eq!(store.fraud_decisions(&held.id).await.unwrap().len(), 2);
    let missing = ConversionId::generate();
    let err = store
        .review_conversion(&missing, ReviewDecision::Approve, None, "key:k1", hours(6))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

async fn the_same_order_from_another_source_and_a_repeat_payment_are_duplicates(store: Store) {
    let s = seeded(&store).await;
    ten_percent(&store, &s).await;
    let first = record(
        &store,
        &s,
        &s.sam,
        "shop:42",
        7_000,
        "a@example.org",
        Screening::default(),
    )
    .await;
    assert_eq!(
        store
            .conversion_risk(&first.id)
            .await
            .unwrap()
            .unwrap()
            .score,
        0
    );
    // The same order comes in again from another source, paid by the same
    // person for the same amount.
    let second = record(
        &store,
        &s,
        &s.jane,
        "crm:42",
        7_000,
        "a@example.org",
        Screening::default(),
    )
    .await;
    let risk = store.conversion_risk(&second.id).await.unwrap().unwrap();
    let rules: Vec<&str> = risk.reasons.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        rules,
        vec!["duplicate_order", "duplicate_customer_amount"],
        "{risk:?}"
    );
    assert_eq!(risk.review, "held", "70 and 40 combine to 82");
    // Another order by someone else: neither.
    let third = record(
        &store,
        &s,
        &s.jane,
        "crm:43",
        7_000,
        "b@example.org",
        Screening::default(),
    )
    .await;
    assert_eq!(
        store
            .conversion_risk(&third.id)
            .await
            .unwrap()
            .unwrap()
            .score,
        0
    );
}

async fn fraud_settings_round_trip_and_turning_fraud_off_holds_nothing(store: Store) {
    let s = seeded(&store).await;
    ten_percent(&store, &s).await;
    assert_eq!(
        store.fraud_config(&s.program.id).await.unwrap(),
        FraudConfig::default()
    );
    let off = FraudConfig::default()
        .patched(&json!({"enabled": false, "weights": {"self_referral": 95}}))
        .unwrap();
    store
        .set_fraud_config(&s.program.id, &off, t0())
        .await
        .unwrap();
    assert_eq!(store.fraud_config(&s.program.id).await.unwrap(), off);
    let c = record(
        &store,
        &s,
        &s.jane,
        "o-9",
        10_000,
        "jane@example.com",
        Screening::default(),
    )
    .await;
    assert_eq!(
        store.conversion_risk(&c.id).await.unwrap(),
        None,
        "not scored at all"
    );
    assert_eq!(statuses(&store, &c).await, vec!["pending"]);
}

async fn program_statistics_count_clicks_rates_and_shared_accounts(store: Store) {
    let s = seeded(&store).await;
    // Jane and Sam signed up from the same IP.
    for p in [&s.jane, &s.sam] {
        let ids = PartnerIdentifiers {
            signup_ip_hash: Some("00000000000000aa".into()),
            ..Default::default()
        };
        store
            .set_partner_identifiers(&s.program.id, &p.id, &ids, t0())
            .await
            .unwrap();
    }
    for _ in 0..3 {
        clicked(&store, &s.jane, hours(1), false).await;
    }
    clicked(&store, &s.jane, hours(1), true).await;
    let stats: ProgramStats = store.fraud_stats(&s.program.id, hours(30)).await.unwrap();
    let jane = &stats.partners[s.jane.id.as_str()];
    assert_eq!(jane.shares_account_with, vec![s.sam.id.to_string()]);
    // Three human clicks on day 0; the bot's is left out; today (day 1) none.
    assert_eq!(jane.daily_clicks, vec![3]);
    assert_eq!(jane.clicks_today, 0);
    assert_eq!(jane.conversion_rate, None, "too few clicks for a rate");
    let shared = Arc::new(stats);
    let screening = Screening {
        stats: Some(shared),
        ..Default::default()
    };
    ten_percent(&store, &s).await;
    let c = record(
        &store,
        &s,
        &s.jane,
        "o-5",
        1_000,
        "z@example.org",
        screening,
    )
    .await;
    let risk = store.conversion_risk(&c.id).await.unwrap().unwrap();
    assert_eq!(risk.reasons[0].rule, "shared_account", "{risk:?}");
}
