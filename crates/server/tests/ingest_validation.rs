//! Black-box tests of ingestion validation: malformed events and conversions
//! are refused with a 4xx naming the field, and nothing is stored.

#[macro_use]
mod common;

use serde_json::{json, Value};
use tribute_core::ids::ProgramId;

use common::shop::shop;
use common::TestApp;

on_both_backends!(
    malformed_events_are_4xx_naming_the_field_and_store_nothing,
    malformed_conversions_are_4xx_naming_the_field_and_store_nothing,
);

// --- validation ------------------------------------------------------------------

async fn malformed_events_are_4xx_naming_the_field_and_store_nothing(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let ok = json!({"type": "page_view", "anonymous_id": "a1"});
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        (
            "a bad type in a batch",
            json!({"batch": [ok, {"type": "purchase", "anonymous_id": "a1"}]}),
            422,
            Some("batch[1].type"),
        ),
        (
            "a bad email",
            json!({"type": "signup", "email": "not-an-email"}),
            422,
            Some("email"),
        ),
        (
            "a bad email in a batch",
            json!({"batch": [ok, ok, {"type": "signup", "email": "nope"}]}),
            422,
            Some("batch[2].email"),
        ),
        (
            "an unknown field",
            json!({"type": "page_view", "anonymous_id": "a1", "colour": "red"}),
            400,
            Some("colour"),
        ),
        (
            "an unknown field in a batch",
            json!({"batch": [ok, {"type": "page_view", "colour": "red"}]}),
            400,
            Some("batch[1].colour"),
        ),
        (
            "a type that is not a string",
            json!({"batch": [ok, {"type": 5, "anonymous_id": "a1"}]}),
            400,
            Some("batch[1].type"),
        ),
        (
            "a missing type",
            json!({"anonymous_id": "a1"}),
            400,
            Some("type"),
        ),
        (
            "a bad click id",
            json!({"type": "page_view", "anonymous_id": "a1", "click_id": "abc"}),
            422,
            Some("click_id"),
        ),
        (
            "a time in the future",
            json!({"type": "page_view", "anonymous_id": "a1", "occurred_at": "2999-01-01T00:00:00Z"}),
            422,
            Some("occurred_at"),
        ),
        (
            "a batch that is not an array",
            json!({"batch": {"type": "page_view"}}),
            400,
            Some("batch"),
        ),
        ("an empty batch", json!({"batch": []}), 400, Some("batch")),
    ];
    for (case, body, status, field) in cases {
        app.post("/events", &shop.ingest, &body)
            .await
            .assert_error(status, field, case);
    }
    app.post_raw("/events", &shop.ingest, "{not json")
        .await
        .assert_error(400, None, "malformed JSON");
    assert_eq!(
        app.event_count(program).await,
        0,
        "no event of a refused request was stored"
    );
}

async fn malformed_conversions_are_4xx_naming_the_field_and_store_nothing(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let with = |extra: Value| {
        let mut body = json!({"external_id": "o-1", "value": 1000, "currency": "EUR",
                              "email": "jo@example.com"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "another currency",
            with(json!({"currency": "USD"})),
            422,
            "currency",
        ),
        (
            "no such currency",
            with(json!({"currency": "XXY"})),
            422,
            "currency",
        ),
        ("a negative value", with(json!({"value": -1})), 422, "value"),
        (
            "a fractional value",
            with(json!({"value": 10.5})),
            400,
            "value",
        ),
        ("a bad email", with(json!({"email": "jo@"})), 422, "email"),
        (
            "a bad click id",
            with(json!({"click_id": "12345"})),
            422,
            "click_id",
        ),
        (
            "an unknown field",
            with(json!({"amount": 5})),
            400,
            "amount",
        ),
        ("a missing value", json!({"currency": "EUR"}), 400, "value"),
        (
            "an unknown status",
            with(json!({"status": "paid"})),
            422,
            "status",
        ),
        (
            "a bad product",
            with(
                json!({"products": [{"sku": "A", "amount": 5}, {"sku": "B", "quantity": 0, "amount": 5}]}),
            ),
            422,
            "products[1].quantity",
        ),
        (
            "a bad coupon",
            with(json!({"coupon": "no spaces"})),
            422,
            "coupon",
        ),
        (
            "a bad time",
            with(json!({"occurred_at": "yesterday"})),
            422,
            "occurred_at",
        ),
    ];
    for (case, body, status, field) in cases {
        app.post("/conversions", &shop.ingest, &body)
            .await
            .assert_error(status, Some(field), case);
    }
    assert_eq!(
        app.conversion_count(program).await,
        0,
        "nothing was written"
    );
    let pid = ProgramId::parse(program).unwrap();
    let email_key = format!(
        "email_hash:{}",
        tribute_core::partner::email_hash("jo@example.com")
    );
    assert_eq!(
        app.store.person_of(&pid, &email_key).await.unwrap(),
        None,
        "a refused conversion leaves no identity behind"
    );
    // The same external id is still free.
    app.post("/conversions", &shop.ingest, &with(json!({})))
        .await
        .ok(201);
}
