//! Helpers for the inbound hook tests (`tests/inbound_hooks*.rs`): an
//! integration made through the admin API, deliveries signed as each
//! provider signs them and posted to `/hooks/{kind}/{id}`, readers of the
//! delivery log, conversions and refunds, and Stripe's own Python library
//! run as a child process to confirm a Stripe signature.
//!
//! The signatures are computed here from the providers' documented schemes
//! (an HMAC-SHA256 written out over `sha2`), not with Tribute's verifier,
//! so a test that passes shows the two agree.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::ids::{ProgramId, RewardRuleId};

use crate::common::{str_of, Reply, TestApp};

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// An integration as created through the API, with its secret.
#[derive(Debug, Clone)]
pub struct Hook {
    pub id: String,
    pub kind: &'static str,
    pub secret: String,
    pub program_id: String,
}

impl Hook {
    /// `/hooks/{kind}/{id}`.
    pub fn path(&self) -> String {
        format!("/hooks/{}/{}", self.kind, self.id)
    }
}

/// Create an integration of `kind` on `program_id` (201) and return it.
pub async fn integration(
    app: &TestApp,
    program_id: &str,
    kind: &'static str,
    secret: &str,
    mapping: Option<Value>,
) -> Hook {
    let mut body = json!({"program_id": program_id, "kind": kind, "secret": secret});
    if let Some(m) = mapping {
        body["mapping"] = m;
    }
    let made = app.post("/integrations", &app.admin_key, &body).await;
    let made = made.ok(201);
    Hook {
        id: str_of(made, "id").to_owned(),
        kind,
        secret: secret.to_owned(),
        program_id: program_id.to_owned(),
    }
}

/// POST `body` to `path` (a hook URL's path) with `headers`, as a provider does.
pub async fn deliver(app: &TestApp, path: &str, body: &str, headers: &[(String, String)]) -> Reply {
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    Reply::read(request.send().await.expect("sending a delivery")).await
}

/// Assert a 200 answer with `status`; return its body.
#[track_caller]
pub fn assert_answer(reply: &Reply, status: &str, case: &str) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{case}: expected 200, got {}: {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        reply.body["status"], status,
        "{case}: answer {}",
        reply.text
    );
    assert!(
        reply.body["delivery_id"]
            .as_str()
            .is_some_and(|d| d.starts_with("ind_")),
        "{case}: no delivery id: {}",
        reply.text
    );
    reply.body.clone()
}

/// The ids in an answer's `result` items under `key` (e.g. `conversion_id`).
pub fn result_ids(answer: &Value, key: &str) -> Vec<String> {
    answer["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result list in {answer}"))
        .iter()
        .filter_map(|item| item[key].as_str().map(str::to_owned))
        .collect()
}

// --- provider signatures ---------------------------------------------------

/// `Stripe-Signature: t={t},v1=hex(HMAC(secret, "{t}.{body}"))`.
pub fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
    let t = t.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body.as_bytes()]);
    format!("t={t},v1={}", hex::encode(mac))
}

/// The Shopify headers of a delivery of `topic` triggered at `at`.
pub fn shopify_headers(
    secret: &str,
    topic: &str,
    webhook_id: &str,
    at: DateTime<Utc>,
    body: &str,
) -> Vec<(String, String)> {
    let mac = hmac_sha256(secret.as_bytes(), &[body.as_bytes()]);
    vec![
        ("X-Shopify-Topic".into(), topic.into()),
        ("X-Shopify-Hmac-Sha256".into(), STANDARD.encode(mac)),
        ("X-Shopify-Webhook-Id".into(), webhook_id.into()),
        ("X-Shopify-Triggered-At".into(), at.to_rfc3339()),
        ("X-Shopify-Shop-Domain".into(), "acme.myshopify.com".into()),
        ("X-Shopify-API-Version".into(), "2025-01".into()),
    ]
}

/// HubSpot's v3 headers: base64(HMAC(secret, "POST" + url + body + ms)).
pub fn hubspot_headers(secret: &str, url: &str, body: &str, millis: i64) -> Vec<(String, String)> {
    let ms = millis.to_string();
    let mac = hmac_sha256(
        secret.as_bytes(),
        &[b"POST", url.as_bytes(), body.as_bytes(), ms.as_bytes()],
    );
    vec![
        ("X-HubSpot-Signature-v3".into(), STANDARD.encode(mac)),
        ("X-HubSpot-Request-Timestamp".into(), ms),
    ]
}

// --- what was written --------------------------------------------------------

/// An integration's delivery log, newest first.
pub async fn deliveries(app: &TestApp, hook: &Hook) -> Vec<Value> {
    app.get(
        &format!("/integrations/{}/deliveries?limit=500", hook.id),
        &app.admin_key,
    )
    .await
    .ok(200)["data"]
        .as_array()
        .expect("a list")
        .clone()
}

/// The newest logged delivery, asserting its status and whether it verified.
pub async fn last_delivery(app: &TestApp, hook: &Hook, status: &str, verified: bool) -> Value {
    let log = deliveries(app, hook).await;
    let last = log.first().expect("a logged delivery").clone();
    assert_eq!(
        (last["status"].as_str(), last["verified"].as_bool()),
        (Some(status), Some(verified)),
        "newest delivery: {last}"
    );
    last
}

/// The program's conversions (admin view).
pub async fn conversions(app: &TestApp, program_id: &str) -> Vec<Value> {
    app.get(
        &format!("/conversions?program_id={program_id}&limit=500"),
        &app.admin_key,
    )
    .await
    .ok(200)["data"]
        .as_array()
        .expect("a list")
        .clone()
}

/// The conversion with order id `external_id`.
pub async fn conversion(app: &TestApp, program_id: &str, external_id: &str) -> Value {
    let all = conversions(app, program_id).await;
    all.iter()
        .find(|c| c["external_id"] == external_id)
        .unwrap_or_else(|| panic!("no conversion {external_id} in {all:?}"))
        .clone()
}

/// The ids of the partners a conversion is credited to.
pub fn credited(conversion: &Value) -> Vec<String> {
    conversion["partners"]
        .as_array()
        .unwrap_or_else(|| panic!("no partners in {conversion}"))
        .iter()
        .map(|p| str_of(p, "partner_id").to_owned())
        .collect()
}

/// A conversion's refunds and chargebacks.
pub async fn refunds(app: &TestApp, conversion: &Value) -> Vec<Value> {
    app.get(
        &format!("/conversions/{}/refunds", str_of(conversion, "id")),
        &app.admin_key,
    )
    .await
    .ok(200)["data"]
        .as_array()
        .expect("a list")
        .clone()
}

/// A 10 % sale rule on the program, so refunds have commissions to reverse.
pub async fn ten_percent(app: &TestApp, program_id: &str) {
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id: ProgramId::parse(program_id).expect("a program id"),
        version: 1,
        terms: RuleTerms::from_json(
            &json!({"name": "ten", "event": "sale", "kind": "percentage", "rate_bps": 1000}),
        )
        .expect("rule terms"),
    };
    app.store
        .insert_reward_rule(&rule, Utc::now())
        .await
        .expect("inserting a rule");
}

/// A new link of `partner_id`, followed by a browser: the click id.
pub async fn click(app: &TestApp, partner_id: &str) -> String {
    let link = app.create_link(partner_id, json!({})).await;
    app.click_link(str_of(&link, "code")).await
}

/// A well-formed integration id that names no integration.
pub const UNKNOWN_ID: &str = "int_00000000000000000000";

// --- Stripe's own library ------------------------------------------------------

fn sign_check_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hooks/stripe_sign_check.py")
}

/// Whether `python3` can import Stripe's library. Without it the check is
/// skipped with a visible message, except in CI (`CI=true` or `CI=1`),
/// where a missing library is a failure: `.ci/run` installs it.
pub fn stripe_library_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import stripe; stripe.Webhook.construct_event"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        tribute_store::testing::skip(
            test,
            "Stripe's Python library is not installed \
             (python3 -m pip install -r crates/server/tests/hooks/requirements.txt)",
        );
    }
    ok
}

/// Whether `stripe.Webhook.construct_event(body, signature, secret)`
/// accepts the delivery; the script's output is returned for messages.
pub async fn stripe_library_accepts(body: &str, signature: &str, secret: &str) -> (bool, String) {
    let (body, signature, secret) = (body.to_owned(), signature.to_owned(), secret.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("python3")
            .arg(sign_check_script())
            .args(["--secret", &secret, "--signature", &signature])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running python3");
        child
            .stdin
            .take()
            .expect("the script's stdin")
            .write_all(body.as_bytes())
            .expect("writing the payload");
        child.wait_with_output().expect("waiting for python3")
    })
    .await
    .expect("the python task");
    let said = format!(
        "exit {}: {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "stripe_sign_check.py could not judge the delivery: {said}"
    );
    (code == Some(0), said)
}
