//! The first-party snippet over plain HTTP: `/t.js` (small, cached and
//! revalidated by ETag) and `/collect` (CORS for allowed origins only,
//! malformed batches refused naming the field, retried conversions recorded
//! once). The same snippet in a real browser is in `browser.rs`.

// This binary uses no backend matrix.
#[allow(unused_macros)]
mod common;

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, ORIGIN,
};
use serde_json::json;

use common::snippet::{collect, header, program_id, write_key};
use common::{spawn_app, Reply};

// --- /t.js ---------------------------------------------------------------

#[tokio::test]
async fn the_snippet_is_small_javascript_cached_an_hour_and_revalidated_by_etag() {
    let app = spawn_app().await;
    let first = Reply::read(app.client.get(app.url("/t.js")).send().await.unwrap()).await;
    assert_eq!(first.status.as_u16(), 200);
    assert!(
        header(&first, CONTENT_TYPE.as_str())
            .is_some_and(|c| c.starts_with("application/javascript")),
        "content type: {:?}",
        first.headers.get(CONTENT_TYPE)
    );
    assert_eq!(
        header(&first, CACHE_CONTROL.as_str()),
        Some("public, max-age=3600")
    );
    let size = first.text.len();
    eprintln!("t.js as served: {size} bytes");
    assert!(size < 5_000, "t.js is {size} bytes, over the 5 kB budget");
    assert!(
        first.text.contains("/collect"),
        "not the snippet: {}",
        first.text
    );
    let etag = header(&first, ETAG.as_str()).expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.len() > 10,
        "a strong ETag: {etag}"
    );

    let again = Reply::read(
        app.client
            .get(app.url("/t.js"))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.status.as_u16(), 304, "same ETag: not modified");
    assert!(again.text.is_empty(), "a 304 has no body");
    assert_eq!(header(&again, ETAG.as_str()), Some(etag.as_str()));

    let stale = Reply::read(
        app.client
            .get(app.url("/t.js"))
            .header(IF_NONE_MATCH, "\"something-else\"")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stale.status.as_u16(), 200, "another ETag: the full script");
    assert_eq!(stale.text, first.text);
    app.finish().await;
}

// --- /collect over HTTP ----------------------------------------------------

#[tokio::test]
async fn collect_answers_cors_to_allowed_origins_only_and_refuses_others() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let program = program_id(&seed.program);
    let key = write_key(&app, &program).await;
    let batch = |id: &str| {
        json!({"key": key, "events": [{"type": "page_view", "event_id": id, "anonymous_id": "anon-1"}]})
            .to_string()
    };

    let allowed = collect(&app, Some("https://shop.acme.test"), &batch("e1")).await;
    assert_eq!(allowed.ok(200)["accepted"], 1);
    assert_eq!(
        header(&allowed, ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        Some("https://shop.acme.test")
    );

    for origin in [
        "https://evil.test",
        "https://acme.test.evil.test",
        "https://notacme.test",
        "null",
    ] {
        let refused = collect(&app, Some(origin), &batch("e2")).await;
        refused.assert_error(403, None, origin);
        assert_eq!(
            header(&refused, ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
            None,
            "{origin}: no CORS headers"
        );
    }
    assert_eq!(
        app.store.count_events(&program).await.unwrap(),
        1,
        "refused origins wrote nothing"
    );

    // The settings the snippet reads, under the same rule.
    let config = |origin: &'static str| {
        app.client
            .get(app.url(&format!("/collect/config?key={key}")))
            .header(ORIGIN, origin)
            .send()
    };
    let ok = Reply::read(config("https://acme.test").await.unwrap()).await;
    let body = ok.ok(200);
    assert_eq!(body["consent"], "opt_out");
    assert_eq!(body["cookie_days"], seed.program["cookie_days"]);
    assert_eq!(body["honor_dnt"], true);
    assert_eq!(
        header(&ok, ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        Some("https://acme.test")
    );
    let evil = Reply::read(config("https://evil.test").await.unwrap()).await;
    evil.assert_error(403, None, "config from another origin");
    assert_eq!(header(&evil, ACCESS_CONTROL_ALLOW_ORIGIN.as_str()), None);

    // A preflight (for pages that post application/json with ?key=).
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/collect?key={key}")),
            )
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let pre_ok = Reply::read(preflight("https://www.acme.test").await.unwrap()).await;
    assert_eq!(pre_ok.status.as_u16(), 204);
    assert_eq!(
        header(&pre_ok, ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        Some("https://www.acme.test")
    );
    assert!(header(&pre_ok, "access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    let pre_evil = Reply::read(preflight("https://evil.test").await.unwrap()).await;
    assert_eq!(
        header(&pre_evil, ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        None
    );

    // An admin key never belongs in a page: refused even though it could write.
    let admin = collect(
        &app,
        Some("https://acme.test"),
        &json!({"key": app.admin_key, "events": [{"type": "page_view"}]}).to_string(),
    )
    .await;
    admin.assert_error(403, None, "admin key on /collect");
    let unknown = collect(
        &app,
        Some("https://acme.test"),
        &json!({"key": "trb_ingest_nope", "events": [{"type": "page_view"}]}).to_string(),
    )
    .await;
    unknown.assert_error(401, None, "unknown key");
    app.finish().await;
}

#[tokio::test]
async fn malformed_collect_batches_are_refused_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let program = program_id(&seed.program);
    let key = write_key(&app, &program).await;
    let good = json!({"type": "page_view", "event_id": "ok-1", "anonymous_id": "a"});
    let cases: Vec<(&str, String, u16, Option<&str>)> = vec![
        ("not JSON", "{nope".into(), 400, None),
        (
            "no key",
            json!({"events": [good]}).to_string(),
            400,
            Some("key"),
        ),
        (
            "no events",
            json!({"key": key}).to_string(),
            400,
            Some("events"),
        ),
        (
            "empty batch",
            json!({"key": key, "events": []}).to_string(),
            400,
            Some("events"),
        ),
        (
            "unknown field",
            json!({"key": key, "events": [good, {"type": "lead", "emial": "x@y.test"}]})
                .to_string(),
            400,
            Some("events[1].emial"),
        ),
        (
            "mistyped age",
            json!({"key": key, "events": [good, {"type": "lead", "ago": "soon"}]}).to_string(),
            400,
            Some("events[1].ago"),
        ),
        (
            "event without type",
            json!({"key": key, "events": [{"event_id": "x"}]}).to_string(),
            400,
            Some("events[0].type"),
        ),
        (
            "unknown type",
            json!({"key": key, "events": [good, {"type": "purchase"}]}).to_string(),
            422,
            Some("events[1].type"),
        ),
        (
            "bad email",
            json!({"key": key, "events": [good, {"type": "lead", "email": "not-an-email"}]})
                .to_string(),
            422,
            Some("events[1].email"),
        ),
        (
            "bad click id",
            json!({"key": key, "events": [good, {"type": "page_view", "click_id": "xyz"}]})
                .to_string(),
            422,
            Some("events[1].click_id"),
        ),
        (
            "conversion without value",
            json!({"key": key, "events": [good, {"type": "conversion", "event_id": "c1"}]})
                .to_string(),
            422,
            Some("events[1].properties.value"),
        ),
        (
            "conversion in another currency",
            json!({"key": key, "events": [good,
                {"type": "conversion", "event_id": "c1", "properties": {"value": 100, "currency": "USD"}}]})
            .to_string(),
            422,
            Some("events[1].properties.currency"),
        ),
    ];
    for (case, body, status, field) in &cases {
        let reply = collect(&app, Some("https://acme.test"), body).await;
        reply.assert_error(*status, *field, case);
    }
    assert_eq!(
        app.store.count_events(&program).await.unwrap(),
        0,
        "a refused batch writes nothing, not even its good events"
    );
    assert_eq!(app.count("/conversions").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn a_retried_snippet_conversion_is_recorded_once_and_pending() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let program = program_id(&seed.program);
    let key = write_key(&app, &program).await;
    let body = json!({"key": key, "events": [{
        "type": "conversion", "event_id": "conv-1", "anonymous_id": "anon-9", "ago": 50,
        "properties": {"revenue": "49.90", "order_id": "A-17", "email": "buyer@example.com"}
    }]})
    .to_string();
    for attempt in ["first", "retry"] {
        let reply = collect(&app, Some("https://acme.test"), &body).await;
        assert_eq!(reply.ok(200)["conversions"], 1, "{attempt}");
    }
    let list = app.get("/conversions", &app.admin_key).await;
    let rows = list.ok(200)["data"].as_array().expect("a list").clone();
    assert_eq!(
        rows.len(),
        1,
        "one conversion for a retried batch: {rows:?}"
    );
    assert_eq!(rows[0]["value"], 4990, "revenue in major units, exactly");
    assert_eq!(
        rows[0]["external_id"], "snippet:A-17",
        "a browser cannot claim the owner's own order id"
    );
    assert_eq!(
        rows[0]["status"], "pending",
        "a browser-reported conversion waits for the owner"
    );
    app.finish().await;
}
