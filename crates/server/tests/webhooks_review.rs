//! Webhooks in and out under hostile or odd input, from a review of issue
//! 10: endpoint URLs naming a non-public address in any spelling (IPv4 in
//! decimal, octal or hex; IPv6 forms that embed or route to one), a
//! receiver that redirects or answers with a NUL byte, provider ids and
//! refund notes PostgreSQL cannot index or hold as given, an oversized
//! signature header on a rejected delivery, and a retry by hand of a
//! delivery whose body was pruned. Scenarios that touch the database run on
//! SQLite and on PostgreSQL.

#[allow(unused_macros)]
mod common;
#[path = "hooks/mod.rs"]
mod hooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tribute_core::webhook::RetryPolicy;
use tribute_server::{ServerConfig, WebhookSettings};
use tribute_store::testing::TestDb;
use tribute_store::Backend;

use common::*;
use hooks::{
    assert_answer, conversion, deliver, deliveries, integration, refunds, shopify_headers,
    stripe_signature, Hook,
};

/// Run `scenario` on a fresh database of each backend, with `config`
/// (PostgreSQL is skipped with a message where there is none, outside CI).
async fn on_each_backend<F, Fut>(config: fn() -> ServerConfig, scenario: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::of(backend).await else {
            continue;
        };
        let app = start_with(db.store.clone(), backend, config()).await;
        scenario(app).await;
        db.destroy().await;
    }
}

/// Loopback receivers allowed, quick polling, a short schedule.
fn open_config() -> ServerConfig {
    ServerConfig {
        webhooks: WebhookSettings {
            allow_private: true,
            retry: RetryPolicy { scale: 0.0002 },
            poll: Duration::from_millis(20),
            ..WebhookSettings::default()
        },
        ..test_config()
    }
}

/// What a test receiver got: the path of each request.
#[derive(Clone, Default)]
struct Got(Arc<Mutex<Vec<String>>>);

impl Got {
    fn paths(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Serve on loopback: `/hook` answers `status` with `body` and `headers`,
/// any other path 200; every request's path is noted.
async fn receiver(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
) -> (SocketAddr, Got) {
    let got = Got::default();
    let noted = got.clone();
    let answer = move |uri: axum::http::Uri| {
        let (noted, headers) = (noted.clone(), headers.clone());
        async move {
            noted.0.lock().unwrap().push(uri.path().to_owned());
            if uri.path() != "/hook" {
                return StatusCode::OK.into_response();
            }
            let mut map = HeaderMap::new();
            for (k, v) in headers {
                map.insert(k, v.parse().unwrap());
            }
            (StatusCode::from_u16(status).unwrap(), map, body).into_response()
        }
    };
    let app = Router::new()
        .route("/hook", post(answer.clone()))
        .route("/elsewhere", post(answer).get(|| async { "no" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, got)
}

/// An endpoint of `program` for `url` receiving `partner.created`: its id.
async fn endpoint(app: &TestApp, program: &str, url: &str) -> String {
    let made = app
        .post(
            "/webhook-endpoints",
            &app.admin_key,
            &json!({"program_id": program, "url": url, "events": ["partner.created"]}),
        )
        .await;
    str_of(made.ok(201), "id").to_owned()
}

/// The endpoint's first delivery once `done` holds for it (10 s at most).
async fn first_delivery_when(app: &TestApp, ep: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let path = format!("/webhook-endpoints/{ep}/deliveries");
        let listed = app.get(&path, &app.admin_key).await;
        let first = listed.ok(200)["data"][0].clone();
        if done(&first) {
            return first;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the delivery never got there: {first}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// --- where webhooks may go -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_urls_naming_a_non_public_address_in_any_spelling_are_refused() {
    let app = spawn_app().await;
    let program = str_of(&app.create_program("Acme").await, "id").to_owned();
    for url in [
        // IPv4 loopback and metadata as WHATWG URLs may spell them.
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0/",
        "http://0xa9.0xfe.0xa9.0xfe/latest",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        // IPv6 forms that embed an IPv4 address or are not global unicast.
        "http://[::127.0.0.1]/",
        "http://[::a9fe:a9fe]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[64:ff9b:1::a00:1]/",
        "http://[2002:7f00:1::1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        "http://[fec0::1]/",
        "http://[100::1]/",
        "http://[::]/",
        "http://[3fff::1]/",
        "http://[ff02::1]/",
        "http://[fd00:ec2::254]/",
    ] {
        app.post(
            "/webhook-endpoints",
            &app.admin_key,
            &json!({"program_id": program, "url": url}),
        )
        .await
        .assert_error(422, Some("url"), url);
    }
    // A global unicast address of either family is fine.
    for url in [
        "https://[2606:4700:4700::1111]/hook",
        "https://1.1.1.1/hook",
    ] {
        let made = app
            .post(
                "/webhook-endpoints",
                &app.admin_key,
                &json!({"program_id": program, "url": url}),
            )
            .await;
        assert_eq!(made.status, 201, "{url}: {}", made.text);
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_counts_as_a_failed_attempt() {
    let app = spawn_app_with(open_config()).await;
    let program = str_of(&app.create_program("Acme").await, "id").to_owned();
    let (other, elsewhere) = receiver(200, vec![], b"ok").await;
    let location = format!("http://{other}/elsewhere");
    let (addr, got) = receiver(307, vec![("location", location)], b"moved").await;
    let ep = endpoint(&app, &program, &format!("http://{addr}/hook")).await;
    app.create_partner(&program, "pp").await;
    let d = first_delivery_when(&app, &ep, |d| {
        d["attempt_log"].as_array().is_some_and(|l| l.len() >= 2)
    })
    .await;
    assert_eq!(d["attempt_log"][0]["status_code"], 307, "{d}");
    assert_ne!(d["status"], "delivered", "{d}");
    assert!(got.paths().iter().all(|p| p == "/hook"));
    assert!(elsewhere.paths().is_empty(), "the redirect was followed");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_with_a_nul_byte_gets_its_attempt_recorded() {
    // PostgreSQL text cannot hold U+0000: an excerpt kept as received
    // failed the whole batch of attempts, which were then sent again.
    on_each_backend(open_config, |app| async move {
        let program = str_of(&app.create_program("Acme").await, "id").to_owned();
        let (addr, _) = receiver(200, vec![], b"ok\0thanks").await;
        let ep = endpoint(&app, &program, &format!("http://{addr}/hook")).await;
        app.create_partner(&program, "pp").await;
        let d = first_delivery_when(&app, &ep, |d| d["status"] == "delivered").await;
        let log = d["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 1, "{d}");
        let excerpt = str_of(&log[0], "response");
        assert!(
            excerpt.starts_with("ok") && excerpt.ends_with("thanks"),
            "{excerpt}"
        );
        assert!(!excerpt.contains('\0'), "{excerpt:?}");
        app.finish().await;
    })
    .await;
}

// --- inbound ---------------------------------------------------------------------

const SHOPIFY_SECRET: &str = "shpss_review_secret_0a1b2c";
const STRIPE_SECRET: &str = "whsec_review_secret_3d4e5f";

/// A paid Shopify order of 10.00 EUR.
fn order(id: u64) -> String {
    json!({"id": id, "currency": "EUR", "total_price": "10.00", "financial_status": "paid",
           "email": "jo@example.com", "discount_codes": [], "note_attributes": [],
           "line_items": []})
    .to_string()
}

async fn shopify(app: &TestApp, hook: &Hook, topic: &str, id: &str, body: &str) -> common::Reply {
    let headers = shopify_headers(&hook.secret, topic, id, Utc::now(), body);
    deliver(app, &hook.path(), body, &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_id_too_long_to_index_or_holding_a_nul_is_still_one_delivery() {
    on_each_backend(test_config, |app| async move {
        let seed = app.seed().await;
        let program = &seed.program_id;
        // Shopify's webhook id is a header: any length the server reads.
        let hook = integration(&app, program, "shopify", SHOPIFY_SECRET, None).await;
        let long = Alphanumeric.sample_string(&mut rand::thread_rng(), 8_000);
        let body = order(7_001);
        let first = shopify(&app, &hook, "orders/paid", &long, &body).await;
        assert_answer(&first, "processed", "a long webhook id");
        let again = shopify(&app, &hook, "orders/paid", &long, &body).await;
        assert_answer(&again, "duplicate", "the same long webhook id");
        // Stripe's event id is read from the signed body.
        let stripe = integration(&app, program, "stripe", STRIPE_SECRET, None).await;
        let event = json!({"id": "evt_\u{0}1", "object": "event", "type": "ping",
                           "data": {"object": {"id": "x"}}})
        .to_string();
        let sig = stripe_signature(STRIPE_SECRET, Utc::now().timestamp(), &event);
        let headers = [("Stripe-Signature".to_owned(), sig)];
        let first = deliver(&app, &stripe.path(), &event, &headers).await;
        assert_answer(&first, "ignored", "an event id with a NUL");
        let again = deliver(&app, &stripe.path(), &event, &headers).await;
        assert_answer(&again, "duplicate", "the same event id with a NUL");
        app.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_note_with_control_characters_is_recorded_as_plain_text() {
    on_each_backend(test_config, |app| async move {
        let seed = app.seed().await;
        let program = &seed.program_id;
        let hook = integration(&app, program, "shopify", SHOPIFY_SECRET, None).await;
        let paid = shopify(&app, &hook, "orders/paid", "wh-1", &order(7_002)).await;
        assert_answer(&paid, "processed", "the order");
        let refund = json!({"id": 11, "order_id": 7_002, "note": "torn\u{0}\nseam\u{202E}",
            "transactions": [{"kind": "refund", "status": "success", "amount": "4.00",
                              "currency": "EUR"}]})
        .to_string();
        let done = shopify(&app, &hook, "refunds/create", "wh-2", &refund).await;
        assert_answer(&done, "processed", "a refund note with control characters");
        let sale = conversion(&app, program, "7002").await;
        let listed = refunds(&app, &sale).await;
        let reason = str_of(&listed[0], "reason");
        assert!(
            reason.contains("torn") && reason.contains("seam"),
            "{reason:?}"
        );
        assert!(
            !reason.chars().any(tribute_core::text::is_forbidden),
            "{reason:?}"
        );
        app.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_delivery_logs_a_bounded_error_whatever_its_headers_hold() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let hook = integration(&app, &seed.program_id, "stripe", STRIPE_SECRET, None).await;
    let junk = "9".repeat(20_000);
    let headers = [
        ("Stripe-Signature".to_owned(), format!("t={junk}x,v1=00")),
        ("X-Shopify-Topic".to_owned(), junk.clone()),
    ];
    let reply = deliver(&app, &hook.path(), "{}", &headers).await;
    assert_eq!(reply.status, 400, "{}", reply.text.len());
    assert!(
        reply.text.len() < 2_000,
        "answer of {} bytes",
        reply.text.len()
    );
    let logged = deliveries(&app, &hook).await;
    let error = str_of(&logged[0], "error");
    assert!(
        error.chars().count() <= 500,
        "an error of {} characters",
        error.len()
    );
    let topic = str_of(&logged[0], "topic");
    assert!(topic.len() <= 100, "a topic of {} characters", topic.len());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_delivery_whose_body_was_pruned_is_refused_and_keeps_its_result() {
    on_each_backend(test_config, |app| async move {
        let seed = app.seed().await;
        let hook = integration(&app, &seed.program_id, "shopify", SHOPIFY_SECRET, None).await;
        let paid = shopify(&app, &hook, "orders/paid", "wh-1", &order(7_003)).await;
        let answer = assert_answer(&paid, "processed", "the order");
        let id = str_of(&answer, "delivery_id").to_owned();
        // Past its retention, the body is gone; the log row stays.
        let later = Utc::now() + chrono::Duration::days(1);
        app.store.prune_webhooks(later, 1_000).await.unwrap();
        let path = format!("/integrations/{}/deliveries/{id}/retry", hook.id);
        app.post(&path, &app.admin_key, &json!({}))
            .await
            .assert_error(409, Some("delivery_id"), "a retry without a body");
        let logged = deliveries(&app, &hook).await;
        assert_eq!(logged[0]["status"], "processed", "{}", logged[0]);
        assert_eq!(logged[0]["result"], answer["result"], "{}", logged[0]);
        app.finish().await;
    })
    .await;
}
