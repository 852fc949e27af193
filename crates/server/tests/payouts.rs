//! Black-box tests of payouts: a batch made from released commissions,
//! exported as PayPal, Wise and generic CSV, marked paid (twice); partner
//! keys seeing only their own batches, requests and statements; statements
//! as JSON and CSV; programs' override levels and minimum payout, and
//! partners' payout e-mail.

#[macro_use]
mod common;

use chrono::{Duration, Utc};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::ids::{PartnerId, ProgramId, RewardRuleId};

use common::{str_of, Reply, Seed, TestApp};

on_both_backends!(
    a_batch_is_made_exported_in_each_format_and_marked_paid_once,
    a_partner_key_sees_only_its_own_batches_requests_and_statement,
    a_statement_is_served_as_json_and_as_csv_with_every_line_explained,
    programs_take_override_levels_and_a_minimum_and_partners_a_payout_email,
);

/// A 10% sale rule on the seeded program, whose commissions are payable
/// as soon as they are released (no hold period).
async fn ten_percent(app: &TestApp, seed: &Seed) {
    app.patch(
        &format!("/programs/{}", seed.program_id),
        &app.admin_key,
        &json!({"hold_days": 0}),
    )
    .await
    .ok(200);
    let terms = RuleTerms::from_json(&json!({
        "name": "Ten percent", "event": "sale", "kind": "percentage", "rate_bps": 1000,
        "duration": "lifetime"
    }))
    .unwrap();
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id: ProgramId::parse(&seed.program_id).unwrap(),
        version: 1,
        terms,
    };
    app.store
        .insert_reward_rule(&rule, Utc::now())
        .await
        .unwrap();
}

/// A sale of `value` through `partner_id`'s coupon `code` (made here).
async fn sale_by_coupon(app: &TestApp, seed: &Seed, partner_id: &str, code: &str, value: i64) {
    app.post(
        "/coupons",
        &app.admin_key,
        &json!({"partner_id": partner_id, "code": code}),
    )
    .await
    .ok(201);
    app.post(
        "/conversions",
        &app.admin_key,
        &json!({"program_id": seed.program_id, "value": value, "currency": "EUR", "coupon": code}),
    )
    .await
    .ok(201);
}

/// Every commission past its hold period is payable now.
async fn release_all(app: &TestApp) -> u64 {
    app.store.release_due(Utc::now()).await.unwrap()
}

/// Credit `partner`'s payable balance by hand.
async fn credit(app: &TestApp, seed: &Seed, partner: &str, amount: i64, reason: &str) {
    app.store
        .adjust_partner(
            &ProgramId::parse(&seed.program_id).unwrap(),
            &PartnerId::parse(partner).unwrap(),
            amount,
            reason,
            Utc::now(),
        )
        .await
        .unwrap();
}

/// `(partner_id, amount)` of each item of a batch.
fn items(payout: &Value) -> Vec<(String, i64)> {
    payout["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                str_of(i, "partner_id").to_owned(),
                i["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {reply:?}"))
        .to_str()
        .unwrap()
}

/// The rows of a CSV answer, header included.
fn rows(reply: &Reply) -> Vec<Vec<String>> {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(
        header(reply, CONTENT_TYPE.as_str()),
        "text/csv; charset=utf-8"
    );
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(reply.text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

async fn a_batch_is_made_exported_in_each_format_and_marked_paid_once(app: TestApp) {
    let seed = app.seed().await;
    let (alice, bob) = (&seed.alice, &seed.bob);
    app.patch(
        &format!("/partners/{}", alice.id),
        &app.admin_key,
        &json!({"payout_email": "alice.pays@example.org", "email": "alice@example.com"}),
    )
    .await
    .ok(200);
    app.patch(
        &format!("/partners/{}", bob.id),
        &app.admin_key,
        &json!({"email": "bob@example.com"}),
    )
    .await
    .ok(200);
    ten_percent(&app, &seed).await;
    sale_by_coupon(&app, &seed, &alice.id, "ALICE10", 10_000).await;
    sale_by_coupon(&app, &seed, &bob.id, "BOB10", 5_050).await;
    assert_eq!(release_all(&app).await, 2);

    let created = app
        .post(
            "/payouts",
            &app.admin_key,
            &json!({"program_id": seed.program_id}),
        )
        .await;
    let payout = created.ok(201).clone();
    let mut expected = vec![(alice.id.clone(), 1000), (bob.id.clone(), 505)];
    expected.sort();
    assert_eq!(items(&payout), expected);
    assert_eq!(
        (payout["total"].as_i64(), payout["status"].as_str()),
        (Some(1505), Some("created"))
    );
    let id = str_of(&payout, "id");
    let note = format!(
        "Commissions payable until {}",
        &str_of(&payout, "until")[..10]
    );

    let export = |format: &str| format!("/payouts/{id}/export?format={format}");
    let paypal = app.get(&export("paypal"), &app.admin_key).await;
    assert_eq!(header(&paypal, "tribute-export-parts"), "1");
    assert!(header(&paypal, "content-disposition").contains(&format!("{id}-paypal-1.csv")));
    assert_eq!(
        rows(&paypal),
        vec![
            vec![
                "alice.pays@example.org",
                "10.00",
                "EUR",
                alice.id.as_str(),
                note.as_str(),
                "PAYPAL"
            ],
            vec![
                "bob@example.com",
                "5.05",
                "EUR",
                bob.id.as_str(),
                note.as_str(),
                "PAYPAL"
            ],
        ]
    );
    let wise = rows(&app.get(&export("wise"), &app.admin_key).await);
    assert_eq!(wise[0][..3], ["name", "recipientEmail", "paymentReference"]);
    assert_eq!(
        wise[1][..2].iter().chain(&wise[1][3..]).collect::<Vec<_>>(),
        [
            "ALICE",
            "alice.pays@example.org",
            "PERSON",
            "target",
            "10.00",
            "EUR",
            "EUR"
        ]
    );
    assert!(wise[1][2].starts_with("pay"), "reference: {}", wise[1][2]);
    let generic = rows(&app.get(&export("csv"), &app.admin_key).await);
    assert_eq!(generic.len(), 3);
    assert_eq!(
        generic[2],
        vec![
            bob.id.as_str(),
            "BOB",
            "bob@example.com",
            "5.05",
            "EUR",
            "505",
            format!("{id} bob").as_str(),
            note.as_str()
        ]
    );

    for (query, status, field) in [
        ("format=csv&part=2", 409, "part"),
        ("format=excel", 422, "format"),
        ("format=PAYPAL", 422, "format"),
        ("part=1", 400, "format"),
        ("format=csv&part=0", 400, "part"),
    ] {
        app.get(&format!("/payouts/{id}/export?{query}"), &app.admin_key)
            .await
            .assert_error(status, Some(field), query);
    }
    app.get(&export("csv"), &alice.key)
        .await
        .assert_error(403, None, "a partner key exports");

    let paid = app
        .post(&format!("/payouts/{id}/paid"), &app.admin_key, &json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(paid["status"], "paid");
    let again = app
        .post(&format!("/payouts/{id}/paid"), &app.admin_key, &json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(again, paid, "paid once");
    let alice_id = PartnerId::parse(&alice.id).unwrap();
    let balance = app.store.partner_balance(&alice_id).await.unwrap();
    assert_eq!((balance.payable, balance.paid), (0, 1000));
    let listed = app.get("/payouts?status=paid", &app.admin_key).await;
    assert_eq!(listed.ok(200)["data"][0]["id"], id);

    app.post(
        "/payouts",
        &app.admin_key,
        &json!({"program_id": seed.program_id}),
    )
    .await
    .assert_error(409, Some("until"), "nothing left to pay");
    app.post(
        &format!("/payouts/{}/paid", "pay_doesnotexist"),
        &app.admin_key,
        &json!({}),
    )
    .await
    .assert_error(404, None, "an unknown batch");
}

async fn a_partner_key_sees_only_its_own_batches_requests_and_statement(app: TestApp) {
    let seed = app.seed().await;
    let (alice, bob) = (&seed.alice, &seed.bob);
    credit(&app, &seed, &alice.id, 1000, "launch bonus").await;
    credit(&app, &seed, &bob.id, 700, "launch bonus").await;

    let request = app
        .post("/payout-requests", &bob.key, &json!({}))
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (request["amount"].as_i64(), request["status"].as_str()),
        (Some(700), Some("open"))
    );
    for (case, key, body, status, field) in [
        (
            "for another partner",
            &alice.key,
            json!({"partner_id": bob.id}),
            404,
            None,
        ),
        (
            "by an admin naming no one",
            &app.admin_key,
            json!({}),
            422,
            Some("partner_id"),
        ),
        (
            "more than payable",
            &app.admin_key,
            json!({"partner_id": alice.id, "amount": 1001}),
            409,
            Some("amount"),
        ),
        (
            "zero",
            &alice.key,
            json!({"amount": 0}),
            422,
            Some("amount"),
        ),
    ] {
        app.post("/payout-requests", key, &body)
            .await
            .assert_error(status, field, case);
    }
    let count = |reply: Reply| reply.ok(200)["data"].as_array().unwrap().len();
    assert_eq!(count(app.get("/payout-requests", &alice.key).await), 0);
    assert_eq!(count(app.get("/payout-requests", &bob.key).await), 1);
    assert_eq!(count(app.get("/payout-requests", &app.admin_key).await), 1);
    app.get(
        &format!("/payout-requests?partner_id={}", bob.id),
        &alice.key,
    )
    .await
    .assert_error(404, None, "another partner's requests");

    let payout = app
        .post(
            "/payouts",
            &app.admin_key,
            &json!({"program_id": seed.program_id}),
        )
        .await
        .ok(201)
        .clone();
    let id = str_of(&payout, "id");
    assert_eq!(payout["total"], 1700);
    let seen = app.get("/payouts", &alice.key).await.ok(200)["data"].clone();
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert_eq!(items(&seen[0]), vec![(alice.id.clone(), 1000)]);
    assert_eq!(seen[0]["total"], 1000, "only its own item");
    let bobs = app.get(&format!("/payouts/{id}"), &bob.key).await;
    assert_eq!(items(bobs.ok(200)), vec![(bob.id.clone(), 700)]);
    let batched = app.get("/payout-requests?status=batched", &bob.key).await;
    assert_eq!(batched.ok(200)["data"][0]["payout_id"], id);

    app.post(&format!("/payouts/{id}/paid"), &alice.key, &json!({}))
        .await
        .assert_error(403, None, "a partner marks paid");
    app.post(
        "/payouts",
        &alice.key,
        &json!({"program_id": seed.program_id}),
    )
    .await
    .assert_error(403, None, "a partner makes a batch");
    app.get(&format!("/partners/{}/statement", bob.id), &alice.key)
        .await
        .assert_error(404, None, "another partner's statement");
    let own = app
        .get(&format!("/partners/{}/statement", alice.id), &alice.key)
        .await;
    assert_eq!(own.ok(200)["lines"][0]["memo"], "launch bonus");
}

async fn a_statement_is_served_as_json_and_as_csv_with_every_line_explained(app: TestApp) {
    let seed = app.seed().await;
    let alice = &seed.alice;
    ten_percent(&app, &seed).await;
    sale_by_coupon(&app, &seed, &alice.id, "ALICE10", 10_000).await;
    release_all(&app).await;
    credit(
        &app,
        &seed,
        &alice.id,
        25,
        "=HYPERLINK(\"http://evil.test\")",
    )
    .await;
    let payout = app
        .post(
            "/payouts",
            &app.admin_key,
            &json!({"program_id": seed.program_id}),
        )
        .await
        .ok(201)
        .clone();
    let id = str_of(&payout, "id");
    app.post(&format!("/payouts/{id}/paid"), &app.admin_key, &json!({}))
        .await
        .ok(200);

    let path = format!("/partners/{}/statement", alice.id);
    let json = app.get(&path, &app.admin_key).await.ok(200).clone();
    let lines = json["lines"].as_array().unwrap();
    let kinds: Vec<(&str, &str, i64)> = lines
        .iter()
        .map(|l| {
            (
                str_of(l, "kind"),
                str_of(l, "account"),
                l["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("accrual", "pending", 1000),
            ("post", "pending", -1000),
            ("post", "payable", 1000),
            ("adjustment", "payable", 25),
            ("payout", "payable", -1025),
            ("payout", "paid", 1025),
        ]
    );
    assert!(lines[0]["explanation"].is_object(), "{}", lines[0]);
    assert_eq!(lines[5]["payout_id"], id);
    assert_eq!(
        json["opening"],
        json!({"pending": 0, "payable": 0, "paid": 0})
    );
    assert_eq!(
        json["closing"],
        json!({"pending": 0, "payable": 0, "paid": 1025})
    );

    let csv = app.get(&format!("{path}?format=csv"), &alice.key).await;
    assert!(header(&csv, "content-disposition").contains("alice-statement-"));
    let table = rows(&csv);
    assert_eq!(table[0].len(), 12);
    assert_eq!(
        table[0][..6],
        [
            "at",
            "entry_id",
            "kind",
            "account",
            "amount",
            "amount_minor"
        ]
    );
    assert_eq!(table.len(), 7, "a header and six lines");
    assert_eq!(
        table[1][2..7],
        ["accrual", "pending", "10.00", "1000", "EUR"]
    );
    assert!(table[1][11].starts_with('{'), "the explanation as JSON");
    assert_eq!(
        table[4][10], "'=HYPERLINK(\"http://evil.test\")",
        "a memo that looks like a formula is escaped"
    );

    let tomorrow = (Utc::now() + Duration::days(1)).format("%Y-%m-%d");
    let empty = app
        .get(
            &format!("{path}?from={tomorrow}&to={tomorrow}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(
        empty.ok(200)["closing"],
        json["closing"],
        "no lines, same balances"
    );
    for (query, status, field) in [
        ("format=xml", 422, "format"),
        ("from=2026-02-01&to=2026-01-01", 422, "from"),
        ("since=2026-01-01", 400, "since"),
    ] {
        app.get(&format!("{path}?{query}"), &app.admin_key)
            .await
            .assert_error(status, Some(field), query);
    }
}

async fn programs_take_override_levels_and_a_minimum_and_partners_a_payout_email(app: TestApp) {
    let program = app
        .post(
            "/programs",
            &app.admin_key,
            &json!({"name": "Teams", "currency": "EUR", "override_levels_bps": [1000, 500],
                    "payout_min_amount": 2000}),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(program["override_levels_bps"], json!([1000, 500]));
    assert_eq!(program["payout_min_amount"], 2000);
    let path = format!("/programs/{}", str_of(&program, "id"));
    let eleven = vec![1; 11];
    for (body, field) in [
        (
            json!({"override_levels_bps": [6000, 5000]}),
            "override_levels_bps",
        ),
        (
            json!({"override_levels_bps": eleven}),
            "override_levels_bps",
        ),
        (json!({"payout_min_amount": -1}), "payout_min_amount"),
    ] {
        app.patch(&path, &app.admin_key, &body).await.assert_error(
            422,
            Some(field),
            &body.to_string(),
        );
    }
    let cleared = app
        .patch(&path, &app.admin_key, &json!({"override_levels_bps": []}))
        .await
        .ok(200)
        .clone();
    assert_eq!(cleared["override_levels_bps"], json!([]));
    assert_eq!(cleared["payout_min_amount"], 2000);
    let shown = app.get(&path, &app.admin_key).await.ok(200).clone();
    assert_eq!(shown, cleared);
    assert_eq!(
        app.get("/programs", &app.admin_key).await.ok(200)["data"][0]["payout_min_amount"],
        2000
    );

    let program_id = str_of(&program, "id");
    let partner = |payout_email: Value| json!({"program_id": program_id, "slug": "lead", "name": "Lead", "payout_email": payout_email});
    app.post("/partners", &app.admin_key, &partner(json!("not-an-email")))
        .await
        .assert_error(422, Some("payout_email"), "a bad payout e-mail");
    let lead = app
        .post(
            "/partners",
            &app.admin_key,
            &partner(json!("Lead@Example.ORG")),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(lead["payout_email"], "Lead@example.org");
    let lead_path = format!("/partners/{}", str_of(&lead, "id"));
    let cleared = app
        .patch(&lead_path, &app.admin_key, &json!({"payout_email": null}))
        .await
        .ok(200)
        .clone();
    assert_eq!(cleared["payout_email"], Value::Null);

    // The program's minimum applies to every batch.
    let store_program = ProgramId::parse(program_id).unwrap();
    let lead_id = PartnerId::parse(str_of(&lead, "id")).unwrap();
    app.store
        .adjust_partner(&store_program, &lead_id, 1500, "bonus", Utc::now())
        .await
        .unwrap();
    app.post(
        "/payouts",
        &app.admin_key,
        &json!({"program_id": program_id, "min_amount": 100}),
    )
    .await
    .assert_error(409, Some("min_amount"), "1500 is below the program's 2000");
    app.post(
        "/payouts",
        &app.admin_key,
        &json!({"program_id": program_id, "until": "2000-01-01"}),
    )
    .await
    .assert_error(409, Some("until"), "nothing was payable in 2000");
    app.post(
        "/payouts",
        &app.admin_key,
        &json!({"program_id": "prg_doesnotexist"}),
    )
    .await
    .assert_error(422, Some("program_id"), "an unknown program");
}
