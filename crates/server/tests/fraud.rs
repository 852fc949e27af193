//! Fraud end to end, on both backends: a self-referred conversion is held
//! with its reason; the owner sees its score and reasons, the partner only
//! "under review"; approving releases the commission, rejecting voids it;
//! every decision is logged with who made it; the settings are read and
//! patched per program; suspicious clicks are kept with their reasons and
//! left out of unique clicks and attribution; bad input is a 4xx naming the
//! field and changes nothing.

#[macro_use]
mod common;

use serde_json::{json, Value};
use tribute_core::ids::ClickId;

use common::{str_of, TestApp, BROWSER_UA};

on_both_backends!(
    a_self_referred_conversion_is_held_with_its_reason_and_approving_releases_it,
    rejecting_a_held_conversion_voids_its_commission_and_the_partner_sees_it_rejected,
    reviews_and_settings_refuse_bad_input_and_partners_and_change_nothing,
    suspicious_clicks_are_kept_with_reasons_and_left_out_of_unique_clicks_and_credit,
);

/// A program with a 10 % sale rule and the partner `jane`
/// (jane@example.com), her link and her partner key.
struct Setup {
    program_id: String,
    jane: Value,
    jane_key: String,
    code: String,
}

async fn setup(app: &TestApp) -> Setup {
    let program = app.create_program("Acme").await;
    let program_id = str_of(&program, "id").to_owned();
    let jane = app
        .post(
            "/partners",
            &app.admin_key,
            &json!({"program_id": program_id, "slug": "jane", "name": "Jane",
                    "email": "Jane@Example.com"}),
        )
        .await
        .ok(201)
        .clone();
    app.post(
        "/reward-rules",
        &app.admin_key,
        &json!({"program_id": program_id, "name": "10%", "event": "sale",
                "kind": "percentage", "rate_bps": 1000}),
    )
    .await
    .ok(201);
    let link = app.create_link(str_of(&jane, "id"), json!({})).await;
    let jane_key = app.partner_key(&jane).await;
    Setup {
        program_id,
        code: str_of(&link, "code").to_owned(),
        jane,
        jane_key,
    }
}

/// A conversion on a fresh click of Jane's link, bought by `email`.
async fn buy(app: &TestApp, s: &Setup, order: &str, email: &str) -> Value {
    let tid = app.click_link(&s.code).await;
    app.post(
        "/conversions",
        &app.admin_key,
        &json!({"program_id": s.program_id, "external_id": order, "value": 10_000,
                "currency": "EUR", "click_id": tid, "email": email}),
    )
    .await
    .ok(201)
    .clone()
}

async fn commission_statuses(app: &TestApp, conversion: &str) -> Vec<String> {
    let list = app
        .get(
            &format!("/commissions?conversion_id={conversion}"),
            &app.admin_key,
        )
        .await
        .ok(200)
        .clone();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "status").to_owned())
        .collect()
}

async fn a_self_referred_conversion_is_held_with_its_reason_and_approving_releases_it(
    app: TestApp,
) {
    let s = setup(&app).await;
    let c = buy(&app, &s, "o-1", "jane@example.com").await;
    let id = str_of(&c, "id").to_owned();
    // The owner sees the score and the reasons.
    let admin = app.get(&format!("/conversions/{id}"), &app.admin_key).await;
    let risk = &admin.ok(200)["risk"];
    assert!(risk["score"].as_u64().unwrap() >= 60, "{risk}");
    assert_eq!(risk["review"], "held");
    assert_eq!(risk["reasons"][0]["rule"], "self_referral");
    assert_eq!(risk["reasons"][0]["contribution"], 90);
    assert_eq!(commission_statuses(&app, &id).await, vec!["held"]);
    // The partner sees "under review" and nothing more.
    let partner = app.get(&format!("/conversions/{id}"), &s.jane_key).await;
    assert_eq!(partner.ok(200)["review"], "under_review");
    assert!(partner.ok(200).get("risk").is_none());
    for secret in ["self_referral", "score", "reasons", "e-mail"] {
        assert!(
            !partner.text.contains(secret),
            "{secret} in {}",
            partner.text
        );
    }
    let listed = app.get("/conversions", &s.jane_key).await;
    assert_eq!(listed.ok(200)["data"][0]["review"], "under_review");
    assert!(!listed.text.contains("self_referral"));
    // It waits in the review queue.
    let queue = app
        .get(
            &format!("/review-queue?program_id={}", s.program_id),
            &app.admin_key,
        )
        .await;
    let items = queue.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["conversion_id"], id.as_str());
    assert_eq!(items[0]["partner_id"], s.jane["id"]);
    assert_eq!(items[0]["reasons"][0]["rule"], "self_referral");
    // Approving releases it into the normal hold period.
    let review = app
        .post(
            &format!("/conversions/{id}/review"),
            &app.admin_key,
            &json!({"decision": "approve", "note": "she bought for a client"}),
        )
        .await;
    let review = review.ok(200);
    assert_eq!(review["review"], "approved");
    let decisions = review["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "{review}");
    assert_eq!(
        (&decisions[0]["decision"], &decisions[0]["actor"]),
        (&json!("held"), &json!("system"))
    );
    assert_eq!(decisions[1]["decision"], "approved");
    assert_eq!(decisions[1]["note"], "she bought for a client");
    assert!(
        str_of(&decisions[1], "actor").starts_with("key:"),
        "{review}"
    );
    assert_eq!(commission_statuses(&app, &id).await, vec!["pending"]);
    let partner = app.get(&format!("/conversions/{id}"), &s.jane_key).await;
    assert!(partner.ok(200).get("review").is_none());
    let queue = app.get("/review-queue", &app.admin_key).await;
    assert!(queue.ok(200)["data"].as_array().unwrap().is_empty());
    // A clean buyer is not held.
    let clean = buy(&app, &s, "o-2", "someone@example.org").await;
    let clean_id = str_of(&clean, "id");
    assert_eq!(commission_statuses(&app, clean_id).await, vec!["pending"]);
    let admin = app
        .get(&format!("/conversions/{clean_id}"), &app.admin_key)
        .await;
    assert_eq!(admin.ok(200)["risk"]["score"], 0);
    app.finish().await;
}

async fn rejecting_a_held_conversion_voids_its_commission_and_the_partner_sees_it_rejected(
    app: TestApp,
) {
    let s = setup(&app).await;
    let c = buy(&app, &s, "o-1", "jane@example.com").await;
    let id = str_of(&c, "id").to_owned();
    app.post(
        &format!("/conversions/{id}/review"),
        &app.admin_key,
        &json!({"decision": "reject", "note": "self-referral"}),
    )
    .await
    .ok(200);
    assert_eq!(commission_statuses(&app, &id).await, vec!["voided"]);
    let partner = app.get(&format!("/conversions/{id}"), &s.jane_key).await;
    assert_eq!(partner.ok(200)["status"], "rejected");
    assert!(partner.ok(200).get("review").is_none());
    app.finish().await;
}

async fn reviews_and_settings_refuse_bad_input_and_partners_and_change_nothing(app: TestApp) {
    let s = setup(&app).await;
    let c = buy(&app, &s, "o-1", "jane@example.com").await;
    let id = str_of(&c, "id").to_owned();
    let path = format!("/conversions/{id}/review");
    // A value the schema allows but the server refuses is 422; a body of
    // the wrong shape is 400; either names the field.
    for (body, status, field) in [
        (json!({"decision": "maybe"}), 422, "decision"),
        (
            json!({"decision": "approve", "note": "a\u{0}b"}),
            422,
            "note",
        ),
        (json!({"decision": "approve", "extra": 1}), 400, "extra"),
        (json!({"note": "no decision"}), 400, "decision"),
    ] {
        app.post(&path, &app.admin_key, &body).await.assert_error(
            status,
            Some(field),
            &body.to_string(),
        );
    }
    // A partner may neither decide nor read the queue or the settings.
    app.post(&path, &s.jane_key, &json!({"decision": "approve"}))
        .await
        .assert_error(403, None, "partner decides");
    app.get("/review-queue", &s.jane_key)
        .await
        .assert_error(403, None, "partner reads the queue");
    let fraud = format!("/programs/{}/fraud", s.program_id);
    app.get(&fraud, &s.jane_key)
        .await
        .assert_error(403, None, "partner reads the settings");
    assert_eq!(commission_statuses(&app, &id).await, vec!["held"]);
    // Decided once; a second decision is a conflict.
    app.post(&path, &app.admin_key, &json!({"decision": "reject"}))
        .await
        .ok(200);
    app.post(&path, &app.admin_key, &json!({"decision": "approve"}))
        .await
        .assert_error(409, Some("decision"), "decided twice");
    assert_eq!(commission_statuses(&app, &id).await, vec!["voided"]);
    let unknown = format!("/conversions/{}/review", "cnv_0000000000000000000000");
    app.post(&unknown, &app.admin_key, &json!({"decision": "approve"}))
        .await
        .assert_error(404, None, "no such conversion");
    // Settings: read, patch, refuse nonsense naming the field.
    let before = app.get(&fraud, &app.admin_key).await.ok(200).clone();
    assert_eq!(before["review_threshold"], 60);
    assert_eq!(before["rules"].as_array().unwrap().len(), 19);
    for (body, status, field) in [
        (
            json!({"review_threshold": 101}),
            422,
            Some("review_threshold"),
        ),
        (
            json!({"weights": {"no_such_rule": 5}}),
            422,
            Some("weights.no_such_rule"),
        ),
        (json!({"click_threshold": 0}), 422, Some("click_threshold")),
        (
            json!({"weights": {"self_referral": 300}}),
            422,
            Some("weights"),
        ),
        (
            json!({"velocity": {"per_ip_per_minute": 0}}),
            422,
            Some("velocity"),
        ),
        (json!({"colour": "red"}), 422, Some("colour")),
        (json!(["not", "an", "object"]), 400, None),
    ] {
        app.patch(&fraud, &app.admin_key, &body).await.assert_error(
            status,
            field,
            &body.to_string(),
        );
    }
    assert_eq!(app.get(&fraud, &app.admin_key).await.ok(200), &before);
    let after = app
        .patch(
            &fraud,
            &app.admin_key,
            &json!({"review_threshold": 95, "weights": {"disposable_email": 0},
                    "banned_referrers": ["spam.example"]}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(after["review_threshold"], 95);
    assert_eq!(after["banned_referrers"], json!(["spam.example"]));
    let weight = |v: &Value, rule: &str| {
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == rule)
            .map(|r| r["weight"].clone())
            .unwrap()
    };
    assert_eq!(weight(&after, "disposable_email"), 0);
    assert_eq!(weight(&after, "self_referral"), 90);
    assert_eq!(app.get(&fraud, &app.admin_key).await.ok(200), &after);
    // At 95 a self-referral (90) alone is no longer held.
    let c = buy(&app, &s, "o-2", "jane@example.com").await;
    assert_eq!(
        commission_statuses(&app, str_of(&c, "id")).await,
        vec!["pending"]
    );
    app.finish().await;
}

type Headers<'a> = Vec<(&'a str, &'a str)>;

/// Follow Jane's link with `headers`; the click as stored.
async fn click_with(
    app: &TestApp,
    s: &Setup,
    query: &str,
    headers: &[(&str, &str)],
) -> tribute_core::click::Click {
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(&format!("/r/{}{query}", s.code)));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let reply = request.send().await.unwrap();
    assert_eq!(reply.status(), 302);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    let tid = location
        .query_pairs()
        .find(|(k, _)| k == "tid")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    app.wait_for_click(&tid).await
}

async fn suspicious_clicks_are_kept_with_reasons_and_left_out_of_unique_clicks_and_credit(
    app: TestApp,
) {
    let s = setup(&app).await;
    let fraud = format!("/programs/{}/fraud", s.program_id);
    app.patch(
        &fraud,
        &app.admin_key,
        &json!({"banned_referrers": ["spam.example"], "forbid_brand_bidding": true}),
    )
    .await
    .ok(200);
    let browser = [("user-agent", BROWSER_UA), ("accept-language", "en")];
    let clean = click_with(&app, &s, "", &browser).await;
    assert!(!clean.is_bot && clean.reasons.is_empty(), "{clean:?}");
    let mut banned = browser.to_vec();
    banned.push(("referer", "https://ads.spam.example/landing"));
    let cases: [(&str, Headers, &str); 3] = [
        ("", banned, "banned_referrer"),
        ("?gclid=abc123", browser.to_vec(), "paid_search_click"),
        ("", vec![("user-agent", BROWSER_UA)], "implausible_browser"),
    ];
    let mut flagged = Vec::new();
    for (query, headers, rule) in cases {
        let click = click_with(&app, &s, query, &headers).await;
        assert!(click.is_bot, "{rule}: {click:?}");
        assert!(
            click.reasons.iter().any(|r| r.rule == rule),
            "{rule}: {click:?}"
        );
        flagged.push(click);
    }
    // Kept as evidence, and out of unique clicks: only the clean one counts.
    let metrics = app.metrics(str_of(&s.jane, "id"), &app.admin_key).await;
    let m = metrics.ok(200);
    assert_eq!(m["unique_clicks"], 1, "{m}");
    assert_eq!(m["bot_clicks"], 3, "{m}");
    // A conversion naming a flagged click earns no credit from it.
    let tid: &ClickId = &flagged[0].id;
    let c = app
        .post(
            "/conversions",
            &app.admin_key,
            &json!({"program_id": s.program_id, "external_id": "o-9", "value": 5_000,
                    "currency": "EUR", "click_id": tid.as_str()}),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(c["partners"], json!([]), "{c}");
    app.finish().await;
}
