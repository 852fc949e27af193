//! Storage conformance for lead and click commissions, paid by the
//! commission job after the batched writers stored them: a lead pays once
//! per partner and person, with the team lead's override; a run of clicks
//! pays per non-bot click, as one commission the cap limits, and never
//! twice.

mod common;

use chrono::{Duration, Utc};
use serde_json::json;
use tribute_core::attribution::TouchKind;
use tribute_core::click::Click;
use tribute_core::commission::{OverridePlan, RewardRule, RuleTerms};
use tribute_core::ids::{ClickId, RewardRuleId};
use tribute_core::partner::PartnerStatus;
use tribute_core::program::Program;
use tribute_core::tracking::EventType;
use tribute_store::{CommissionFilter, Page, Store};

use common::*;

conformance!(
    a_lead_rule_pays_each_partner_once_per_person_with_the_team_leads_override,
    a_run_of_clicks_is_paid_per_human_click_within_the_cap_and_never_twice,
);

const BIG: Page = Page {
    limit: 1_000,
    offset: 0,
};

async fn rule(store: &Store, p: &Program, terms: serde_json::Value) {
    let r = RewardRule {
        id: RewardRuleId::generate(),
        program_id: p.id.clone(),
        version: 1,
        terms: RuleTerms::from_json(&terms).unwrap(),
    };
    store.insert_reward_rule(&r, t0()).await.unwrap();
}

async fn amounts(store: &Store, p: &Program, event: &str) -> Vec<(String, String, i64)> {
    let f = CommissionFilter {
        program_id: Some(p.id.clone()),
        ..Default::default()
    };
    let mut out: Vec<_> = store
        .commissions(&f, BIG)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.event == event)
        .map(|c| (c.partner_id, c.kind, c.amount))
        .collect();
    out.sort();
    out
}

async fn a_lead_rule_pays_each_partner_once_per_person_with_the_team_leads_override(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let mut jane = s.jane.clone();
    jane.team_lead_id = Some(s.sam.id.clone());
    store.update_partner(&jane).await.unwrap();
    overrides(&store, p, OverridePlan::one_level(2_000).unwrap()).await;
    rule(
        &store,
        p,
        json!({"name": "lead", "event": "lead", "kind": "fixed", "amount": 500}),
    )
    .await;
    for (anon_id, h) in [("a1", 0), ("a2", 10)] {
        let touch = with_partner(
            event(p, EventType::PageView, anon(anon_id), hours(h)),
            &jane,
            TouchKind::Via,
        );
        store.ingest_events(&[touch]).await.unwrap();
        for k in 1..=3 {
            store
                .ingest_events(&[event(p, EventType::Lead, anon(anon_id), hours(h + k))])
                .await
                .unwrap();
        }
    }
    assert_eq!(
        store.accrue_leads(Utc::now()).await.unwrap(),
        2,
        "two leads, one per person"
    );
    assert_eq!(
        store.accrue_leads(Utc::now()).await.unwrap(),
        0,
        "each is paid once"
    );
    let mut want = vec![
        (jane.id.to_string(), "commission".to_owned(), 500),
        (jane.id.to_string(), "commission".to_owned(), 500),
        (s.sam.id.to_string(), "override".to_owned(), 100),
        (s.sam.id.to_string(), "override".to_owned(), 100),
    ];
    want.sort();
    assert_eq!(amounts(&store, p, "lead").await, want);
    // Another lead event of a paid person adds nothing.
    store
        .ingest_events(&[event(p, EventType::Lead, anon("a1"), hours(30))])
        .await
        .unwrap();
    store.accrue_leads(Utc::now()).await.unwrap();
    assert_eq!(amounts(&store, p, "lead").await.len(), 4);
}

/// `n` clicks of `partner` on one link from `start`, then `bots` bot
/// clicks, each with a time-ordered id as the redirect makes them.
async fn clicks(
    store: &Store,
    partner: &tribute_core::partner::Partner,
    n: i64,
    bots: i64,
    start: chrono::DateTime<Utc>,
) {
    // The link (its first click, a bot's, is not paid whatever its id).
    let first = clicked(store, partner, start, true).await;
    let mut batch: Vec<Click> = Vec::new();
    for i in 0..n + bots {
        let at = start + Duration::minutes(i + 1);
        let mut c = first.clone();
        c.id = ClickId::generate_ordered(at.timestamp_millis());
        c.at = at;
        c.is_bot = i >= n;
        batch.push(c);
    }
    store.insert_clicks(&batch).await.unwrap();
}

async fn a_run_of_clicks_is_paid_per_human_click_within_the_cap_and_never_twice(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    rule(
        &store,
        p,
        json!({"name": "per click", "event": "click", "kind": "fixed", "amount": 5,
               "cap": {"amount": 120, "period": "all_time"}}),
    )
    .await;
    let other = partner(p, "olga", PartnerStatus::Active);
    store.insert_partner(&other).await.unwrap();
    clicks(&store, &s.jane, 30, 2, hours(1)).await;
    clicks(&store, &other, 4, 0, hours(1)).await;
    let paid = store.accrue_clicks(hours(10)).await.unwrap();
    assert_eq!(paid, 34, "every human click, no bot");
    // Jane: 30 × 5 = 150, cut to the cap of 120; Olga: 4 × 5.
    let mut want = vec![
        (s.jane.id.to_string(), "commission".to_owned(), 120),
        (other.id.to_string(), "commission".to_owned(), 20),
    ];
    want.sort();
    assert_eq!(amounts(&store, p, "click").await, want);
    assert_eq!(
        store.accrue_clicks(hours(10)).await.unwrap(),
        0,
        "never twice"
    );
    // Clicks still settling (under a minute old) wait for the next run;
    // then Olga's are paid and Jane's cap holds.
    clicks(&store, &other, 2, 0, hours(20)).await;
    clicks(&store, &s.jane, 3, 0, hours(20)).await;
    assert_eq!(
        store
            .accrue_clicks(hours(20) + Duration::seconds(90))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.accrue_clicks(hours(30)).await.unwrap(), 5);
    let sum = |who: &str, list: &[(String, String, i64)]| -> i64 {
        list.iter().filter(|c| c.0 == who).map(|c| c.2).sum()
    };
    let all = amounts(&store, p, "click").await;
    assert_eq!(
        sum(s.jane.id.as_str(), &all),
        120,
        "the cap holds across runs"
    );
    assert_eq!(sum(other.id.as_str(), &all), 30);
}
