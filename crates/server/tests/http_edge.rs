//! Black-box tests of the HTTP edge: body limits (413, also after gzip and
//! deflate), repeated JSON keys, the 404 fallback, who may read `/metrics`,
//! and the cache of unknown keys. Rate limits are in `rate_limits.rs`.

// This binary uses no backend matrix.
#[allow(unused_macros)]
mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::Utc;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use reqwest::header::{ACCEPT, CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::json;
use tribute_core::apikey::{ApiKey, KeyKind, NewKey, Scope};
use tribute_core::ids::{ApiKeyId, ProgramId};
use tribute_server::ServerConfig;

use common::snippet::{program_id, write_key};
use common::{spawn_app, spawn_app_with, test_config, Reply, TestApp};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).expect("compressing");
    e.finish().expect("compressing")
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).expect("compressing");
    e.finish().expect("compressing")
}

/// POST `body` to `path` (not under `/api/v1`) with optional headers.
async fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let mut request = app.client.post(app.url(path)).body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    Reply::read(request.send().await.expect("posting")).await
}

/// A Segment track call with a blob property of `blob` bytes.
fn track(blob: usize) -> Vec<u8> {
    json!({"type": "track", "userId": "u1", "event": "Viewed",
           "properties": {"blob": " ".repeat(blob)}})
    .to_string()
    .into_bytes()
}

/// Basic auth header of a write key, as Segment's SDKs send it.
fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

#[track_caller]
fn assert_names_limit(reply: &Reply, limit: &str, case: &str) {
    reply.assert_error(413, None, case);
    let message = reply.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(limit),
        "{case}: limit not named: {message}"
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_naming_the_limit() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let api = app.post_raw("/programs", &app.admin_key, &big).await;
    assert_names_limit(&api, "2 MiB", "JSON API body over 2 MiB");
    let events = app.post_raw("/events", &app.admin_key, &big).await;
    assert_names_limit(&events, "2 MiB", "events body over 2 MiB");

    let key = write_key(&app, &program_id(&program)).await;
    let snippet =
        json!({"key": key, "events": [{"type": "page_view", "name": "x".repeat(70_000)}]});
    let collect = post(&app, "/collect", &[], snippet.to_string().into_bytes()).await;
    assert_names_limit(&collect, "64 KiB", "/collect body over 64 KiB");

    let form = format!(
        "program_id={}&amount={}",
        program["id"].as_str().unwrap(),
        "1".repeat(20_000)
    );
    let postback = post(
        &app,
        "/postback",
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await;
    assert_names_limit(&postback, "16 KiB", "postback form over 16 KiB");
    assert_eq!(app.count("/programs").await, 1, "nothing was written");
    app.finish().await;
}

#[tokio::test]
async fn repeated_json_keys_get_400_naming_the_key_and_change_nothing() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let pid = program["id"].as_str().unwrap().to_owned();

    let reply = app
        .post_raw(
            "/programs",
            &app.admin_key,
            r#"{"name": "A", "name": "B", "currency": "EUR", "allowed_domains": ["acme.test"]}"#,
        )
        .await;
    reply.assert_error(400, Some("name"), "a repeated top-level key");

    let event = format!(
        r#"{{"batch": [{{"type": "custom", "name": "a", "program_id": "{pid}",
             "properties": {{"total": 1, "total": 2}}}}]}}"#
    );
    let reply = app.post_raw("/events", &app.admin_key, &event).await;
    reply.assert_error(
        400,
        Some("batch[0].properties.total"),
        "a repeated nested key",
    );

    let key = write_key(&app, &program_id(&program)).await;
    let segment = br#"{"type": "track", "userId": "u1", "event": "A", "event": "B"}"#.to_vec();
    let reply = post(
        &app,
        "/v1/track",
        &[("authorization", &basic(&key))],
        segment,
    )
    .await;
    reply.assert_error(400, Some("event"), "a repeated Segment field");

    let snippet = format!(
        r#"{{"key": "{key}", "events": [{{"type": "page_view", "name": "a", "name": "b"}}]}}"#
    );
    let reply = post(&app, "/collect", &[], snippet.into_bytes()).await;
    reply.assert_error(400, Some("events[0].name"), "a repeated snippet field");

    assert_eq!(app.count("/programs").await, 1);
    assert_eq!(app.event_count(&pid).await, 0, "no event was written");
    app.finish().await;
}

#[tokio::test]
async fn gzip_and_deflate_bodies_are_accepted_on_segment_and_collect() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let pid = program["id"].as_str().unwrap().to_owned();
    let key = write_key(&app, &program_id(&program)).await;
    let auth = basic(&key);
    for (encoding, body) in [("gzip", gzip(&track(10))), ("deflate", deflate(&track(10)))] {
        let reply = post(
            &app,
            "/v1/track",
            &[
                ("authorization", &auth),
                (CONTENT_ENCODING.as_str(), encoding),
                (CONTENT_TYPE.as_str(), "application/json"),
            ],
            body,
        )
        .await;
        assert_eq!(reply.ok(200), &json!({"success": true}), "{encoding}");
    }
    let snippet = json!({"key": key, "events": [{"type": "page_view", "anonymous_id": "a1"}]});
    let reply = post(
        &app,
        "/collect",
        &[(CONTENT_ENCODING.as_str(), "gzip")],
        gzip(snippet.to_string().as_bytes()),
    )
    .await;
    assert_eq!(reply.ok(200)["accepted"], 1, "{}", reply.text);
    assert_eq!(app.event_count(&pid).await, 3);

    let reply = post(
        &app,
        "/v1/track",
        &[("authorization", &auth), (CONTENT_ENCODING.as_str(), "br")],
        track(10),
    )
    .await;
    reply.assert_error(400, Some("Content-Encoding"), "an encoding not supported");
    app.finish().await;
}

#[tokio::test]
async fn a_small_compressed_body_that_inflates_past_the_limit_gets_413() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let pid = program["id"].as_str().unwrap().to_owned();
    let key = write_key(&app, &program_id(&program)).await;
    let auth = basic(&key);
    // 64 MiB of spaces compress to about 64 KiB: far under the batch limit
    // as sent, far over every limit once inflated.
    let bomb = gzip(&track(64 * 1024 * 1024));
    assert!(
        bomb.len() < 500 * 1024,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    for path in ["/v1/track", "/v1/batch"] {
        let reply = post(
            &app,
            path,
            &[
                ("authorization", &auth),
                (CONTENT_ENCODING.as_str(), "gzip"),
            ],
            bomb.clone(),
        )
        .await;
        reply.assert_error(413, None, path);
    }
    let snippet = format!(
        r#"{{"key": "{key}", "events": [{{"type": "page_view", "name": "{}"}}]}}"#,
        " ".repeat(1024 * 1024)
    );
    let reply = post(
        &app,
        "/collect",
        &[(CONTENT_ENCODING.as_str(), "deflate")],
        deflate(snippet.as_bytes()),
    )
    .await;
    assert_names_limit(&reply, "64 KiB", "a deflate body inflating past 64 KiB");
    assert_eq!(app.event_count(&pid).await, 0);
    app.finish().await;
}

#[tokio::test]
async fn unknown_routes_answer_json_or_the_html_page_never_an_empty_body() {
    let app = spawn_app().await;
    for path in ["/nope", "/r/", "/v1/nope", "/collect/nope"] {
        let reply = Reply::read(app.client.get(app.url(path)).send().await.unwrap()).await;
        reply.assert_error(404, None, path);
        let html = Reply::read(
            app.client
                .get(app.url(path))
                .header(ACCEPT, "text/html,application/xhtml+xml")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(html.status.as_u16(), 404, "{path}");
        assert!(
            html.text.contains("<h1>Not found</h1>"),
            "{path}: {}",
            html.text
        );
    }
    let reply = Reply::read(app.client.delete(app.url("/healthz")).send().await.unwrap()).await;
    reply.assert_error(405, None, "a known path with another method");
    app.finish().await;
}

#[tokio::test]
async fn metrics_on_the_main_address_need_an_admin_key() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let get = |key: Option<String>| {
        let mut r = app.client.get(app.url("/metrics"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move { Reply::read(r.send().await.unwrap()).await }
    };
    get(None).await.assert_error(401, None, "no key");
    get(Some(seed.alice.key.clone()))
        .await
        .assert_error(403, None, "a partner key");
    let ok = get(Some(app.admin_key.clone())).await;
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.text);
    assert!(
        ok.text.contains("tribute_clicks_dropped_total 0"),
        "{}",
        ok.text
    );
    app.finish().await;
}

#[tokio::test]
async fn metrics_listen_serves_metrics_alone_and_not_on_the_main_address() {
    let app = spawn_app_with(ServerConfig {
        metrics_separate: true,
        ..test_config()
    })
    .await;
    let main = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    Reply::read(main)
        .await
        .assert_error(404, None, "/metrics on the main address");
    let separate = app.metrics_address.clone().expect("a metrics address");
    let reply = Reply::read(
        app.client
            .get(format!("{separate}/metrics"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert!(
        reply.text.contains("tribute_redirects_total"),
        "{}",
        reply.text
    );
    let other = Reply::read(
        app.client
            .get(format!("{separate}/api/v1/programs"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        other.status.as_u16(),
        404,
        "only /metrics is on the metrics address"
    );
    app.finish().await;
}

#[tokio::test]
async fn an_unknown_key_stays_unknown_for_a_few_seconds_then_is_looked_up_again() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let new = NewKey::of(Scope::Ingest, KeyKind::Secret);
    let body = json!({"type": "page_view", "anonymous_id": "a1"});
    let send = || app.post("/events", &new.token, &body);
    send()
        .await
        .assert_error(401, None, "a key not yet created");
    // The key now exists, but the miss is cached: no lookup per request.
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope: Scope::Ingest,
        kind: KeyKind::Secret,
        partner_id: None,
        program_id: Some(ProgramId::parse(program["id"].as_str().unwrap()).unwrap()),
        name: Some("late".into()),
        created_at: Utc::now(),
        revoked_at: None,
    };
    app.store
        .insert_api_key(&key, &new.hash)
        .await
        .expect("inserting a key");
    send()
        .await
        .assert_error(401, None, "a miss cached a moment ago");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = send().await;
        if reply.status.as_u16() == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the miss was never forgotten: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.finish().await;
}
