//! Outbound webhooks end to end: a real receiver on loopback (the server
//! runs with `allow_private`), Standard Webhooks signatures checked by the
//! reference Python library, retries on a scaled-down schedule, a receiver
//! that fails and is down across a Tribute restart, `Retry-After`, `410
//! Gone`, disabling after the failing period with a notice, replay by hand,
//! secret rotation, and the SSRF guard on every resolution.

#[allow(unused_macros)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tribute_core::webhook::RetryPolicy;
use tribute_server::{ServerConfig, WebhookSettings};
use tribute_store::testing::TestDb;
use tribute_store::Backend;

use common::*;

/// What the receiver answers.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// 500 for the first `n` attempts of each message, then 200.
    FailFirst(usize),
    /// Always 500.
    AlwaysFail,
    /// 410 Gone.
    Gone,
    /// 429 with `Retry-After: secs` for the first attempt, then 200.
    RetryAfter(u64),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    status: u16,
    at: Instant,
}

#[derive(Clone)]
struct Receiver {
    script: Script,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn new(script: Script) -> Self {
        Self {
            script,
            got: Arc::default(),
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Message ids answered 2xx, with how many times each was.
    fn accepted(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for g in self.got().iter().filter(|g| g.status < 300) {
            *m.entry(g.id.clone()).or_insert(0) += 1;
        }
        m
    }
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id = h("webhook-id");
    let mut got = r.got.lock().unwrap();
    let before = got.iter().filter(|g| g.id == id).count();
    let (status, retry_after) = match r.script {
        Script::FailFirst(n) if before < n => (500, None),
        Script::FailFirst(_) => (200, None),
        Script::AlwaysFail => (500, None),
        Script::Gone => (410, None),
        Script::RetryAfter(s) if before == 0 => (429, Some(s)),
        Script::RetryAfter(_) => (200, None),
    };
    got.push(Got {
        id,
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body,
        status,
        at: Instant::now(),
    });
    // No keep-alive: once the listener is gone, the receiver is down.
    let mut response = (StatusCode::from_u16(status).unwrap(), "ok").into_response();
    response
        .headers_mut()
        .insert("connection", "close".parse().unwrap());
    if let Some(s) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    response
}

/// Serve `r` on `addr` (port 0: a free one); the task is the receiver
/// being up, aborting it takes it down.
async fn serve(r: &Receiver, addr: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.expect("binding the receiver");
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// Tests' webhook settings: loopback allowed, quick polling, the schedule
/// scaled by `scale`.
fn config(scale: f64) -> ServerConfig {
    ServerConfig {
        webhooks: WebhookSettings {
            allow_private: true,
            retry: RetryPolicy { scale },
            poll: Duration::from_millis(20),
            ..WebhookSettings::default()
        },
        ..test_config()
    }
}

/// Make an endpoint of `program` for `url` and `events`; returns (id, secret).
async fn endpoint(app: &TestApp, program: &str, url: &str, events: Value) -> (String, String) {
    let e = app
        .post(
            "/webhook-endpoints",
            &app.admin_key,
            &json!({"program_id": program, "url": url, "events": events}),
        )
        .await
        .ok(201)
        .clone();
    (str_of(&e, "id").to_owned(), str_of(&e, "secret").to_owned())
}

/// Wait until `done` holds, or fail after `limit` naming `what`.
async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An endpoint's deliveries as the API lists them.
async fn deliveries(app: &TestApp, endpoint: &str) -> Vec<Value> {
    app.get(
        &format!("/webhook-endpoints/{endpoint}/deliveries?limit=500"),
        &app.admin_key,
    )
    .await
    .ok(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Whether the reference Standard Webhooks library is installed (a failure
/// under CI).
fn standardwebhooks_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        tribute_store::testing::skip(
            test,
            "standardwebhooks is not installed \
             (python3 -m pip install -r crates/server/tests/webhooks/requirements.txt)",
        );
    }
    ok
}

/// Verify every message with the Python library, with `secret`.
fn verify_with_library(secret: &str, got: &[Got]) {
    let messages: Vec<Value> = got
        .iter()
        .map(|g| {
            json!({
                "secret": secret,
                "headers": {
                    "webhook-id": g.id,
                    "webhook-timestamp": g.timestamp,
                    "webhook-signature": g.signature,
                },
                "body": g.body,
            })
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&messages).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/verify.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(file.path())
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "standardwebhooks refused Tribute's signatures:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_arrives_through_failures_and_a_restart_and_only_retries_repeat_an_id_sqlite()
{
    through_failures_and_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_arrives_through_failures_and_a_restart_and_only_retries_repeat_an_id_postgres(
) {
    through_failures_and_a_restart(Backend::Postgres).await;
}

async fn through_failures_and_a_restart(backend: Backend) {
    let Some(db) = TestDb::of(backend).await else {
        return;
    };
    let receiver = Receiver::new(Script::FailFirst(3));
    let (addr, up) = serve(&receiver, "127.0.0.1:0".parse().unwrap()).await;
    let mut app = start_with(db.store.clone(), backend, config(0.0002)).await;
    let program = str_of(&app.create_program("Acme").await, "id").to_owned();
    let url = format!("http://{addr}/hook");
    let (ep, secret) = endpoint(&app, &program, &url, json!([])).await;
    for i in 0..4 {
        app.create_partner(&program, &format!("p{i}")).await;
    }
    for i in 0..3 {
        app.post(
            "/conversions",
            &app.admin_key,
            &json!({"program_id": program, "external_id": format!("o{i}"), "value": 1000, "currency": "EUR"}),
        )
        .await
        .ok(201);
    }
    // Some messages have failed once or twice; now the receiver goes down
    // and Tribute restarts while it is.
    wait_until(Duration::from_secs(10), "first attempts", || {
        receiver.got().len() >= 7
    })
    .await;
    up.abort();
    let _ = up.await;
    app.shutdown().await;
    let app = start_with(db.store.clone(), backend, config(0.0002)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, up) = serve(&receiver, addr).await;
    let expected: BTreeSet<String> = deliveries(&app, &ep)
        .await
        .iter()
        .map(|d| str_of(d, "msg_id").to_owned())
        .collect();
    assert_eq!(
        expected.len(),
        7,
        "4 partner.created and 3 conversion.created"
    );
    wait_until(Duration::from_secs(30), "every message accepted", || {
        receiver.accepted().len() == expected.len()
    })
    .await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(
        accepted.values().all(|n| *n == 1),
        "each message accepted once: {accepted:?}"
    );
    // Every request was an attempt of a known message: retries repeat an
    // id, nothing else does.
    assert!(receiver.got().iter().all(|g| expected.contains(&g.id)));
    // The log shows each attempt, failures first, on the schedule.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for d in deliveries(&app, &ep).await {
        assert_eq!(d["status"], "delivered", "{d}");
        let log = d["attempt_log"].as_array().unwrap();
        assert!(log.len() >= 4, "three failures then success: {d}");
        assert_eq!(log.last().unwrap()["status_code"], 200);
        for pair in log.windows(2) {
            // RFC 3339 text leaves out a zero fraction ("…:08Z" sorts after
            // "…:08.5Z"), so compare the instants, not the strings.
            let at = |a: &Value| {
                chrono::DateTime::parse_from_rfc3339(a["started_at"].as_str().unwrap()).unwrap()
            };
            assert!(at(&pair[0]) <= at(&pair[1]), "{d}");
        }
    }
    if standardwebhooks_available("every_message_arrives_through_failures_and_a_restart") {
        verify_with_library(&secret, &receiver.got());
    }
    up.abort();
    app.finish().await;
    db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_retried_on_the_schedule_then_disabled_with_a_notice() {
    // 5 days at this scale is 4.3 s; the whole schedule about 2.7 s.
    let app = spawn_app_with(config(0.00001)).await;
    let program = str_of(&app.create_program("Acme").await, "id").to_owned();
    let failing = Receiver::new(Script::AlwaysFail);
    let (addr, _up) = serve(&failing, "127.0.0.1:0".parse().unwrap()).await;
    let watcher = Receiver::new(Script::FailFirst(0));
    let (waddr, _wup) = serve(&watcher, "127.0.0.1:0".parse().unwrap()).await;
    let (ep, _) = endpoint(
        &app,
        &program,
        &format!("http://{addr}/hook"),
        json!(["partner.created"]),
    )
    .await;
    endpoint(
        &app,
        &program,
        &format!("http://{waddr}/hook"),
        json!(["endpoint.disabled"]),
    )
    .await;
    let started = Instant::now();
    app.create_partner(&program, "first").await;
    wait_until(Duration::from_secs(20), "ten attempts", || {
        failing.got().len() >= 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = failing.got();
    assert_eq!(got.len(), 10, "the first attempt and nine retries, no more");
    // Each wait is at least 80 % of the scheduled one (jitter is ±20 %).
    let schedule = tribute_core::webhook::RETRY_SCHEDULE;
    for (i, pair) in got.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let planned = Duration::from_secs_f64(schedule[i] as f64 * 0.00001 * 0.8);
        assert!(
            gap >= planned,
            "retry {} came after {gap:?}, planned {planned:?}",
            i + 1
        );
    }
    let d = &deliveries(&app, &ep).await[0];
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempt_log"].as_array().unwrap().len(), 10);
    let shown = app
        .get(&format!("/webhook-endpoints/{ep}"), &app.admin_key)
        .await;
    assert_eq!(
        shown.ok(200)["enabled"],
        true,
        "not yet failing for the period"
    );
    // Past the period, the next failure disables it.
    let period = Duration::from_secs_f64(5.0 * 86400.0 * 0.00001);
    tokio::time::sleep(period.saturating_sub(started.elapsed()) + Duration::from_millis(100)).await;
    app.create_partner(&program, "second").await;
    let mut disabled = Value::Null;
    for _ in 0..250 {
        disabled = app
            .get(&format!("/webhook-endpoints/{ep}"), &app.admin_key)
            .await
            .ok(200)
            .clone();
        if disabled["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(disabled["enabled"], false, "{disabled}");
    assert!(str_of(&disabled, "disabled_reason").contains("every attempt failed"));
    let notices = app
        .get(&format!("/notices?program_id={program}"), &app.admin_key)
        .await;
    let notices = notices.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["kind"], "endpoint.disabled");
    assert_eq!(notices[0]["subject_id"], ep.as_str());
    wait_until(
        Duration::from_secs(5),
        "the endpoint.disabled event",
        || {
            watcher
                .got()
                .iter()
                .any(|g| g.body.contains("endpoint.disabled") && g.body.contains(&ep))
        },
    )
    .await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_at_once_and_retry_after_is_honoured() {
    let app = spawn_app_with(config(0.0002)).await;
    let program = str_of(&app.create_program("Acme").await, "id").to_owned();
    let gone = Receiver::new(Script::Gone);
    let (gaddr, _g) = serve(&gone, "127.0.0.1:0".parse().unwrap()).await;
    let slow = Receiver::new(Script::RetryAfter(1));
    let (saddr, _s) = serve(&slow, "127.0.0.1:0".parse().unwrap()).await;
    let (gep, _) = endpoint(&app, &program, &format!("http://{gaddr}/hook"), json!([])).await;
    endpoint(
        &app,
        &program,
        &format!("http://{saddr}/hook"),
        json!(["partner.created"]),
    )
    .await;
    app.create_partner(&program, "pp").await;
    wait_until(Duration::from_secs(10), "the retry after a second", || {
        slow.got().len() >= 2
    })
    .await;
    let got = slow.got();
    assert_eq!(got[0].status, 429);
    assert_eq!(got[0].id, got[1].id, "a retry keeps the webhook-id");
    assert!(
        got[1].at - got[0].at >= Duration::from_secs(1),
        "Retry-After: 1 was honoured ({:?})",
        got[1].at - got[0].at
    );
    assert_eq!(gone.got().len(), 1, "410 is never retried");
    let shown = app
        .get(&format!("/webhook-endpoints/{gep}"), &app.admin_key)
        .await;
    let shown = shown.ok(200);
    assert_eq!(shown["enabled"], false);
    assert!(str_of(shown, "disabled_reason").contains("410"));
    // A disabled endpoint gets nothing, until it is enabled again.
    app.create_partner(&program, "qq").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gone.got().len(), 1);
    app.patch(
        &format!("/webhook-endpoints/{gep}"),
        &app.admin_key,
        &json!({"enabled": true}),
    )
    .await
    .ok(200);
    // Nothing was queued for it while disabled (as svix does); what
    // happens next is sent.
    app.create_partner(&program, "rr").await;
    wait_until(Duration::from_secs(5), "the next message", || {
        gone.got().len() >= 2
    })
    .await;
    assert!(
        gone.got()[1].body.contains("\"rr\""),
        "{}",
        gone.got()[1].body
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_replayed_by_hand_keeps_its_id_and_a_rotated_secret_signs_beside_the_old() {
    let app = spawn_app_with(config(0.0002)).await;
    let program = str_of(&app.create_program("Acme").await, "id").to_owned();
    let r = Receiver::new(Script::FailFirst(0));
    let (addr, _up) = serve(&r, "127.0.0.1:0".parse().unwrap()).await;
    let (ep, old) = endpoint(&app, &program, &format!("http://{addr}/hook"), json!([])).await;
    app.create_partner(&program, "pp").await;
    wait_until(Duration::from_secs(5), "the first delivery", || {
        r.got().len() == 1
    })
    .await;
    let d = deliveries(&app, &ep).await[0].clone();
    app.post(
        &format!("/webhook-deliveries/{}/replay", str_of(&d, "id")),
        &app.admin_key,
        &json!({}),
    )
    .await
    .ok(202);
    wait_until(Duration::from_secs(5), "the replay", || r.got().len() == 2).await;
    assert_eq!(r.got()[1].id, r.got()[0].id);
    let rotated = app
        .post(
            &format!("/webhook-endpoints/{ep}/rotate-secret"),
            &app.admin_key,
            &json!({}),
        )
        .await;
    let new = str_of(rotated.ok(200), "secret").to_owned();
    assert_ne!(new, old);
    // The sender reads an endpoint again after at most a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.create_partner(&program, "qq").await;
    wait_until(Duration::from_secs(5), "a message after rotation", || {
        r.got().len() == 3
    })
    .await;
    let last = r.got()[2].clone();
    assert_eq!(last.signature.split(' ').count(), 2, "{}", last.signature);
    if standardwebhooks_available("a_delivery_replayed_by_hand_keeps_its_id") {
        verify_with_library(&new, std::slice::from_ref(&last));
        verify_with_library(&old, &[last]);
    }
    let missing = app
        .post(
            "/webhook-deliveries/whd_0000000000000000000000/replay",
            &app.admin_key,
            &json!({}),
        )
        .await;
    missing.assert_error(404, None, "an unknown delivery");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_at_creation_and_again_when_a_name_resolves_to_one() {
    let guarded = ServerConfig {
        webhooks: WebhookSettings {
            poll: Duration::from_millis(20),
            retry: RetryPolicy { scale: 0.0002 },
            ..WebhookSettings::default()
        },
        ..test_config()
    };
    let db = TestDb::sqlite().await;
    let r = Receiver::new(Script::FailFirst(0));
    let (addr, _up) = serve(&r, "127.0.0.1:0".parse().unwrap()).await;
    // An endpoint by name, made while private targets were allowed (or
    // whose name has since come to resolve to a private address)...
    let mut open = start_with(db.store.clone(), Backend::Sqlite, config(0.0002)).await;
    let program = str_of(&open.create_program("Acme").await, "id").to_owned();
    let (ep, _) = endpoint(
        &open,
        &program,
        &format!("http://localhost:{}/hook", addr.port()),
        json!([]),
    )
    .await;
    open.shutdown().await;
    // ...is refused when it resolves, once the server refuses them.
    let app = start_with(db.store.clone(), Backend::Sqlite, guarded).await;
    for url in [
        format!("http://{addr}/hook"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]:9/".to_owned(),
        "http://localhost/".to_owned(),
    ] {
        app.post(
            "/webhook-endpoints",
            &app.admin_key,
            &json!({"program_id": program, "url": url}),
        )
        .await
        .assert_error(422, Some("url"), &url);
    }
    app.create_partner(&program, "pp").await;
    let mut log = Vec::new();
    for _ in 0..250 {
        log = deliveries(&app, &ep).await[0]["attempt_log"]
            .as_array()
            .unwrap()
            .clone();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!log.is_empty(), "an attempt was logged");
    assert!(log[0]["status_code"].is_null());
    let error = str_of(&log[0], "error");
    assert!(error.contains("no public address"), "{error}");
    assert!(r.got().is_empty(), "nothing reached the loopback receiver");
    app.finish().await;
    db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_endpoint_input_is_refused_naming_the_field_and_the_secret_is_shown_only_when_asked() {
    let app = spawn_app_with(config(1.0)).await;
    let seed = app.seed().await;
    let other = app.create_program("Other").await;
    let other_partner = app.create_partner(str_of(&other, "id"), "zz").await;
    let url = "https://hooks.example.com/t";
    for (body, field) in [
        (
            json!({"program_id": seed.program_id, "url": "ftp://x.example/"}),
            "url",
        ),
        (
            json!({"program_id": seed.program_id, "url": url, "events": ["conversion.made"]}),
            "events[0]",
        ),
        (
            json!({"program_id": seed.program_id, "url": url, "partner_id": str_of(&other_partner, "id")}),
            "partner_id",
        ),
        (
            json!({"program_id": "prg_missing", "url": url}),
            "program_id",
        ),
    ] {
        app.post("/webhook-endpoints", &app.admin_key, &body)
            .await
            .assert_error(422, Some(field), field);
    }
    let unknown = app
        .post(
            "/webhook-endpoints",
            &app.admin_key,
            &json!({"program_id": seed.program_id, "url": url, "secret": "mine"}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(app.count("/webhook-endpoints").await, 0, "nothing was made");
    let (ep, secret) = endpoint(&app, &seed.program_id, url, json!(["payout.paid"])).await;
    assert!(secret.starts_with("whsec_"));
    let listed = app.get("/webhook-endpoints", &app.admin_key).await;
    assert!(listed.ok(200)["data"][0].get("secret").is_none());
    let shown = app
        .get(&format!("/webhook-endpoints/{ep}/secret"), &app.admin_key)
        .await;
    assert_eq!(shown.ok(200)["secret"], secret.as_str());
    let partner = app
        .get(&format!("/webhook-endpoints/{ep}/secret"), &seed.alice.key)
        .await;
    assert_eq!(partner.status, 403, "a partner key cannot read it");
    app.finish().await;
}
