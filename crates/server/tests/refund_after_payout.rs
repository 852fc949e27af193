//! Refunds through the whole chain, on both backends: a partial refund
//! before payout voids from pending; after payout it reverses the partner's
//! commission and the team lead's override from what was paid, leaving
//! negative payable balances that the next payout carries (never paid, then
//! deducted), and every ledger entry still balances.

#[macro_use]
mod common;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::ids::{ProgramId, RewardRuleId};

use common::shop::{shop, Shop};
use common::{str_of, TestApp};

on_both_backends!(
    a_refund_after_payout_reverses_the_override_too_and_is_carried_into_the_next_payout
);

async fn convert(app: &TestApp, s: &Shop, order: &str, value: i64) -> Value {
    let at = (Utc::now() - Duration::days(60)).to_rfc3339();
    app.post(
        "/conversions",
        &s.ingest,
        &json!({"external_id": order, "value": value, "currency": "EUR", "coupon": "ALICE10",
                "occurred_at": at}),
    )
    .await
    .ok(201)
    .clone()
}

async fn balance(app: &TestApp, partner: &str) -> (i64, i64, i64) {
    let b = app
        .get(&format!("/partners/{partner}/balance"), &app.admin_key)
        .await
        .ok(200)
        .clone();
    let n = |k: &str| b[k].as_i64().unwrap();
    (n("pending"), n("payable"), n("paid"))
}

/// A payout of everything payable now, paid; returns its items by partner.
async fn pay_out(app: &TestApp, s: &Shop) -> Vec<(String, i64)> {
    let made = app
        .post(
            "/payouts",
            &app.admin_key,
            &json!({"program_id": s.seed.program_id}),
        )
        .await;
    let payout = made.ok(201).clone();
    app.post(
        &format!("/payouts/{}/paid", str_of(&payout, "id")),
        &app.admin_key,
        &json!({}),
    )
    .await
    .ok(200);
    let mut items: Vec<(String, i64)> = payout["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                str_of(i, "partner_id").to_owned(),
                i["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    items.sort();
    items
}

async fn a_refund_after_payout_reverses_the_override_too_and_is_carried_into_the_next_payout(
    app: TestApp,
) {
    let s = shop(&app).await;
    let (alice, bob) = (s.seed.alice.id.clone(), s.seed.bob.id.clone());
    let program = ProgramId::parse(&s.seed.program_id).unwrap();
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id: program.clone(),
        version: 1,
        terms: RuleTerms::from_json(
            &json!({"name": "ten", "event": "sale", "kind": "percentage", "rate_bps": 1000,
                    "duration": "lifetime"}),
        )
        .unwrap(),
    };
    app.store
        .insert_reward_rule(&rule, Utc::now())
        .await
        .unwrap();
    app.patch(
        &format!("/programs/{}", s.seed.program_id),
        &app.admin_key,
        &json!({"override_levels_bps": [1_000]}),
    )
    .await
    .ok(200);
    app.patch(
        &format!("/partners/{alice}"),
        &app.admin_key,
        &json!({"team_lead_id": bob}),
    )
    .await
    .ok(200);
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": alice, "code": "ALICE10"}),
    )
    .await
    .ok(201);

    // Before payout: a 20 % refund voids from pending.
    let first = convert(&app, &s, "o-1", 10_000).await;
    let refunds = format!("/conversions/{}/refunds", str_of(&first, "id"));
    app.post(
        &refunds,
        &app.admin_key,
        &json!({"amount": 2_000, "reason": "one item back", "external_id": "re_1"}),
    )
    .await
    .ok(201);
    assert_eq!(balance(&app, &alice).await, (800, 0, 0));
    assert_eq!(
        balance(&app, &bob).await,
        (80, 0, 0),
        "the override is reversed too"
    );

    // Released and paid out.
    app.post("/commissions/release", &app.admin_key, &json!({}))
        .await
        .ok(200);
    let paid = pay_out(&app, &s).await;
    let mut want = vec![(alice.clone(), 800), (bob.clone(), 80)];
    want.sort();
    assert_eq!(paid, want);
    assert_eq!(balance(&app, &alice).await, (0, 0, 800));

    // After payout: another 50 % of the value back. Alice owes 500 of the
    // 1,000 accrued in all (cumulative 70 % refunded), Bob 50.
    app.post(
        &refunds,
        &app.admin_key,
        &json!({"amount": 5_000, "reason": "plan downgraded", "external_id": "re_2"}),
    )
    .await
    .ok(201);
    assert_eq!(balance(&app, &alice).await, (0, -500, 800));
    assert_eq!(balance(&app, &bob).await, (0, -50, 80));
    let commissions = app
        .get(
            &format!("/commissions?conversion_id={}", str_of(&first, "id")),
            &app.admin_key,
        )
        .await
        .ok(200)["data"]
        .as_array()
        .unwrap()
        .clone();
    for c in &commissions {
        assert_eq!(c["status"], json!("paid"), "{c}");
        assert_eq!(
            c["voided"].as_i64().unwrap() * 10,
            c["amount"].as_i64().unwrap() * 7,
            "{c}"
        );
    }

    // A negative balance is carried: a small sale does not cover it, so
    // nobody is paid; a larger one does, and the payout deducts it.
    convert(&app, &s, "o-2", 2_000).await;
    app.post("/commissions/release", &app.admin_key, &json!({}))
        .await
        .ok(200);
    assert_eq!(balance(&app, &alice).await, (0, -300, 800));
    let none = app
        .post(
            "/payouts",
            &app.admin_key,
            &json!({"program_id": s.seed.program_id}),
        )
        .await;
    assert!(
        none.status.is_client_error(),
        "nothing to pay: {}",
        none.text
    );
    convert(&app, &s, "o-3", 10_000).await;
    app.post("/commissions/release", &app.admin_key, &json!({}))
        .await
        .ok(200);
    let paid = pay_out(&app, &s).await;
    let mut want = vec![(alice.clone(), 700), (bob.clone(), 70)];
    want.sort();
    assert_eq!(paid, want, "1,000 earned minus the 300 still owed back");
    assert_eq!(balance(&app, &alice).await, (0, 0, 1_500));

    // The books reconcile: every entry balances, and the program's
    // accounts sum to zero.
    let ledger = app
        .get(
            &format!("/ledger?program_id={}&limit=500", s.seed.program_id),
            &app.admin_key,
        )
        .await
        .ok(200)["data"]
        .as_array()
        .unwrap()
        .clone();
    for e in &ledger {
        let sum: i64 = e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, 0, "{e}");
    }
    let all = app.store.account_balances(&program).await.unwrap();
    assert_eq!(all.values().sum::<i64>(), 0);
}
