//! Black-box tests of the rate limits: ingestion per client address and
//! per key (429, `Retry-After`, the JSON error), other routes untouched,
//! and the redirect unthrottled unless the owner sets a limit.

// This binary uses no backend matrix.
#[allow(unused_macros)]
mod common;

use reqwest::header::RETRY_AFTER;
use serde_json::json;
use tribute_server::RateLimits;
use tribute_server::ServerConfig;

use common::{spawn_app_with, test_config, Reply, TestApp};

fn limited(limits: RateLimits) -> ServerConfig {
    ServerConfig {
        limits,
        // Lets the tests speak from many addresses (`X-Forwarded-For`).
        trust_proxy: true,
        ..test_config()
    }
}

/// POST one event as `key` from the address `ip`.
async fn event_from(app: &TestApp, ip: &str, key: &str) -> Reply {
    let response = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(key)
        .header("x-forwarded-for", ip)
        .json(&json!({"type": "page_view", "anonymous_id": "a1"}))
        .send()
        .await
        .expect("posting an event");
    Reply::read(response).await
}

#[track_caller]
fn assert_429(reply: &Reply, case: &str) {
    reply.assert_error(429, None, case);
    assert_eq!(reply.body["error"]["code"], "rate_limited", "{case}");
    let retry: u64 = reply
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{case}: no Retry-After in {:?}", reply.headers));
    assert!(retry >= 1, "{case}: Retry-After {retry}");
}

/// Statuses of `n` events sent one after another.
async fn burst(app: &TestApp, n: usize, ip: &str, key: &str) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(n);
    for _ in 0..n {
        replies.push(event_from(app, ip, key).await);
    }
    replies
}

#[tokio::test]
async fn ingestion_past_the_per_address_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(limited(RateLimits {
        ingest_per_ip: 1,
        ingest_per_key: 0,
        redirect_per_ip: 0,
    }))
    .await;
    let program = app.create_program("Acme").await;
    let key = app.ingest_key(program["id"].as_str().unwrap()).await;
    // 1 per second with a burst of 2: of 6 quick requests, some pass, the rest wait.
    let replies = burst(&app, 6, "198.51.100.7", &key).await;
    assert_eq!(replies[0].status.as_u16(), 202, "{}", replies[0].text);
    let refused: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 429)
        .collect();
    assert!(refused.len() >= 3, "only {} of 6 refused", refused.len());
    assert_429(refused[0], "an address over its limit");
    // Another address is not held back by the first one's spending.
    event_from(&app, "198.51.100.8", &key).await.ok(202);
    // Reading the API is not ingestion: no limit.
    for _ in 0..5 {
        app.get("/programs", &app.admin_key).await.ok(200);
    }
    app.finish().await;
}

#[tokio::test]
async fn a_key_past_its_limit_is_refused_from_any_address() {
    let app = spawn_app_with(limited(RateLimits {
        ingest_per_ip: 0,
        ingest_per_key: 1,
        redirect_per_ip: 0,
    }))
    .await;
    let program = app.create_program("Acme").await;
    let pid = program["id"].as_str().unwrap().to_owned();
    let (busy, other) = (app.ingest_key(&pid).await, app.ingest_key(&pid).await);
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(event_from(&app, &format!("203.0.113.{i}"), &busy).await);
    }
    let refused = statuses.iter().filter(|r| r.status.as_u16() == 429).count();
    assert!(refused >= 3, "only {refused} of 6 refused across addresses");
    assert_429(statuses.last().unwrap(), "a key over its limit");
    event_from(&app, "203.0.113.1", &other).await.ok(202);
    app.finish().await;
}

#[tokio::test]
async fn the_redirect_is_unthrottled_by_default_and_an_owner_can_limit_it_per_address() {
    let app = spawn_app_with(limited(RateLimits {
        ingest_per_ip: 1,
        ..RateLimits::default()
    }))
    .await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let path = format!("/r/{}", link["code"].as_str().unwrap());
    for _ in 0..20 {
        app.visit(&path).await.ok(302);
    }
    app.finish().await;

    let app = spawn_app_with(limited(RateLimits {
        redirect_per_ip: 1,
        ..RateLimits::default()
    }))
    .await;
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let path = format!("/r/{}", link["code"].as_str().unwrap());
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(app.visit(&path).await);
    }
    let passed = replies.iter().filter(|r| r.status.as_u16() == 302).count() as i64;
    let refused: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 429)
        .collect();
    assert!(refused.len() >= 3, "only {} of 6 refused", refused.len());
    assert_429(refused[0], "a visitor over the redirect limit");
    // A refused visit records no click.
    let mut app = app;
    app.shutdown().await;
    assert_eq!(app.store.count_clicks().await.unwrap(), passed);
    app.finish().await;
}
