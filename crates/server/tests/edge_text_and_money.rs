//! Black-box tests of what every way in (the API, the postback, Segment and
//! the snippet's `/collect`) refuses before anything is stored: control and
//! bidirectional characters in stored text, and amounts over the documented
//! maximum; and that sums over what is stored never wrap. Each scenario runs
//! on SQLite and on PostgreSQL (which refuses NUL in text outright).

#[macro_use]
mod common;

use reqwest::Method;
use serde_json::{json, Value};
use tribute_core::ids::{ConversionId, ProgramId};
use tribute_core::money::{Money, MAX_MINOR};

use common::shop::shop;
use common::snippet::collect;
use common::{str_of, Reply, TestApp};

on_both_backends!(
    control_and_bidi_characters_are_refused_at_every_way_in_naming_the_field_and_nothing_is_stored,
    amounts_over_the_maximum_are_refused_at_every_way_in_naming_the_field,
    events_whose_properties_carry_nul_and_control_characters_are_stored,
    comparison_totals_past_i64_are_exact_and_never_negative,
);

/// How a request reaches Tribute.
enum Way {
    /// `/api/v1{path}` with the ingest key.
    Ingest(Method, &'static str, Value),
    /// `/api/v1{path}` with the admin key.
    Admin(Method, String, Value),
    /// `POST /conversions` with the ingest key and an `Idempotency-Key`.
    IdempotencyKey(&'static str),
    /// `GET /postback?{query}` (program and token added).
    Postback(String),
    /// A Segment endpoint with the write key as Basic username.
    Segment(&'static str, Value),
    /// `/collect` as the snippet posts it (the key added).
    Collect(Value),
}

/// The keys a test sends with: the secret server key (API) and the
/// publishable one (Segment, the snippet), as on a real site.
struct Keys {
    secret: String,
    publishable: String,
    program: String,
    token: String,
}

async fn keys(app: &TestApp, secret: &str, program: &str) -> Keys {
    let id = ProgramId::parse(program).expect("a program id");
    Keys {
        secret: secret.to_owned(),
        publishable: common::publishable_key(&app.store, &id).await,
        program: program.to_owned(),
        token: app.postback_token(program).await,
    }
}

async fn send(app: &TestApp, way: Way, keys: &Keys) -> Reply {
    let (ingest, program, token) = (&keys.secret, &keys.program, &keys.token);
    match way {
        Way::Ingest(method, path, body) => app.api(method, path, Some(ingest), Some(&body)).await,
        Way::Admin(method, path, body) => {
            app.api(method, &path, Some(&app.admin_key), Some(&body))
                .await
        }
        Way::IdempotencyKey(key) => {
            let body = json!({"value": 100, "currency": "EUR", "anonymous_id": "a1"});
            app.post_with_headers("/conversions", ingest, &body, &[("Idempotency-Key", key)])
                .await
        }
        Way::Postback(query) => {
            let url = app.url(&format!(
                "/postback?program_id={program}&token={token}&{query}"
            ));
            Reply::read(app.client.get(url).send().await.expect("a postback")).await
        }
        Way::Segment(path, body) => {
            let request = app
                .client
                .post(app.url(path))
                .basic_auth(&keys.publishable, Some(""))
                .json(&body);
            Reply::read(request.send().await.expect("a Segment call")).await
        }
        Way::Collect(mut body) => {
            body["key"] = json!(keys.publishable);
            collect(app, None, &body.to_string()).await
        }
    }
}

fn track(event: &str, extra: Value) -> Value {
    let mut body = json!({"event": event, "anonymousId": "anon-1", "messageId": "m-1"});
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    body
}

async fn control_and_bidi_characters_are_refused_at_every_way_in_naming_the_field_and_nothing_is_stored(
    app: TestApp,
) {
    let shop = shop(&app).await;
    let program = shop.seed.program_id.clone();
    let keys = keys(&app, &shop.ingest, &program).await;
    let alice = shop.seed.alice.id.clone();
    let ok_event = json!({"type": "page_view", "anonymous_id": "a1"});
    let conversion = |extra: Value| {
        let mut body = json!({"value": 1000, "currency": "EUR", "anonymous_id": "a1"});
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        Way::Ingest(Method::POST, "/conversions", body)
    };
    let order = |props: Value| {
        json!({"events": [{"type": "conversion", "event_id": "c-1", "anonymous_id": "a1",
                            "properties": props}]})
    };
    let cases: Vec<(&str, Way, u16, &str)> = vec![
        (
            "an event name with NUL",
            Way::Ingest(
                Method::POST,
                "/events",
                json!({"type": "custom", "name": "a\u{0}b", "anonymous_id": "a1"}),
            ),
            422,
            "name",
        ),
        (
            "an event id with a right-to-left override",
            Way::Ingest(
                Method::POST,
                "/events",
                json!({"type": "page_view", "event_id": "e\u{202e}1", "anonymous_id": "a1"}),
            ),
            422,
            "event_id",
        ),
        (
            "an anonymous id with NUL",
            Way::Ingest(
                Method::POST,
                "/events",
                json!({"type": "page_view", "anonymous_id": "a\u{0}1"}),
            ),
            422,
            "anonymous_id",
        ),
        (
            "an event name with an isolate, second in a batch",
            Way::Ingest(
                Method::POST,
                "/events",
                json!({"batch": [ok_event, {"type": "custom", "name": "x\u{2066}y"}]}),
            ),
            422,
            "batch[1].name",
        ),
        (
            "a conversion external id with NUL",
            conversion(json!({"external_id": "o-\u{0}1"})),
            422,
            "external_id",
        ),
        (
            "a SKU with a bidi embedding",
            conversion(json!({"products": [{"sku": "A\u{202b}1", "amount": 1000}]})),
            422,
            "products[0].sku",
        ),
        (
            "an Idempotency-Key with a tab",
            Way::IdempotencyKey("k\t1"),
            400,
            "Idempotency-Key",
        ),
        (
            "a postback order id with NUL",
            Way::Postback("amount=10&order_id=o%001".into()),
            422,
            "order_id",
        ),
        (
            "a Segment event name with NUL",
            Way::Segment("/v1/track", track("Order\u{0}Completed", json!({}))),
            400,
            "event",
        ),
        (
            "a Segment messageId with a right-to-left mark",
            Way::Segment(
                "/v1/track",
                track("Clicked", json!({"messageId": "m\u{200f}1"})),
            ),
            400,
            "messageId",
        ),
        (
            "a Segment userId with an escape",
            Way::Segment(
                "/v1/track",
                track("Clicked", json!({"userId": "u\u{1b}[2J"})),
            ),
            400,
            "userId",
        ),
        (
            "a Segment order id with NUL",
            Way::Segment(
                "/v1/track",
                track(
                    "Order Completed",
                    json!({"properties": {"order_id": "o\u{0}1", "revenue": "10.00"}}),
                ),
            ),
            400,
            "properties.order_id",
        ),
        (
            "a snippet event name with NUL",
            Way::Collect(
                json!({"events": [{"type": "custom", "name": "n\u{0}", "anonymous_id": "a1"}]}),
            ),
            422,
            "events[0].name",
        ),
        (
            "a snippet conversion event id with a bidi override",
            Way::Collect(
                json!({"events": [{"type": "conversion", "event_id": "c\u{202d}1", "anonymous_id": "a1",
                                             "properties": {"value": 100}}]}),
            ),
            422,
            "events[0].event_id",
        ),
        (
            "a snippet order id with NUL",
            Way::Collect(order(json!({"value": 100, "order_id": "o\u{0}1"}))),
            422,
            "events[0].properties.order_id",
        ),
        (
            "a program name with NUL",
            Way::Admin(
                Method::POST,
                "/programs".into(),
                json!({"name": "Acme\u{0}", "currency": "EUR", "allowed_domains": ["acme.test"]}),
            ),
            422,
            "name",
        ),
        (
            "a program renamed with a right-to-left override",
            Way::Admin(
                Method::PATCH,
                format!("/programs/{program}"),
                json!({"name": "Acme\u{202e}"}),
            ),
            422,
            "name",
        ),
        (
            "a partner name with NUL",
            Way::Admin(
                Method::POST,
                "/partners".into(),
                json!({"program_id": program, "slug": "carol", "name": "Car\u{0}ol"}),
            ),
            422,
            "name",
        ),
        (
            "a link campaign with an isolate",
            Way::Admin(
                Method::POST,
                "/links".into(),
                json!({"partner_id": alice, "destination": "https://acme.test/", "campaign": "spring\u{2067}"}),
            ),
            422,
            "campaign",
        ),
        (
            "a tracked lead event name with NUL",
            Way::Admin(
                Method::PATCH,
                format!("/programs/{program}/tracking"),
                json!({"lead_events": ["Signed\u{0}Up"]}),
            ),
            422,
            "lead_events",
        ),
    ];
    for (case, way, status, field) in cases {
        send(&app, way, &keys)
            .await
            .assert_error(status, Some(field), case);
    }
    assert_eq!(app.event_count(&program).await, 0, "no event was stored");
    assert_eq!(
        app.conversion_count(&program).await,
        0,
        "no conversion was stored"
    );
    assert_eq!(app.count("/programs").await, 1, "no program was created");
    assert_eq!(app.count("/partners").await, 2, "no partner was created");
    assert_eq!(app.count("/links").await, 2, "no link was created");
    let shown = app
        .get(&format!("/programs/{program}"), &app.admin_key)
        .await;
    assert_eq!(shown.ok(200)["name"], "Acme", "the program kept its name");
    let tracking = app
        .get(&format!("/programs/{program}/tracking"), &app.admin_key)
        .await;
    assert_eq!(
        tracking.ok(200)["lead_events"],
        json!(["Signed Up", "Lead Created"]),
        "the tracking settings are unchanged"
    );
}

async fn amounts_over_the_maximum_are_refused_at_every_way_in_naming_the_field(app: TestApp) {
    let shop = shop(&app).await;
    let program = shop.seed.program_id.clone();
    let keys = keys(&app, &shop.ingest, &program).await;
    let conversion = |value: i64, extra: Value| {
        let mut body = json!({"value": value, "currency": "EUR", "anonymous_id": "a1"});
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        Way::Ingest(Method::POST, "/conversions", body)
    };
    // Written as the decimals a postback or Segment sends (EUR: 2 decimals).
    let eur = tribute_core::money::Currency::parse("EUR").unwrap();
    let decimal = |minor: i64| {
        Money::new(minor, eur)
            .to_string()
            .trim_end_matches(" EUR")
            .to_owned()
    };
    let over = decimal(MAX_MINOR + 1);
    let huge = decimal(i64::MAX);
    let cases: Vec<(&str, Way, u16, &str)> = vec![
        (
            "an API value of i64::MAX",
            conversion(i64::MAX, json!({})),
            422,
            "value",
        ),
        (
            "an API value one over the maximum",
            conversion(MAX_MINOR + 1, json!({})),
            422,
            "value",
        ),
        (
            "an API order line over the maximum",
            conversion(
                1000,
                json!({"products": [{"sku": "A", "amount": MAX_MINOR + 1}]}),
            ),
            422,
            "products[0].amount",
        ),
        (
            "a postback amount of i64::MAX minor units",
            Way::Postback(format!("amount={huge}")),
            422,
            "amount",
        ),
        (
            "a postback amount one over the maximum",
            Way::Postback(format!("amount={over}")),
            422,
            "amount",
        ),
        (
            "a Segment revenue of i64::MAX minor units",
            Way::Segment(
                "/v1/track",
                track("Order Completed", json!({"properties": {"revenue": huge}})),
            ),
            400,
            "properties.revenue",
        ),
        (
            "a Segment total one over the maximum",
            Way::Segment(
                "/v1/track",
                track("Order Completed", json!({"properties": {"total": over}})),
            ),
            400,
            "properties.total",
        ),
        (
            "a snippet value of i64::MAX",
            Way::Collect(
                json!({"events": [{"type": "conversion", "event_id": "c-1", "anonymous_id": "a1",
                                             "properties": {"value": i64::MAX}}]}),
            ),
            422,
            "events[0].properties.value",
        ),
    ];
    for (case, way, status, field) in cases {
        send(&app, way, &keys)
            .await
            .assert_error(status, Some(field), case);
    }
    assert_eq!(
        app.conversion_count(&program).await,
        0,
        "nothing was recorded"
    );
    assert_eq!(app.event_count(&program).await, 0, "no event was stored");

    // The maximum itself is accepted, by the API and the postback.
    let at_max = app
        .post(
            "/conversions",
            &shop.ingest,
            &json!({"value": MAX_MINOR, "currency": "EUR", "anonymous_id": "a1"}),
        )
        .await;
    assert_eq!(at_max.ok(201)["value"], MAX_MINOR);
    let postback = send(
        &app,
        Way::Postback(format!("amount={}&order_id=o-max", decimal(MAX_MINOR))),
        &keys,
    )
    .await;
    assert_eq!(postback.ok(200)["value"], MAX_MINOR);
}

async fn events_whose_properties_carry_nul_and_control_characters_are_stored(app: TestApp) {
    let shop = shop(&app).await;
    let program = shop.seed.program_id.clone();
    // Properties are the client's free JSON: kept, NUL dropped (a spec of
    // the client may put anything there; PostgreSQL cannot store NUL).
    let body = json!({"type": "custom", "name": "Note", "anonymous_id": "a1",
                      "properties": {"note": "a\u{0}b\tc\u{202e}", "k\u{0}ey": ["\u{0}"]}});
    let reply = app.post("/events", &shop.ingest, &body).await;
    assert_eq!(reply.ok(202)["accepted"], 1);
    let batch = json!({"batch": [body, {"type": "custom", "name": "Other", "anonymous_id": "a2",
                                        "properties": {"x": "\u{0}\u{0}"}}]});
    assert_eq!(
        app.post("/events", &shop.ingest, &batch).await.ok(202)["accepted"],
        2
    );
    assert_eq!(app.event_count(&program).await, 3);
}

async fn comparison_totals_past_i64_are_exact_and_never_negative(app: TestApp) {
    let shop = shop(&app).await;
    let program = shop.seed.program_id.clone();
    let tid = app.click_link(&shop.alice_code).await;
    let first = app
        .post(
            "/conversions",
            &shop.ingest,
            &json!({"external_id": "o-1", "value": 1000, "currency": "EUR", "click_id": tid}),
        )
        .await;
    let first_id = ConversionId::parse(str_of(first.ok(201), "id")).unwrap();
    // Rows from before the maximum existed (or a sum of many conversions at
    // it): two halves of i64::MAX plus one, which together pass i64::MAX.
    let stored = app.store.conversion(&first_id).await.unwrap().unwrap();
    let big = i64::MAX / 2 + 1;
    for n in 2..=3 {
        let mut c = stored.clone();
        c.id = ConversionId::generate();
        c.external_id = Some(format!("o-{n}"));
        c.value = Money::new(big, c.value.currency);
        app.store.insert_conversion(&c).await.unwrap();
    }
    let exact = 2 * i128::from(big) + 1000;
    assert!(exact > i128::from(i64::MAX));
    let reply = app
        .get(
            &format!("/attribution/compare?program_id={program}&models=last_touch,linear"),
            &app.admin_key,
        )
        .await;
    let body = reply.ok(200);
    assert_eq!(body["conversions"], 3);
    let as_i128 = |v: &Value| i128::from(v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}")));
    assert_eq!(as_i128(&body["total_value"]), exact, "total_value");
    for model in ["last_touch", "linear"] {
        let alice = &body["models"][model][shop.seed.alice.id.as_str()];
        assert_eq!(as_i128(&alice["value"]), exact, "{model}: alice's value");
    }
}
