//! The commissions API end to end, on both backends: a conversion through
//! `POST /api/v1/conversions` accrues its partner's commission; the owner
//! lists it with its explanation, releases, approves, rejects, refunds,
//! adjusts, assigns and recomputes; a partner key sees only its own; bad
//! input is a 4xx naming the field and changes nothing.

#[macro_use]
mod common;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::ids::{ProgramId, RewardRuleId};

use common::shop::{shop, Shop};
use common::{str_of, TestApp};

on_both_backends!(
    a_partners_commission_is_listed_with_its_explanation_and_only_to_that_partner,
    a_refund_reverses_pro_rata_is_idempotent_and_bad_refunds_change_nothing,
    release_posts_due_commissions_and_approve_and_reject_move_one,
    an_adjustment_needs_a_reason_and_a_partner_sees_only_its_own_ledger_lines,
    an_unattributed_conversion_is_assigned_once_and_its_commission_backfilled,
    recompute_previews_todays_rule_and_apply_posts_only_the_correction,
);

/// A 10 % sale rule on the shop's program; returns its id.
async fn ten_percent(app: &TestApp, shop: &Shop) -> RewardRuleId {
    let program = ProgramId::parse(&shop.seed.program_id).unwrap();
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id: program,
        version: 1,
        terms: RuleTerms::from_json(
            &json!({"name": "ten", "event": "sale", "kind": "percentage", "rate_bps": 1000}),
        )
        .unwrap(),
    };
    app.store
        .insert_reward_rule(&rule, Utc::now())
        .await
        .unwrap();
    rule.id
}

/// A coupon for `partner_id`; returns its code.
async fn coupon(app: &TestApp, partner_id: &str, code: &str) -> String {
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": partner_id, "code": code}),
    )
    .await
    .ok(201);
    code.to_owned()
}

/// A conversion of `value` cents carrying `coupon` (none: no partner),
/// `days_ago` in the past; returns it.
async fn convert(
    app: &TestApp,
    shop: &Shop,
    order: &str,
    value: i64,
    coupon: Option<&str>,
    days_ago: i64,
) -> Value {
    let at = (Utc::now() - Duration::days(days_ago)).to_rfc3339();
    let mut body = json!({"external_id": order, "value": value, "currency": "EUR",
        "customer_id": format!("cust-{order}"), "occurred_at": at});
    if let Some(c) = coupon {
        body["coupon"] = json!(c);
    }
    app.post("/conversions", &shop.ingest, &body)
        .await
        .ok(201)
        .clone()
}

async fn commissions(app: &TestApp, query: &str, key: &str) -> Vec<Value> {
    app.get(&format!("/commissions?{query}"), key).await.ok(200)["data"]
        .as_array()
        .expect("a list")
        .clone()
}

async fn balance(app: &TestApp, partner: &str) -> Value {
    app.get(&format!("/partners/{partner}/balance"), &app.admin_key)
        .await
        .ok(200)
        .clone()
}

async fn a_partners_commission_is_listed_with_its_explanation_and_only_to_that_partner(
    app: TestApp,
) {
    let s = shop(&app).await;
    let rule = ten_percent(&app, &s).await;
    let code = coupon(&app, &s.seed.alice.id, "ALICE10").await;
    let c = convert(&app, &s, "o-1", 12_345, Some(&code), 0).await;
    let all = commissions(
        &app,
        &format!("conversion_id={}", str_of(&c, "id")),
        &app.admin_key,
    )
    .await;
    assert_eq!(all.len(), 1);
    let com = &all[0];
    assert_eq!(com["partner_id"], json!(s.seed.alice.id));
    assert_eq!(com["amount"], json!(1_235), "10 % of 123.45, half up");
    assert_eq!(com["status"], json!("pending"));
    assert_eq!(com["rule_id"], json!(rule.to_string()));
    assert_eq!(com["rule_version"], json!(1));
    let why = &com["explanation"];
    assert_eq!(
        why["computation"]["reward"],
        json!({"kind": "percentage", "rate_bps": 1000})
    );
    assert_eq!(why["attribution"]["touches"][0]["kind"], json!("coupon"));
    // Alice sees it; Bob sees nothing of it and cannot ask for Alice's.
    assert_eq!(commissions(&app, "", &s.seed.alice.key).await.len(), 1);
    assert!(commissions(&app, "", &s.seed.bob.key).await.is_empty());
    app.get(
        &format!("/commissions?partner_id={}", s.seed.alice.id),
        &s.seed.bob.key,
    )
    .await
    .assert_error(404, None, "another partner's list");
    app.get(
        &format!("/commissions/{}", str_of(com, "id")),
        &s.seed.bob.key,
    )
    .await
    .assert_error(404, None, "another partner's commission");
    app.get(
        &format!("/partners/{}/balance", s.seed.alice.id),
        &s.seed.bob.key,
    )
    .await
    .assert_error(404, None, "another partner's balance");
    let mine = app
        .get(
            &format!("/partners/{}/balance", s.seed.alice.id),
            &s.seed.alice.key,
        )
        .await;
    assert_eq!(
        mine.ok(200).clone(),
        json!({"partner_id": s.seed.alice.id, "currency": "EUR", "pending": 1_235, "payable": 0, "paid": 0})
    );
    app.get("/commissions?status=lost", &app.admin_key)
        .await
        .assert_error(400, Some("status"), "an unknown status");
}

async fn a_refund_reverses_pro_rata_is_idempotent_and_bad_refunds_change_nothing(app: TestApp) {
    let s = shop(&app).await;
    ten_percent(&app, &s).await;
    let code = coupon(&app, &s.seed.alice.id, "ALICE10").await;
    let c = convert(&app, &s, "o-2", 10_000, Some(&code), 0).await;
    let path = format!("/conversions/{}/refunds", str_of(&c, "id"));
    let ok = json!({"amount": 3_000, "reason": "returned one item", "external_id": "re_1"});
    let bad = [
        (
            json!({"amount": 0, "reason": "x", "external_id": "re_x"}),
            422,
            "amount",
            "zero",
        ),
        (
            json!({"amount": i64::MAX, "reason": "x", "external_id": "re_x"}),
            422,
            "amount",
            "i64::MAX",
        ),
        (
            json!({"amount": 10, "reason": "a\u{0}b", "external_id": "re_x"}),
            422,
            "reason",
            "a NUL byte",
        ),
        (
            json!({"amount": 10, "reason": "  ", "external_id": "re_x"}),
            422,
            "reason",
            "a blank reason",
        ),
        (
            json!({"amount": 10, "reason": "x", "external_id": "re_x", "kind": "gift"}),
            422,
            "kind",
            "an unknown kind",
        ),
        (
            json!({"amount": 10, "reason": "x"}),
            400,
            "external_id",
            "no refund id",
        ),
    ];
    for (body, status, field, case) in bad {
        app.post(&path, &app.admin_key, &body)
            .await
            .assert_error(status, Some(field), case);
    }
    app.post(&path, &s.seed.alice.key, &ok)
        .await
        .assert_error(403, None, "a partner key");
    app.post("/conversions/cnv_nothere/refunds", &app.admin_key, &ok)
        .await
        .assert_error(404, None, "an unknown conversion");
    assert_eq!(
        balance(&app, &s.seed.alice.id).await["pending"],
        json!(1_000),
        "nothing changed"
    );
    let first = app.post(&path, &app.admin_key, &ok).await;
    let refund = first.ok(201).clone();
    assert_eq!(refund["applied"], json!(3_000));
    assert_eq!(
        refund["reversed"],
        json!(300),
        "30 % of the 10.00 commission"
    );
    let again = app.post(&path, &app.admin_key, &ok).await;
    assert_eq!(again.ok(200).clone(), refund);
    assert!(common::shop::replayed(&again));
    assert_eq!(balance(&app, &s.seed.alice.id).await["pending"], json!(700));
    let listed = app.get(&path, &app.admin_key).await;
    assert_eq!(listed.ok(200)["data"].as_array().unwrap().len(), 1);
}

async fn release_posts_due_commissions_and_approve_and_reject_move_one(app: TestApp) {
    let s = shop(&app).await;
    ten_percent(&app, &s).await;
    let a = coupon(&app, &s.seed.alice.id, "ALICE10").await;
    let b = coupon(&app, &s.seed.bob.id, "BOB10").await;
    convert(&app, &s, "old", 5_000, Some(&a), 400).await;
    let fresh = convert(&app, &s, "new", 7_000, Some(&b), 0).await;
    app.post("/commissions/release", &s.seed.alice.key, &json!({}))
        .await
        .assert_error(403, None, "a partner key");
    let released = app
        .post("/commissions/release", &app.admin_key, &json!({}))
        .await;
    assert_eq!(
        released.ok(200)["released"],
        json!(1),
        "only the one past its hold"
    );
    assert_eq!(balance(&app, &s.seed.alice.id).await["payable"], json!(500));
    let bobs = commissions(
        &app,
        &format!("conversion_id={}", str_of(&fresh, "id")),
        &app.admin_key,
    )
    .await;
    let id = str_of(&bobs[0], "id").to_owned();
    let approved = app
        .post(
            &format!("/commissions/{id}/approve"),
            &app.admin_key,
            &json!({}),
        )
        .await;
    assert_eq!(approved.ok(200)["status"], json!("payable"));
    app.post(
        &format!("/commissions/{id}/reject"),
        &app.admin_key,
        &json!({}),
    )
    .await
    .assert_error(400, Some("reason"), "no reason");
    let rejected = app
        .post(
            &format!("/commissions/{id}/reject"),
            &app.admin_key,
            &json!({"reason": "fraud"}),
        )
        .await;
    let rejected = rejected.ok(200);
    assert_eq!(rejected["status"], json!("voided"));
    assert_eq!(rejected["voided"], json!(700));
    assert_eq!(balance(&app, &s.seed.bob.id).await["payable"], json!(0));
}

async fn an_adjustment_needs_a_reason_and_a_partner_sees_only_its_own_ledger_lines(app: TestApp) {
    let s = shop(&app).await;
    let path = format!("/partners/{}/adjustments", s.seed.alice.id);
    let bad = [
        (
            json!({"amount": 500, "reason": ""}),
            "reason",
            "an empty reason",
        ),
        (json!({"amount": 0, "reason": "bonus"}), "amount", "zero"),
        (
            json!({"amount": i64::MIN, "reason": "bonus"}),
            "amount",
            "i64::MIN",
        ),
    ];
    for (body, field, case) in bad {
        app.post(&path, &app.admin_key, &body)
            .await
            .assert_error(422, Some(field), case);
    }
    app.post(
        &path,
        &s.seed.alice.key,
        &json!({"amount": 500, "reason": "bonus"}),
    )
    .await
    .assert_error(403, None, "a partner key");
    let made = app
        .post(
            &path,
            &app.admin_key,
            &json!({"amount": 500, "reason": "launch bonus"}),
        )
        .await;
    assert_eq!(made.ok(201)["amount"], json!(500));
    assert_eq!(balance(&app, &s.seed.alice.id).await["payable"], json!(500));
    let ledger = app.get("/ledger", &s.seed.alice.key).await;
    let entries = ledger.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["memo"], json!("launch bonus"));
    // Only her own line: not the program's expense account.
    assert_eq!(entries[0]["lines"].as_array().unwrap().len(), 1);
    let all = app.get("/ledger", &app.admin_key).await;
    assert_eq!(all.ok(200)["data"][0]["lines"].as_array().unwrap().len(), 2);
    assert!(app.get("/ledger", &s.seed.bob.key).await.ok(200)["data"]
        .as_array()
        .unwrap()
        .is_empty());
}

async fn an_unattributed_conversion_is_assigned_once_and_its_commission_backfilled(app: TestApp) {
    let s = shop(&app).await;
    ten_percent(&app, &s).await;
    let c = convert(&app, &s, "walk-in", 20_000, None, 0).await;
    let id = str_of(&c, "id");
    assert!(
        commissions(&app, &format!("conversion_id={id}"), &app.admin_key)
            .await
            .is_empty()
    );
    let path = format!("/conversions/{id}/assign");
    let other = app.create_program("Other").await;
    let stranger = app.create_partner(str_of(&other, "id"), "stranger").await;
    app.post(
        &path,
        &app.admin_key,
        &json!({"partner_id": str_of(&stranger, "id")}),
    )
    .await
    .assert_error(422, Some("partner_id"), "a partner of another program");
    let made = app
        .post(&path, &app.admin_key, &json!({"partner_id": s.seed.bob.id}))
        .await;
    let data = made.ok(201)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["amount"], json!(2_000));
    assert_eq!(
        data[0]["explanation"]["attribution"],
        json!({"manual": true})
    );
    app.post(
        &path,
        &app.admin_key,
        &json!({"partner_id": s.seed.alice.id}),
    )
    .await
    .assert_error(409, Some("partner_id"), "already credited");
    let shown = app.get(&format!("/conversions/{id}"), &app.admin_key).await;
    assert_eq!(
        shown.ok(200)["partners"][0]["partner_id"],
        json!(s.seed.bob.id)
    );
}

async fn recompute_previews_todays_rule_and_apply_posts_only_the_correction(app: TestApp) {
    let s = shop(&app).await;
    let rule = ten_percent(&app, &s).await;
    let code = coupon(&app, &s.seed.alice.id, "ALICE10").await;
    let c = convert(&app, &s, "o-3", 10_000, Some(&code), 0).await;
    let terms = RuleTerms::from_json(
        &json!({"name": "fifteen", "event": "sale", "kind": "percentage", "rate_bps": 1500}),
    )
    .unwrap();
    app.store
        .update_reward_rule(&rule, &terms, Utc::now())
        .await
        .unwrap();
    let path = format!("/commissions/recompute?conversion_id={}", str_of(&c, "id"));
    let preview = app.post_raw(&path, &app.admin_key, "").await;
    let preview = preview.ok(200).clone();
    assert_eq!(preview["applied"], json!(false));
    assert_eq!(
        preview["corrections"],
        json!([{"partner_id": s.seed.alice.id, "kind": "commission", "amount": 500}])
    );
    assert_eq!(
        balance(&app, &s.seed.alice.id).await["pending"],
        json!(1_000),
        "a preview changes nothing"
    );
    let applied = app
        .post(&path, &app.admin_key, &json!({"apply": true}))
        .await;
    assert_eq!(applied.ok(200)["applied"], json!(true));
    assert_eq!(
        balance(&app, &s.seed.alice.id).await["pending"],
        json!(1_500)
    );
    let again = app
        .post(&path, &app.admin_key, &json!({"apply": true}))
        .await;
    assert_eq!(
        again.ok(200)["corrections"],
        json!([]),
        "nothing left to correct"
    );
    let all = commissions(
        &app,
        &format!("conversion_id={}", str_of(&c, "id")),
        &app.admin_key,
    )
    .await;
    let mut versions: Vec<i64> = all
        .iter()
        .map(|x| x["rule_version"].as_i64().unwrap())
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        vec![1, 2],
        "the first commission keeps version 1 (rate lock)"
    );
    app.post("/commissions/recompute", &app.admin_key, &json!({}))
        .await
        .assert_error(400, Some("conversion_id"), "no conversion");
}
