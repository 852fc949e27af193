//! Reward rules through the HTTP API: rules created with `/api/v1/reward-rules`,
//! conversions posted with `/api/v1/conversions`, and the commissions the
//! store made of them. Durations across a subscription's payments,
//! conditions, scope precedence, caps, and the rate lock of an edited rule.
//! Tiers and exchange rates are in `commission_tiers_fx.rs`.

#[macro_use]
mod common;

use chrono::{DateTime, Datelike, Duration, Months, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use tribute_core::ids::ConversionId;
use tribute_store::{CommissionFilter, Page};

use common::{str_of, Seed, TestApp};

on_both_backends!(
    durations_pay_the_first_payment_n_months_or_the_customers_lifetime,
    conditions_decide_whether_a_rule_pays,
    the_most_specific_scope_wins_then_the_highest_paying_rule_within_it,
    a_cap_limits_what_a_partner_earns_in_a_period,
    editing_a_rule_keeps_commissions_made_and_new_ones_use_the_new_version,
    rule_errors_name_the_field_and_other_keys_than_admin_are_refused,
);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Create a rule in `program` with `terms`; returns it.
async fn rule(app: &TestApp, program: &str, terms: Value) -> Value {
    let mut body = terms;
    body["program_id"] = json!(program);
    app.post("/reward-rules", &app.admin_key, &body)
        .await
        .ok(201)
        .clone()
}

/// A coupon `code` of `partner`, so conversions carrying it credit them.
async fn coupon(app: &TestApp, partner: &str, code: &str) {
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": partner, "code": code}),
    )
    .await
    .ok(201);
}

/// Post a conversion of `value` EUR in `program` with the extra `fields`.
async fn sale(app: &TestApp, program: &str, value: i64, fields: Value) -> Value {
    let mut body = json!({"program_id": program, "value": value, "currency": "EUR"});
    for (k, v) in fields.as_object().expect("fields are an object") {
        body[k] = v.clone();
    }
    app.post("/conversions", &app.admin_key, &body)
        .await
        .ok(201)
        .clone()
}

/// `(partner_id, amount, rule version)` of each commission of a conversion.
async fn commissions(app: &TestApp, conversion: &Value) -> Vec<(String, i64, Option<i64>)> {
    let id = ConversionId::parse(str_of(conversion, "id")).expect("a conversion id");
    let filter = CommissionFilter {
        conversion_id: Some(id),
        ..Default::default()
    };
    let mut out: Vec<_> = app
        .store
        .commissions(&filter, Page::default())
        .await
        .expect("listing commissions")
        .into_iter()
        .filter(|c| c.kind == "commission")
        .map(|c| (c.partner_id, c.amount, c.rule_version))
        .collect();
    out.sort();
    out
}

/// What a conversion paid in all (commissions, not overrides).
async fn paid(app: &TestApp, conversion: &Value) -> i64 {
    commissions(app, conversion).await.iter().map(|c| c.1).sum()
}

/// The seeded program with coupons `ALICE` and `BOB`.
async fn seeded(app: &TestApp) -> Seed {
    let seed = app.seed().await;
    coupon(app, &seed.alice.id, "ALICE").await;
    coupon(app, &seed.bob.id, "BOB").await;
    seed
}

async fn durations_pay_the_first_payment_n_months_or_the_customers_lifetime(app: TestApp) {
    let first = Utc::now()
        .checked_sub_months(Months::new(6))
        .expect("a time six months ago");
    for (duration, paid_payments) in [
        (json!("once"), 1),
        (json!({"months": 2}), 2),
        (json!("lifetime"), 5),
    ] {
        let seed = seeded(&app).await;
        let program = &seed.program_id;
        rule(
            &app,
            program,
            json!({"name": "10%", "event": "sale", "kind": "percentage", "rate_bps": 1000,
                   "duration": duration}),
        )
        .await;
        let mut each = Vec::new();
        // One subscription: the same customer pays monthly, five times.
        for month in 0..5 {
            let at = first + Months::new(month);
            let c = sale(
                &app,
                program,
                5_000,
                json!({"coupon": "ALICE", "customer_id": "cus-1", "occurred_at": rfc3339(at)}),
            )
            .await;
            each.push(paid(&app, &c).await);
        }
        let want: Vec<i64> = (0..5)
            .map(|m| if m < paid_payments { 500 } else { 0 })
            .collect();
        assert_eq!(each, want, "duration {duration}");
        // Another customer's first payment is a first payment again.
        let other = sale(
            &app,
            program,
            5_000,
            json!({"coupon": "ALICE", "customer_id": "cus-2"}),
        )
        .await;
        assert_eq!(
            paid(&app, &other).await,
            500,
            "duration {duration}: new customer"
        );
    }
    app.finish().await;
}

async fn conditions_decide_whether_a_rule_pays(app: TestApp) {
    let seed = seeded(&app).await;
    let program = &seed.program_id;
    rule(
        &app,
        program,
        json!({"name": "base", "event": "sale", "kind": "percentage", "rate_bps": 1000}),
    )
    .await;
    rule(
        &app,
        program,
        json!({"name": "pro in DE or FR, or big", "event": "sale", "kind": "percentage",
        "rate_bps": 2000, "conditions": {"all": [
            {"field": "sale.metadata.plan", "op": "eq", "value": "pro"},
            {"any": [
                {"field": "customer.country", "op": "in", "value": ["DE", "fr"]},
                {"field": "sale.value", "op": "gte", "value": 50000}
            ]}
        ]}}),
    )
    .await;
    let cases = [
        (
            "pro in DE",
            10_000,
            json!({"plan": "pro", "country": "DE"}),
            2_000,
        ),
        (
            "pro in France",
            10_000,
            json!({"plan": "pro", "country": "FR"}),
            2_000,
        ),
        (
            "pro elsewhere, small",
            10_000,
            json!({"plan": "pro", "country": "US"}),
            1_000,
        ),
        (
            "pro elsewhere, big",
            50_000,
            json!({"plan": "pro", "country": "US"}),
            10_000,
        ),
        (
            "basic in DE",
            10_000,
            json!({"plan": "basic", "country": "DE"}),
            1_000,
        ),
        ("no metadata", 10_000, json!({}), 1_000),
    ];
    for (case, value, metadata, want) in cases {
        let c = sale(
            &app,
            program,
            value,
            json!({"coupon": "ALICE", "metadata": metadata}),
        )
        .await;
        assert_eq!(paid(&app, &c).await, want, "{case}");
    }
    app.finish().await;
}

async fn the_most_specific_scope_wins_then_the_highest_paying_rule_within_it(app: TestApp) {
    let seed = seeded(&app).await;
    let program = &seed.program_id;
    let carol = app.create_partner(program, "carol").await;
    let carol_id = str_of(&carol, "id").to_owned();
    coupon(&app, &carol_id, "CAROL").await;
    app.patch(
        &format!("/partners/{}", seed.bob.id),
        &app.admin_key,
        &json!({"group": "agencies"}),
    )
    .await
    .ok(200);
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let pct = |name: &str, bps: i64, scope: Value| {
        json!({"name": name, "event": "sale", "kind": "percentage", "rate_bps": bps,
               "scope": scope})
    };
    for terms in [
        pct("program", 1000, json!("program")),
        // A group pays more than the partner rules: the partner's still win.
        pct("agencies", 3000, json!({"group": "agencies"})),
        pct("alice", 2000, json!({"partner_id": seed.alice.id})),
        pct("alice, better", 2500, json!({"partner_id": seed.alice.id})),
        pct("alice's link", 500, json!({"link_id": str_of(&link, "id")})),
    ] {
        rule(&app, program, terms).await;
    }
    let click = app.click_link(str_of(&link, "code")).await;
    let cases = [
        (
            "no scope but the program",
            json!({"coupon": "CAROL"}),
            1_000,
        ),
        ("the group", json!({"coupon": "BOB"}), 3_000),
        ("the partner's best", json!({"coupon": "ALICE"}), 2_500),
        ("the link over the partner", json!({"click_id": click}), 500),
    ];
    for (case, fields, want) in cases {
        let c = sale(&app, program, 10_000, fields).await;
        assert_eq!(paid(&app, &c).await, want, "{case}");
    }
    app.finish().await;
}

async fn a_cap_limits_what_a_partner_earns_in_a_period(app: TestApp) {
    let seed = seeded(&app).await;
    let program = &seed.program_id;
    rule(
        &app,
        program,
        json!({"name": "10 EUR a sale, 25 a month", "event": "sale", "kind": "fixed",
               "amount": 1000, "cap": {"amount": 2500, "period": "month"}}),
    )
    .await;
    // Two months ago, then last month: every time is in the past.
    let now = Utc::now();
    let month_start = |months_ago: u32| {
        let d = now
            .checked_sub_months(Months::new(months_ago))
            .expect("a past month");
        Utc.with_ymd_and_hms(d.year(), d.month(), 1, 12, 0, 0)
            .single()
            .expect("a day")
    };
    let mut each = Vec::new();
    let mut made = Vec::new();
    for at in [
        month_start(2) + Duration::days(1),
        month_start(2) + Duration::days(2),
        month_start(2) + Duration::days(3),
        month_start(1) + Duration::days(1),
    ] {
        let c = sale(
            &app,
            program,
            9_900,
            json!({"coupon": "ALICE", "occurred_at": rfc3339(at)}),
        )
        .await;
        each.push(paid(&app, &c).await);
        made.push(c);
    }
    assert_eq!(
        each,
        vec![1000, 1000, 500, 1000],
        "capped at 25 EUR a month"
    );
    // Recomputing the sale that reached the cap does not count its own
    // commission against it: today's rules give what it was paid.
    let preview = app
        .post_raw(
            &format!(
                "/commissions/recompute?conversion_id={}",
                str_of(&made[2], "id")
            ),
            &app.admin_key,
            "",
        )
        .await;
    assert_eq!(
        preview.ok(200)["corrections"],
        json!([]),
        "nothing to correct"
    );
    // Another partner has a cap of their own.
    let c = sale(
        &app,
        program,
        9_900,
        json!({"coupon": "BOB", "occurred_at": rfc3339(month_start(2) + Duration::days(4))}),
    )
    .await;
    assert_eq!(paid(&app, &c).await, 1000);
    app.finish().await;
}

async fn editing_a_rule_keeps_commissions_made_and_new_ones_use_the_new_version(app: TestApp) {
    let seed = seeded(&app).await;
    let program = &seed.program_id;
    let ten = json!({"name": "10%", "event": "sale", "kind": "percentage", "rate_bps": 1000});
    let created = rule(&app, program, ten).await;
    assert_eq!(created["version"], 1);
    let id = str_of(&created, "id").to_owned();
    let before = sale(&app, program, 10_000, json!({"coupon": "ALICE"})).await;
    let alice = seed.alice.id.clone();
    assert_eq!(
        commissions(&app, &before).await,
        vec![(alice.clone(), 1_000, Some(1))]
    );

    let twenty = json!({"name": "20%", "event": "sale", "kind": "percentage", "rate_bps": 2000});
    let edited = app
        .patch(&format!("/reward-rules/{id}"), &app.admin_key, &twenty)
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (edited["version"].as_i64(), edited["rate_bps"].as_i64()),
        (Some(2), Some(2000))
    );
    assert_eq!(
        commissions(&app, &before).await,
        vec![(alice.clone(), 1_000, Some(1))],
        "the commission made keeps its version"
    );
    let after = sale(&app, program, 10_000, json!({"coupon": "ALICE"})).await;
    assert_eq!(
        commissions(&app, &after).await,
        vec![(alice.clone(), 2_000, Some(2))]
    );
    // Both versions stay readable.
    let v1 = app
        .get(&format!("/reward-rules/{id}?version=1"), &app.admin_key)
        .await;
    assert_eq!(v1.ok(200)["rate_bps"], 1000);
    let current = app
        .get(&format!("/reward-rules/{id}"), &app.admin_key)
        .await;
    assert_eq!(current.ok(200)["version"], 2);
    app.get(&format!("/reward-rules/{id}?version=3"), &app.admin_key)
        .await
        .assert_error(404, None, "a version not made");

    // Retired: listed no more, pays no more, still readable.
    let retired = app
        .api(
            reqwest::Method::DELETE,
            &format!("/reward-rules/{id}"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(retired.ok(200)["deleted"], true);
    let list = app
        .get(
            &format!("/reward-rules?program_id={program}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(list.ok(200)["data"], json!([]));
    let late = sale(&app, program, 10_000, json!({"coupon": "ALICE"})).await;
    assert_eq!(commissions(&app, &late).await, vec![]);
    app.patch(
        &format!("/reward-rules/{id}"),
        &app.admin_key,
        &json!(twenty),
    )
    .await
    .assert_error(404, None, "editing a retired rule");
    app.finish().await;
}

async fn rule_errors_name_the_field_and_other_keys_than_admin_are_refused(app: TestApp) {
    let seed = seeded(&app).await;
    let program = &seed.program_id;
    let other = app.create_program("Other").await;
    let stranger = app.create_partner(str_of(&other, "id"), "stranger").await;
    let valid = json!({"program_id": program, "name": "10%", "event": "sale",
                       "kind": "percentage", "rate_bps": 1000});
    let with = |k: &str, v: Value| {
        let mut b = valid.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = valid.clone();
        b.as_object_mut().expect("an object").remove(k);
        b
    };
    let cases = [
        ("no kind", without("kind"), "kind"),
        ("no program", without("program_id"), "program_id"),
        (
            "a rate over 100%",
            with("rate_bps", json!(10_001)),
            "rate_bps",
        ),
        (
            "an amount on a percentage",
            with("amount", json!(5)),
            "amount",
        ),
        ("an unknown event", with("event", json!("refund")), "event"),
        (
            "months on a lead rule",
            {
                let mut b = with("event", json!("lead"));
                b["duration"] = json!({"months": 3});
                b
            },
            "duration",
        ),
        (
            "zero months",
            with("duration", json!({"months": 0})),
            "duration.months",
        ),
        (
            "an unknown condition field",
            with(
                "conditions",
                json!({"field": "sale.colour", "op": "eq", "value": "red"}),
            ),
            "conditions.field",
        ),
        (
            "ordering on text",
            with(
                "conditions",
                json!({"all": [{"field": "sale.sku", "op": "gt", "value": "A"}]}),
            ),
            "conditions.all[0].op",
        ),
        (
            "a partner of another program",
            with("scope", json!({"partner_id": str_of(&stranger, "id")})),
            "scope.partner_id",
        ),
        (
            "a cap without a period",
            with("cap", json!({"amount": 5})),
            "cap.period",
        ),
        ("an id", with("id", json!("rwr_x1")), "id"),
        ("an unknown field", with("colour", json!("red")), "colour"),
    ];
    for (case, body, field) in cases {
        app.post("/reward-rules", &app.admin_key, &body)
            .await
            .assert_error(422, Some(field), case);
    }
    app.get("/reward-rules", &app.admin_key).await.assert_error(
        400,
        Some("program_id"),
        "a list without its program",
    );
    let list = app
        .get(
            &format!("/reward-rules?program_id={program}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(list.ok(200)["data"], json!([]), "nothing was written");

    let made = rule(&app, program, without("program_id")).await;
    let id = str_of(&made, "id");
    let ingest = app.ingest_key(program).await;
    for key in [&seed.alice.key, &ingest] {
        app.post("/reward-rules", key, &valid)
            .await
            .assert_error(403, None, "create");
        app.get(&format!("/reward-rules/{id}"), key)
            .await
            .assert_error(403, None, "read");
        app.get(&format!("/reward-rules?program_id={program}"), key)
            .await
            .assert_error(403, None, "list");
    }
    app.patch(
        &format!("/reward-rules/{id}"),
        &app.admin_key,
        &with("rate_bps", json!(500)),
    )
    .await
    .assert_error(422, Some("program_id"), "a rule stays in its program");
    app.finish().await;
}
