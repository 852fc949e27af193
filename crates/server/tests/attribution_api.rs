//! Black-box tests of attribution in the server: multi-touch splits that add
//! up to the cent, exclusions that explain themselves (suspended partners,
//! bots), what-if previews that change nothing, model comparison over a
//! period, and stored fits of the data-driven models.

#[macro_use]
mod common;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use common::{Seed, TestApp, Visitor, GOOGLEBOT_UA};

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` missing in {v}"))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A seeded program with an ingest key.
struct Shop {
    seed: Seed,
    ingest: String,
}

async fn shop(app: &TestApp) -> Shop {
    let seed = app.seed().await;
    let ingest = app.ingest_key(&seed.program_id).await;
    Shop { seed, ingest }
}

impl Shop {
    fn program(&self) -> &str {
        &self.seed.program_id
    }

    fn id_of(&self, slug: &str) -> &str {
        match slug {
            "alice" => &self.seed.alice.id,
            "bob" => &self.seed.bob.id,
            other => panic!("no partner {other}"),
        }
    }
}

/// Follow a new link of `partner_id` as a browser and tie the click to the
/// visitor `anon` with a page view; returns the click id.
async fn click_as(app: &TestApp, shop: &Shop, partner_id: &str, anon: &str, ua: Visitor) -> String {
    let link = app.create_link(partner_id, json!({})).await;
    let tid = app.click_link_as(str_of(&link, "code"), &ua).await;
    let page = json!({"type": "page_view", "anonymous_id": anon, "click_id": tid});
    app.post("/events", &shop.ingest, &page).await.ok(202);
    tid
}

/// A `?via=` visit of `slug` by visitor `anon`, `hours_ago` hours ago.
async fn via_visit(app: &TestApp, shop: &Shop, anon: &str, slug: &str, hours_ago: i64) {
    let at = rfc3339(Utc::now() - Duration::hours(hours_ago));
    let visit = json!({"type": "page_view", "anonymous_id": anon, "via": slug, "occurred_at": at});
    app.post("/events", &shop.ingest, &visit).await.ok(202);
}

/// Record a conversion of visitor `anon` worth `value` cents; returns it.
async fn convert(app: &TestApp, shop: &Shop, anon: &str, value: i64) -> Value {
    let sale = json!({"value": value, "currency": "EUR", "anonymous_id": anon});
    app.post("/conversions", &shop.ingest, &sale)
        .await
        .ok(201)
        .clone()
}

/// `(partner_id, amount)` per credited partner, in the order the API lists them.
fn parts(v: &Value) -> Vec<(String, i64)> {
    v["partners"]
        .as_array()
        .unwrap_or_else(|| panic!("no partners in {v}"))
        .iter()
        .map(|p| {
            (
                str_of(p, "partner_id").to_owned(),
                p["amount"].as_i64().expect("an amount"),
            )
        })
        .collect()
}

fn sorted(mut v: Vec<(String, i64)>) -> Vec<(String, i64)> {
    v.sort();
    v
}

/// `(partner_id, reason)` of each touch an attribution left out.
fn excluded(conversion: &Value) -> Vec<(String, String)> {
    conversion["attribution"]["excluded"]
        .as_array()
        .expect("an excluded list")
        .iter()
        .map(|e| {
            (
                str_of(e, "partner_id").to_owned(),
                str_of(e, "reason").to_owned(),
            )
        })
        .collect()
}

on_both_backends!(
    linear_credit_of_two_partners_splits_1001_cents_into_501_and_500,
    a_suspended_partners_touch_is_excluded_with_its_reason,
    a_bot_click_is_excluded_with_reason_bot,
    a_what_if_previews_another_model_and_changes_nothing,
    compare_gives_each_models_credit_per_partner_summing_to_the_total_exactly,
    a_markov_fit_is_stored_with_its_period_and_attributes_new_conversions,
    a_fit_made_on_the_fly_from_a_few_journeys_is_used_but_not_stored,
);

async fn linear_credit_of_two_partners_splits_1001_cents_into_501_and_500(app: TestApp) {
    let shop = shop(&app).await;
    app.set_default_model(shop.program(), "linear").await;
    let alice_tid = click_as(&app, &shop, &shop.seed.alice.id, "a1", Visitor::default()).await;
    let bob_tid = click_as(&app, &shop, &shop.seed.bob.id, "a1", Visitor::default()).await;

    let sale = convert(&app, &shop, "a1", 1001).await;
    let attribution = &sale["attribution"];
    assert_eq!(attribution["model"], "linear");
    let credits = attribution["credits"].as_array().expect("credits");
    let mut touched: Vec<&str> = credits.iter().map(|c| str_of(c, "touch_id")).collect();
    touched.sort_unstable();
    let mut clicks = vec![alice_tid.as_str(), bob_tid.as_str()];
    clicks.sort_unstable();
    assert_eq!(touched, clicks, "both clicks counted");
    // The documented tie-break: the odd cent goes to the partner whose touch came first.
    let first = str_of(&credits[0], "partner_id").to_owned();
    let second = str_of(&credits[1], "partner_id").to_owned();
    assert_eq!(
        sorted(parts(&sale)),
        sorted(vec![(first, 501), (second, 500)])
    );
    assert_eq!(parts(&sale).iter().map(|p| p.1).sum::<i64>(), 1001);
    let shares: Vec<&str> = sale["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| str_of(p, "share"))
        .collect();
    assert_eq!(shares[0], shares[1], "equal exact shares: {shares:?}");
}

async fn a_suspended_partners_touch_is_excluded_with_its_reason(app: TestApp) {
    let shop = shop(&app).await;
    let alice_tid = click_as(&app, &shop, &shop.seed.alice.id, "a1", Visitor::default()).await;
    let bob_tid = click_as(&app, &shop, &shop.seed.bob.id, "a1", Visitor::default()).await;
    app.patch(
        &format!("/partners/{}", shop.seed.bob.id),
        &app.admin_key,
        &json!({"status": "suspended"}),
    )
    .await
    .ok(200);

    // Bob's click was the last touch, but Bob is suspended: Alice's counts.
    let sale = convert(&app, &shop, "a1", 2000).await;
    assert_eq!(parts(&sale), vec![(shop.seed.alice.id.clone(), 2000)]);
    assert_eq!(
        excluded(&sale),
        vec![(shop.seed.bob.id.clone(), "suspended_partner".to_owned())]
    );
    assert_eq!(
        sale["attribution"]["excluded"][0]["touch_id"],
        bob_tid.as_str()
    );
    assert_eq!(
        sale["attribution"]["credits"][0]["touch_id"],
        alice_tid.as_str()
    );
    let summary = str_of(&sale, "summary");
    assert!(
        summary.contains("suspended partner"),
        "the summary says why: {summary}"
    );
}

async fn a_bot_click_is_excluded_with_reason_bot(app: TestApp) {
    let shop = shop(&app).await;
    let crawler = Visitor {
        user_agent: Some(GOOGLEBOT_UA),
        ..Visitor::default()
    };
    let bot_tid = click_as(&app, &shop, &shop.seed.alice.id, "a1", crawler).await;

    let sale = convert(&app, &shop, "a1", 1500).await;
    assert_eq!(parts(&sale), vec![], "a bot earns nothing");
    assert_eq!(
        excluded(&sale),
        vec![(shop.seed.alice.id.clone(), "bot".to_owned())]
    );
    assert_eq!(
        sale["attribution"]["excluded"][0]["touch_id"],
        bot_tid.as_str()
    );
    assert_eq!(sale["attribution"]["weight_total"], 0);
}

async fn a_what_if_previews_another_model_and_changes_nothing(app: TestApp) {
    let shop = shop(&app).await;
    via_visit(&app, &shop, "a1", "alice", 3).await;
    via_visit(&app, &shop, "a1", "bob", 1).await;
    let sale = convert(&app, &shop, "a1", 999).await;
    let id = str_of(&sale, "id").to_owned();
    assert_eq!(sale["attribution"]["model"], "last_touch");
    assert_eq!(parts(&sale), vec![(shop.seed.bob.id.clone(), 999)]);
    let path = format!("/conversions/{id}");
    let before = app.get(&path, &app.admin_key).await.ok(200).clone();

    let preview = app
        .api(
            Method::POST,
            &format!("/conversions/{id}/attribution?model=first_touch"),
            Some(&app.admin_key),
            None,
        )
        .await;
    let preview = preview.ok(200);
    assert_eq!(preview["conversion_id"], id.as_str());
    assert_eq!(preview["value"], 999);
    assert_eq!(preview["attribution"]["model"], "first_touch");
    assert_eq!(parts(preview), vec![(shop.seed.alice.id.clone(), 999)]);

    let linear = app
        .api(
            Method::POST,
            &format!("/conversions/{id}/attribution?model=linear"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(
        parts(linear.ok(200)),
        vec![
            (shop.seed.alice.id.clone(), 500),
            (shop.seed.bob.id.clone(), 499)
        ]
    );

    assert_eq!(
        app.get(&path, &app.admin_key).await.ok(200),
        &before,
        "the stored conversion is unchanged"
    );
    assert_eq!(
        app.count(&format!("/conversions?partner_id={}", shop.seed.alice.id))
            .await,
        0,
        "no credit moved to Alice"
    );

    for (case, query, status, field) in [
        ("an unknown model", "?model=magic", 422, Some("model")),
        ("no model", "", 422, Some("model")),
        (
            "an unknown option",
            "?model=linear&colour=red",
            400,
            Some("colour"),
        ),
        (
            "a bad window",
            "?model=linear&window_days=soon",
            422,
            Some("window_days"),
        ),
    ] {
        app.api(
            Method::POST,
            &format!("/conversions/{id}/attribution{query}"),
            Some(&app.admin_key),
            None,
        )
        .await
        .assert_error(status, field, case);
    }
    let what_if = format!("/conversions/{id}/attribution?model=linear");
    app.api(Method::POST, &what_if, Some(&shop.seed.alice.key), None)
        .await
        .assert_error(403, None, "a partner key");
    app.api(
        Method::POST,
        "/conversions/cnv_doesnotexist/attribution?model=linear",
        Some(&app.admin_key),
        None,
    )
    .await
    .assert_error(404, None, "an unknown conversion");
    assert_eq!(app.get(&path, &app.admin_key).await.ok(200), &before);
}

async fn compare_gives_each_models_credit_per_partner_summing_to_the_total_exactly(app: TestApp) {
    let shop = shop(&app).await;
    let (alice, bob) = (shop.id_of("alice").to_owned(), shop.id_of("bob").to_owned());
    // Three journeys with touches hours apart, so their order is certain.
    for (anon, path, value) in [
        ("p1", vec!["alice", "bob"], 1001),
        ("p2", vec!["bob", "alice", "bob"], 999),
        ("p3", vec!["alice"], 500),
    ] {
        let n = path.len() as i64;
        for (i, slug) in path.into_iter().enumerate() {
            via_visit(&app, &shop, anon, slug, n - i as i64).await;
        }
        convert(&app, &shop, anon, value).await;
    }
    let from = rfc3339(Utc::now() - Duration::days(1));
    let to = rfc3339(Utc::now() + Duration::minutes(1));
    let reply = app
        .get(
            &format!(
                "/attribution/compare?program_id={}&from={from}&to={to}\
                 &models=first_touch,last_touch,linear",
                shop.program()
            ),
            &app.admin_key,
        )
        .await;
    let comparison = reply.ok(200);
    assert_eq!(comparison["conversions"], 3);
    assert_eq!(comparison["total_value"], 2500);
    let models = comparison["models"].as_object().expect("models");
    assert_eq!(
        models.keys().collect::<Vec<_>>(),
        vec!["first_touch", "last_touch", "linear"]
    );
    let expected = [
        ("first_touch", 1501, 999),
        ("last_touch", 500, 2000),
        // p1 501/500 (the odd cent to the earlier touch), p2 333/666, p3 500.
        ("linear", 1334, 1166),
    ];
    for (model, alice_value, bob_value) in expected {
        let table = &models[model];
        assert_eq!(
            (
                table[&alice]["value"].as_i64(),
                table[&bob]["value"].as_i64()
            ),
            (Some(alice_value), Some(bob_value)),
            "{model}: {table}"
        );
        let values: i64 = table
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["value"].as_i64().unwrap())
            .sum();
        assert_eq!(values, 2500, "{model}: parts add up to the total");
        let conversions: f64 = table
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["conversions"].as_f64().unwrap())
            .sum();
        assert!(
            (conversions - 3.0).abs() < 1e-5,
            "{model}: {conversions} conversions"
        );
    }

    // A model named twice is compared once.
    let twice = app
        .get(
            &format!(
                "/attribution/compare?program_id={}&from={from}&to={to}&models=linear,linear",
                shop.program()
            ),
            &app.admin_key,
        )
        .await;
    let twice = twice.ok(200);
    assert_eq!(twice["models"].as_object().unwrap().len(), 1);
    assert_eq!(
        twice["models"]["linear"], models["linear"],
        "linear once, not twice"
    );

    // A period before everything compares nothing; bad input names its field.
    let empty = app
        .get(
            &format!(
                "/attribution/compare?program_id={}&from=2020-01-01&to=2020-02-01&models=linear",
                shop.program()
            ),
            &app.admin_key,
        )
        .await;
    let empty = empty.ok(200);
    assert_eq!(
        (empty["conversions"].as_i64(), empty["total_value"].as_i64()),
        (Some(0), Some(0))
    );
    for (case, query, status, field) in [
        (
            "an unknown model",
            format!("program_id={}&models=linear,magic", shop.program()),
            422,
            Some("models"),
        ),
        (
            "no program",
            "models=linear".to_owned(),
            422,
            Some("program_id"),
        ),
        (
            "an unknown program",
            "program_id=prg_nosuchprogram".to_owned(),
            422,
            Some("program_id"),
        ),
        (
            "from after to",
            format!(
                "program_id={}&from=2026-02-01&to=2026-01-01",
                shop.program()
            ),
            422,
            Some("from"),
        ),
        (
            "a bad date",
            format!("program_id={}&from=yesterday", shop.program()),
            422,
            Some("from"),
        ),
    ] {
        app.get(&format!("/attribution/compare?{query}"), &app.admin_key)
            .await
            .assert_error(status, field, case);
    }
    app.get(
        &format!("/attribution/compare?program_id={}", shop.program()),
        &shop.seed.alice.key,
    )
    .await
    .assert_error(403, None, "a partner key");
}

async fn a_markov_fit_is_stored_with_its_period_and_attributes_new_conversions(app: TestApp) {
    let shop = shop(&app).await;
    let (alice, bob) = (shop.id_of("alice").to_owned(), shop.id_of("bob").to_owned());
    for (anon, path, converts) in [
        ("p1", vec!["alice", "bob"], true),
        ("p2", vec!["bob"], false),
        ("p3", vec!["alice"], true),
        ("p4", vec!["bob"], false),
        ("p5", vec!["alice", "bob"], false),
    ] {
        let n = path.len() as i64;
        for (i, slug) in path.into_iter().enumerate() {
            via_visit(&app, &shop, anon, slug, 2 + n - i as i64).await;
        }
        if converts {
            convert(&app, &shop, anon, 1000).await;
        }
    }
    let from = Utc::now() - Duration::days(1);
    let to = Utc::now() + Duration::minutes(1);
    let request = json!({"program_id": shop.program(), "model": "markov",
                         "from": rfc3339(from), "to": rfc3339(to)});
    let made = app
        .post("/attribution/fits", &app.admin_key, &request)
        .await;
    let made = made.ok(201).clone();
    assert_eq!(made["model"], "markov");
    assert_eq!(
        made["journeys"], 5,
        "one journey per person touched in the period"
    );
    let period = |v: &Value, field: &str| {
        DateTime::parse_from_rfc3339(str_of(v, field))
            .unwrap()
            .with_timezone(&Utc)
    };
    assert_eq!(
        period(&made, "period_from").timestamp_millis(),
        from.timestamp_millis()
    );
    assert_eq!(
        period(&made, "period_to").timestamp_millis(),
        to.timestamp_millis()
    );
    let weight_of = |partner: &str| {
        made["fit"]["channels"]
            .as_array()
            .expect("fitted channels")
            .iter()
            .find(|c| c["channel"] == partner)
            .unwrap_or_else(|| panic!("no channel {partner} in {}", made["fit"]))["weight"]
            .as_f64()
            .unwrap()
    };
    let (wa, wb) = (weight_of(&alice), weight_of(&bob));
    assert!(wa > wb, "Alice's journeys convert more often: {wa} vs {wb}");

    let latest = app
        .get(
            &format!(
                "/attribution/fits?program_id={}&model=markov",
                shop.program()
            ),
            &app.admin_key,
        )
        .await;
    let latest = latest.ok(200);
    assert_eq!(latest["id"], made["id"]);
    assert_eq!(latest["period_from"], made["period_from"]);
    assert_eq!(latest["fit"], made["fit"]);

    // New conversions of a Markov program are attributed with the stored fit.
    app.set_default_model(shop.program(), "markov").await;
    let sale = convert(&app, &shop, "p5", 1000).await;
    assert_eq!(sale["attribution"]["model"], "markov");
    assert_eq!(sale["attribution"]["markov_order"], 1);
    let shares: Vec<(String, f64)> = sale["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                str_of(p, "partner_id").to_owned(),
                p["share_ratio"].as_f64().unwrap(),
            )
        })
        .collect();
    let alice_share = shares
        .iter()
        .find(|s| s.0 == alice)
        .expect("Alice credited")
        .1;
    assert!(
        (alice_share - wa / (wa + wb)).abs() < 1e-4,
        "Alice's share {alice_share} follows the fit's weights {wa}, {wb}"
    );
    assert_eq!(parts(&sale).iter().map(|p| p.1).sum::<i64>(), 1000);

    // Only data-driven models are fitted; a model never fitted is a 404.
    let linear = json!({"program_id": shop.program(), "model": "linear"});
    app.post("/attribution/fits", &app.admin_key, &linear)
        .await
        .assert_error(422, Some("model"), "fitting linear");
    app.get(
        &format!(
            "/attribution/fits?program_id={}&model=shapley",
            shop.program()
        ),
        &app.admin_key,
    )
    .await
    .assert_error(404, None, "no shapley fit yet");
    app.post("/attribution/fits", &shop.seed.alice.key, &request)
        .await
        .assert_error(403, None, "a partner key");
}

/// A markov program with no stored fit attributes with one made on the fly;
/// from a handful of journeys that fit is not stored, so it cannot pin
/// every later conversion to the first few.
async fn a_fit_made_on_the_fly_from_a_few_journeys_is_used_but_not_stored(app: TestApp) {
    let shop = shop(&app).await;
    app.set_default_model(shop.program(), "markov").await;
    via_visit(&app, &shop, "q1", "alice", 3).await;
    via_visit(&app, &shop, "q2", "bob", 3).await;
    let sale = convert(&app, &shop, "q1", 700).await;
    assert_eq!(sale["attribution"]["model"], "markov");
    assert_eq!(parts(&sale), vec![(shop.id_of("alice").to_owned(), 700)]);
    app.get(
        &format!(
            "/attribution/fits?program_id={}&model=markov",
            shop.program()
        ),
        &app.admin_key,
    )
    .await
    .assert_error(404, None, "a fit of 2 journeys is not stored");
}
