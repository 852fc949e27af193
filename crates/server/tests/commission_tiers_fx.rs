//! Tiers and exchange rates through the HTTP API, as commissions see them:
//! partners promoted and demoted by `POST /api/v1/tiers/evaluate` (and by
//! the evaluator on its own), the tier's multiplier applied to the next
//! conversion, each move listed with its reason; conversions in another
//! currency converted with the rate in force at their time, and refused
//! with nothing written when no rate is on file.

#[macro_use]
mod common;

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tribute_core::ids::{ConversionId, PartnerId, ProgramId};
use tribute_server::ServerConfig;
use tribute_store::{CommissionFilter, NewRefund, Page, RefundKind};

use common::snippet::{collect, write_key};
use common::{spawn_app_with, str_of, test_config, Seed, TestApp};

on_both_backends!(
    partners_move_between_tiers_on_evaluation_and_the_multiplier_applies_to_new_sales,
    tier_errors_name_the_field_and_a_taken_name_or_rank_is_a_conflict,
    a_sale_in_another_currency_is_converted_with_the_rate_in_force_at_its_time,
    without_a_rate_on_file_a_sale_is_refused_by_every_way_in_and_nothing_is_written,
);

fn ago(days: i64) -> String {
    (Utc::now() - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A program with `ALICE` and `BOB` coupons and a 10% rule.
async fn ten_percent(app: &TestApp) -> Seed {
    let seed = app.seed().await;
    for (partner, code) in [(&seed.alice.id, "ALICE"), (&seed.bob.id, "BOB")] {
        app.post(
            "/coupons",
            &app.admin_key,
            &json!({"partner_id": partner, "code": code}),
        )
        .await
        .ok(201);
    }
    app.post(
        "/reward-rules",
        &app.admin_key,
        &json!({"program_id": seed.program_id, "name": "10%", "event": "sale",
                "kind": "percentage", "rate_bps": 1000}),
    )
    .await
    .ok(201);
    seed
}

async fn sale(app: &TestApp, program: &str, body: Value) -> Value {
    let mut b = json!({"program_id": program, "currency": "EUR"});
    for (k, v) in body.as_object().expect("an object") {
        b[k] = v.clone();
    }
    app.post("/conversions", &app.admin_key, &b)
        .await
        .ok(201)
        .clone()
}

/// `(amount, currency)` of each commission of a conversion.
async fn paid(app: &TestApp, conversion: &Value) -> Vec<(i64, String)> {
    let filter = CommissionFilter {
        conversion_id: Some(ConversionId::parse(str_of(conversion, "id")).expect("an id")),
        ..Default::default()
    };
    app.store
        .commissions(&filter, Page::default())
        .await
        .expect("listing commissions")
        .into_iter()
        .map(|c| (c.amount, c.currency))
        .collect()
}

async fn evaluate(app: &TestApp, program: &str) -> Vec<Value> {
    let reply = app
        .post(
            "/tiers/evaluate",
            &app.admin_key,
            &json!({"program_id": program}),
        )
        .await;
    reply.ok(200)["changes"]
        .as_array()
        .expect("changes")
        .clone()
}

async fn tier_of(app: &TestApp, partner: &str) -> Value {
    let reply = app
        .get(&format!("/partners/{partner}"), &app.admin_key)
        .await;
    reply.ok(200)["tier"].clone()
}

async fn partners_move_between_tiers_on_evaluation_and_the_multiplier_applies_to_new_sales(
    app: TestApp,
) {
    let seed = ten_percent(&app).await;
    let program = &seed.program_id;
    let (alice, bob) = (&seed.alice.id, &seed.bob.id);
    for (name, rank, multiplier, min) in [("silver", 1, 10_000, 0), ("gold", 2, 15_000, 15_000)] {
        app.post(
            "/tiers",
            &app.admin_key,
            &json!({"program_id": program, "name": name, "rank": rank,
                    "multiplier_bps": multiplier,
                    "threshold": {"metric": "revenue", "min": min, "window_days": 30}}),
        )
        .await
        .ok(201);
    }
    let first = sale(&app, program, json!({"value": 20_000, "coupon": "ALICE"})).await;
    assert_eq!(
        paid(&app, &first).await,
        vec![(2_000, "EUR".into())],
        "no tier yet"
    );

    let changes = evaluate(&app, program).await;
    let moved: Vec<(&str, &Value, &Value)> = changes
        .iter()
        .map(|c| (str_of(c, "partner_id"), &c["from"], &c["to"]))
        .collect();
    assert_eq!(moved.len(), 2, "{changes:?}");
    assert!(moved.contains(&(alice.as_str(), &Value::Null, &json!("gold"))));
    assert!(moved.contains(&(bob.as_str(), &Value::Null, &json!("silver"))));
    assert_eq!(tier_of(&app, alice).await, "gold");
    assert!(
        evaluate(&app, program).await.is_empty(),
        "nothing moved since"
    );

    let second = sale(&app, program, json!({"value": 10_000, "coupon": "ALICE"})).await;
    assert_eq!(
        paid(&app, &second).await,
        vec![(1_500, "EUR".into())],
        "gold is ×1.5"
    );

    // Alice sees her own moves with their reasons, and nobody else's.
    let mine = app
        .get(&format!("/partners/{alice}/tier-changes"), &seed.alice.key)
        .await;
    let mine = mine.ok(200)["data"].as_array().expect("a list").clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0]["reason"],
        "revenue over the last 30 days is 200.00 EUR ≥ 150.00 EUR for gold"
    );
    app.get(&format!("/partners/{bob}/tier-changes"), &seed.alice.key)
        .await
        .assert_error(404, None, "another partner's changes");

    // The first sale is refunded in full: 100.00 EUR left, below gold.
    app.store
        .refund_conversion(
            &NewRefund {
                conversion_id: ConversionId::parse(str_of(&first, "id")).expect("an id"),
                external_id: "re-1".into(),
                kind: RefundKind::Refund,
                amount: 20_000,
                reason: "returned".into(),
            },
            Utc::now(),
        )
        .await
        .expect("refunding");
    let changes = evaluate(&app, program).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (&changes[0]["from"], &changes[0]["to"]),
        (&json!("gold"), &json!("silver"))
    );
    let reason = str_of(&changes[0], "reason");
    assert!(
        reason.contains("100.00 EUR, below 150.00 EUR for gold"),
        "{reason}"
    );
    let third = sale(&app, program, json!({"value": 10_000, "coupon": "ALICE"})).await;
    assert_eq!(
        paid(&app, &third).await,
        vec![(1_000, "EUR".into())],
        "silver is ×1"
    );

    // Renaming a tier takes its partners along.
    let tiers = app
        .get(&format!("/tiers?program_id={program}"), &app.admin_key)
        .await;
    let tiers = tiers.ok(200)["data"].as_array().expect("a list").clone();
    assert_eq!(
        tiers.iter().map(|t| t["name"].clone()).collect::<Vec<_>>(),
        vec![json!("gold"), json!("silver")]
    );
    let silver = str_of(&tiers[1], "id");
    app.patch(
        &format!("/tiers/{silver}"),
        &app.admin_key,
        &json!({"name": "member"}),
    )
    .await
    .ok(200);
    assert_eq!(tier_of(&app, alice).await, "member");
    assert_eq!(tier_of(&app, bob).await, "member");
    let history = app
        .get(&format!("/partners/{alice}/tier-changes"), &app.admin_key)
        .await;
    assert_eq!(history.ok(200)["data"].as_array().map(Vec::len), Some(2));

    // A tier set by hand is a change with its reason too; saving the
    // partner without touching the tier is none.
    app.patch(
        &format!("/partners/{alice}"),
        &app.admin_key,
        &json!({"tier": "gold"}),
    )
    .await
    .ok(200);
    app.patch(
        &format!("/partners/{alice}"),
        &app.admin_key,
        &json!({"name": "Alice A."}),
    )
    .await
    .ok(200);
    let history = app
        .get(&format!("/partners/{alice}/tier-changes"), &app.admin_key)
        .await;
    let history = history.ok(200)["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(
        (
            &history[0]["from"],
            &history[0]["to"],
            &history[0]["reason"]
        ),
        (
            &json!("member"),
            &json!("gold"),
            &json!("set by the program's owner")
        ),
        "newest first: {history:?}"
    );
    app.finish().await;
}

async fn tier_errors_name_the_field_and_a_taken_name_or_rank_is_a_conflict(app: TestApp) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    let gold = json!({"program_id": program, "name": "gold", "rank": 2, "multiplier_bps": 12_000});
    app.post("/tiers", &app.admin_key, &gold).await.ok(201);
    let with = |k: &str, v: Value| {
        let mut b = gold.clone();
        b[k] = v;
        b
    };
    for (case, body, status, field) in [
        ("the same name", with("rank", json!(3)), 409, "name"),
        (
            "the same name, other case",
            {
                let mut b = with("rank", json!(3));
                b["name"] = json!("Gold");
                b
            },
            409,
            "name",
        ),
        ("the same rank", with("name", json!("silver")), 409, "rank"),
        (
            "a multiplier over ×10",
            with("multiplier_bps", json!(100_001)),
            422,
            "multiplier_bps",
        ),
        (
            "a window of no days",
            with(
                "threshold",
                json!({"metric": "revenue", "min": 1, "window_days": 0}),
            ),
            422,
            "threshold.window_days",
        ),
        (
            "an unknown metric",
            with(
                "threshold",
                json!({"metric": "clicks", "min": 1, "window_days": 9}),
            ),
            422,
            "threshold.metric",
        ),
        (
            "no such program",
            with("program_id", json!(ProgramId::generate())),
            422,
            "program_id",
        ),
    ] {
        app.post("/tiers", &app.admin_key, &body)
            .await
            .assert_error(status, Some(field), case);
    }
    let list = app
        .get(&format!("/tiers?program_id={program}"), &app.admin_key)
        .await;
    assert_eq!(
        list.ok(200)["data"].as_array().map(Vec::len),
        Some(1),
        "nothing written"
    );
    for (method, path, body) in [
        (Method::POST, "/tiers".to_owned(), Some(gold.clone())),
        (
            Method::POST,
            "/tiers/evaluate".to_owned(),
            Some(json!({"program_id": program})),
        ),
        (Method::GET, format!("/tiers?program_id={program}"), None),
    ] {
        app.api(method, &path, Some(&seed.alice.key), body.as_ref())
            .await
            .assert_error(403, None, &path);
    }
    app.finish().await;
}

async fn a_sale_in_another_currency_is_converted_with_the_rate_in_force_at_its_time(app: TestApp) {
    let seed = ten_percent(&app).await;
    let program = &seed.program_id;
    let rate = |from: &str, to: &str, rate: &str, days: i64| {
        json!({"program_id": program, "from_currency": from, "to_currency": to, "rate": rate,
               "effective_at": ago(days)})
    };
    let old = app
        .post("/fx-rates", &app.admin_key, &rate("USD", "EUR", "0.90", 10))
        .await
        .ok(201)
        .clone();
    assert_eq!(old["rate"], "0.9", "kept exact, written canonically");
    let new = app
        .post("/fx-rates", &app.admin_key, &rate("USD", "EUR", "0.8", 2))
        .await
        .ok(201)
        .clone();
    for (case, body, status, field) in [
        (
            "into another currency",
            rate("GBP", "USD", "1.25", 1),
            422,
            "to_currency",
        ),
        (
            "into itself",
            rate("EUR", "EUR", "1", 1),
            422,
            "to_currency",
        ),
        ("a rate of zero", rate("GBP", "EUR", "0.0", 1), 422, "rate"),
        (
            "a rate as a number",
            {
                let mut b = rate("GBP", "EUR", "1", 1);
                b["rate"] = json!(1.17);
                b
            },
            422,
            "rate",
        ),
        (
            "the same pair and time",
            {
                let mut b = rate("USD", "EUR", "0.7", 0);
                b["effective_at"] = new["effective_at"].clone();
                b
            },
            409,
            "effective_at",
        ),
    ] {
        app.post("/fx-rates", &app.admin_key, &body)
            .await
            .assert_error(status, Some(field), case);
    }
    app.post("/fx-rates", &seed.alice.key, &rate("GBP", "EUR", "1.1", 1))
        .await
        .assert_error(403, None, "a partner key");
    let listed = app
        .get(&format!("/fx-rates?program_id={program}"), &app.admin_key)
        .await;
    assert_eq!(listed.ok(200)["data"].as_array().map(Vec::len), Some(2));

    // Five days ago the older rate was in force.
    let then = sale(
        &app,
        program,
        json!({"value": 10_000, "currency": "USD",
        "coupon": "ALICE", "occurred_at": ago(5)}),
    )
    .await;
    assert_eq!(
        (then["value"].as_i64(), str_of(&then, "currency")),
        (Some(9_000), "EUR")
    );
    assert_eq!(then["fx"]["original_value"], 10_000);
    assert_eq!(then["fx"]["original_currency"], "USD");
    assert_eq!(then["fx"]["rate"], "0.9");
    assert_eq!(then["fx"]["rate_effective_at"], old["effective_at"]);
    assert_eq!(
        then["partners"][0]["amount"], 9_000,
        "credit in the program's currency"
    );
    assert_eq!(paid(&app, &then).await, vec![(900, "EUR".into())]);
    // Now the newer one, line by line too.
    let now = sale(
        &app,
        program,
        json!({"value": 10_001, "currency": "usd", "coupon": "ALICE",
        "products": [{"sku": "A", "amount": 5_000}, {"sku": "B", "amount": 5_001}]}),
    )
    .await;
    assert_eq!(now["value"], 8_001, "100.01 USD × 0.8 = 80.008 → 80.01 EUR");
    assert_eq!(now["products"][0]["amount"], 4_000);
    assert_eq!(now["products"][1]["amount"], 4_001);
    assert_eq!(paid(&app, &now).await, vec![(800, "EUR".into())]);
    // A sale in the program's currency has no rate to show.
    let plain = sale(&app, program, json!({"value": 100, "coupon": "ALICE"})).await;
    assert!(plain.get("fx").is_none(), "{plain}");

    // The newer rate deleted: the sales made keep it, new ones use the older.
    app.api(
        Method::DELETE,
        &format!("/fx-rates/{}", str_of(&new, "id")),
        Some(&app.admin_key),
        None,
    )
    .await
    .ok(200);
    let kept = app
        .get(
            &format!("/conversions/{}", str_of(&now, "id")),
            &app.admin_key,
        )
        .await;
    assert_eq!(kept.ok(200)["fx"]["rate"], "0.8");
    let after = sale(&app, program, json!({"value": 10_000, "currency": "USD"})).await;
    assert_eq!(after["value"], 9_000);

    // A rule on `sale.currency` reads the currency the sale was reported
    // in, not the program's it was converted into.
    app.post(
        "/reward-rules",
        &app.admin_key,
        &json!({"program_id": program, "name": "50 EUR on USD sales", "event": "sale",
                "kind": "fixed", "amount": 5_000,
                "conditions": {"field": "sale.currency", "op": "eq", "value": "USD"}}),
    )
    .await
    .ok(201);
    let in_usd = sale(
        &app,
        program,
        json!({"value": 10_000, "currency": "USD", "coupon": "ALICE"}),
    )
    .await;
    assert_eq!(paid(&app, &in_usd).await, vec![(5_000, "EUR".into())]);
    let in_eur = sale(&app, program, json!({"value": 9_000, "coupon": "ALICE"})).await;
    assert_eq!(
        paid(&app, &in_eur).await,
        vec![(900, "EUR".into())],
        "the USD rule does not pay a sale reported in EUR"
    );
    app.finish().await;
}

async fn without_a_rate_on_file_a_sale_is_refused_by_every_way_in_and_nothing_is_written(
    app: TestApp,
) {
    let seed = ten_percent(&app).await;
    let program = &seed.program_id;
    // A rate that takes effect tomorrow is not in force today.
    app.post(
        "/fx-rates",
        &app.admin_key,
        &json!({"program_id": program, "from_currency": "JPY", "to_currency": "EUR",
                "rate": "0.0061", "effective_at": ago(-1)}),
    )
    .await
    .ok(201);
    for currency in ["JPY", "CHF"] {
        let body = json!({"program_id": program, "value": 5_000, "currency": currency,
                          "coupon": "ALICE", "external_id": format!("o-{currency}")});
        app.post("/conversions", &app.admin_key, &body)
            .await
            .assert_error(422, Some("currency"), currency);
    }
    // The postback.
    let token = app.postback_token(program).await;
    app.visit(&format!(
        "/postback?program_id={program}&token={token}&amount=10.00&currency=GBP&order_id=pb-1"
    ))
    .await
    .assert_error(422, Some("currency"), "a postback in GBP");
    // The snippet: the whole batch is refused, its page view too.
    let key = write_key(&app, &ProgramId::parse(program).expect("an id")).await;
    let batch = json!({"key": key, "events": [
        {"type": "page_view", "event_id": "pv-1", "anonymous_id": "a"},
        {"type": "conversion", "event_id": "c-1", "anonymous_id": "a",
         "properties": {"revenue": "12.00", "currency": "CHF"}},
    ]});
    collect(&app, Some("https://acme.test"), &batch.to_string())
        .await
        .assert_error(
            422,
            Some("events[1].properties.currency"),
            "a snippet batch",
        );
    assert_eq!(app.event_count(program).await, 0, "no event written");
    assert_eq!(
        app.conversion_count(program).await,
        0,
        "no conversion written"
    );
    let partner = PartnerId::parse(&seed.alice.id).expect("an id");
    let filter = CommissionFilter {
        partner_id: Some(partner),
        ..Default::default()
    };
    let commissions = app.store.commissions(&filter, Page::default()).await;
    assert_eq!(
        commissions.expect("listing").len(),
        0,
        "no commission written"
    );
    app.finish().await;
}

/// The evaluator runs on its own, shortly after start and then every `tier_interval`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tier_evaluator_moves_partners_on_its_own() {
    let app = spawn_app_with(ServerConfig {
        tier_interval: StdDuration::from_millis(100),
        ..test_config()
    })
    .await;
    let seed = app.seed().await;
    app.post(
        "/tiers",
        &app.admin_key,
        &json!({"program_id": seed.program_id, "name": "member", "rank": 0,
                "multiplier_bps": 10_000,
                "threshold": {"metric": "conversions", "min": 0, "window_days": 1}}),
    )
    .await
    .ok(201);
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while tier_of(&app, &seed.alice.id).await != "member" {
        assert!(Instant::now() < deadline, "alice not moved within 10 s");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let changes = app
        .get(
            &format!("/partners/{}/tier-changes", seed.alice.id),
            &app.admin_key,
        )
        .await;
    let changes = changes.ok(200)["data"].as_array().expect("a list").clone();
    assert_eq!(changes.len(), 1, "moved once: {changes:?}");
    assert_eq!(
        changes[0]["reason"],
        "conversions over the last day is 0 ≥ 0 for member"
    );
    app.finish().await;
}
