//! The demo's partner program in money: tiers, reward rules, a team
//! override, ~300 conversions over the 90 days (each attributed to the
//! partners whose clicks led to it, some of them refunded), commissions
//! released after their hold, tiers evaluated, and one payout paid. The
//! numbers the demo shows are the real ledger's.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;
use tribute_core::attribution::{attribute, ModelConfig};
use tribute_core::click::Click;
use tribute_core::commission::{RewardRule, RuleTerms, Tier};
use tribute_core::identity::Claim;
use tribute_core::ids::{ConversionId, RewardRuleId, TierId};
use tribute_core::money::Money;
use tribute_core::program::{CommissionTerms, Program};
use tribute_core::tracking::{Conversion, ConversionStatus, Product};
use tribute_store::{NewRefund, RefundKind, Store, StoredTier};

/// Plans: SKU, monthly price in cents.
const PLANS: &[(&str, i64)] = &[("starter", 2_900), ("pro", 9_900), ("team", 29_900)];

pub async fn seed_money(
    store: &Store,
    program: &Program,
    clicks: &[Click],
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let created = program.created_at;
    for (name, bps, rank, threshold) in [
        ("silver", 10_000, 1, None),
        (
            "gold",
            12_500,
            2,
            Some(json!({"metric": "revenue", "min": 300_000, "window_days": 90})),
        ),
    ] {
        let mut v = json!({"name": name, "multiplier_bps": bps, "rank": rank});
        if let Some(t) = threshold {
            v["threshold"] = t;
        }
        store
            .insert_tier(&StoredTier {
                id: TierId::generate(),
                program_id: program.id.clone(),
                tier: Tier::from_json(&v)?,
                created_at: created,
            })
            .await?;
    }
    let terms = CommissionTerms {
        override_levels_bps: vec![1_000],
        payout_min_amount: 1_000,
    };
    terms.validate()?;
    store.set_commission_terms(&program.id, &terms).await?;
    for terms in [
        json!({"name": "20% of every payment", "event": "sale", "kind": "percentage",
               "rate_bps": 2_000, "duration": "lifetime"}),
        json!({"name": "Agencies: 30% for the first year", "event": "sale", "kind": "percentage",
               "rate_bps": 3_000, "duration": {"months": 12}, "scope": {"group": "agencies"}}),
        json!({"name": "Team plan bonus", "event": "sale", "kind": "fixed", "amount": 5_000,
               "duration": "once", "scope": {"group": "creators"},
               "conditions": {"field": "sale.sku", "op": "eq", "value": "team"}}),
    ] {
        let rule = RewardRule {
            id: RewardRuleId::generate(),
            program_id: program.id.clone(),
            version: 1,
            terms: RuleTerms::from_json(&terms)?,
        };
        store.insert_reward_rule(&rule, created).await?;
    }

    // Conversions: a human click, then a purchase hours to days later; a
    // third of the customers pay again monthly while the demo lasts.
    let humans: Vec<&Click> = clicks.iter().filter(|c| !c.is_bot).collect();
    let cfg = ModelConfig::new(program.settings.default_model)
        .with_window_days(program.settings.window_days as u32);
    let mut made: Vec<Conversion> = Vec::new();
    for n in 0..220 {
        let click = humans[rng.gen_range(0..humans.len())];
        let first = click.at + Duration::hours(rng.gen_range(1..72));
        if first >= now {
            continue;
        }
        let (sku, price) = PLANS[rng.gen_range(0..PLANS.len())];
        let customer = format!("cus_demo_{n}");
        let months = if rng.gen_bool(0.33) { 3 } else { 1 };
        for m in 0..months {
            let at = first + Duration::days(30 * m);
            if at >= now {
                break;
            }
            let c = record(store, program, &cfg, click, &customer, sku, price, at).await?;
            made.push(c);
        }
    }
    // Some customers ask for their money back, in part or whole.
    for (i, c) in made.iter().enumerate().filter(|(i, _)| i % 13 == 5) {
        let amount = if i % 2 == 0 {
            c.value.minor
        } else {
            c.value.minor * 3 / 10
        };
        let refund = NewRefund {
            conversion_id: c.id.clone(),
            external_id: format!("re_demo_{i}"),
            kind: RefundKind::Refund,
            amount,
            reason: "customer cancelled".into(),
        };
        store
            .refund_conversion(&refund, c.occurred_at + Duration::days(5))
            .await?;
    }
    // A payout of what was payable 45 days ago, paid; what came due since
    // waits for the next one.
    store.release_due(now - Duration::days(45)).await?;
    let payout = store
        .create_payout(
            &program.id,
            now - Duration::days(45),
            0,
            now - Duration::days(44),
        )
        .await?;
    let payout_id = tribute_core::ids::PayoutId::parse(&payout.id)?;
    store
        .mark_payout_paid(&payout_id, now - Duration::days(40))
        .await?;
    store.release_due(now).await?;
    store
        .evaluate_tiers(&program.id, program.settings.currency, now)
        .await?;
    Ok(())
}

/// One payment of `customer`, attributed to the partners of its click.
#[allow(clippy::too_many_arguments)]
async fn record(
    store: &Store,
    program: &Program,
    cfg: &ModelConfig,
    click: &Click,
    customer: &str,
    sku: &str,
    price: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<Conversion> {
    let keys = vec![
        tribute_core::identity::click_key(click.id.as_str()),
        format!("customer_id:{customer}"),
    ];
    let (person, touches) = store
        .resolve_journey(
            &program.id,
            keys,
            Claim::Verified,
            Some(click.id.as_str()),
            Vec::new(),
        )
        .await?;
    let attribution = attribute(&touches, at, cfg, None)?;
    let c = Conversion {
        id: ConversionId::generate(),
        program_id: program.id.clone(),
        external_id: Some(format!("inv_{customer}_{}", at.timestamp())),
        idempotency_key: None,
        person_id: Some(person),
        status: ConversionStatus::Approved,
        value: Money::new(price, program.settings.currency),
        products: vec![Product {
            sku: sku.into(),
            quantity: 1,
            amount: price,
        }],
        click_id: Some(click.id.to_string()),
        coupon: None,
        occurred_at: at,
        received_at: at,
        attribution,
        request_hash: None,
        customer_key: Some(format!("customer:{customer}")),
        metadata: Default::default(),
        fx: None,
    };
    store.insert_conversion(&c).await?;
    Ok(c)
}
