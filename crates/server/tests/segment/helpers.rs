//! Helpers for the Segment-compatibility tests: a program with a write key,
//! partner clicks to credit, Segment requests with HTTP Basic auth, and the
//! real Python SDK run as a child process.

use std::path::PathBuf;
use std::process::Command;

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tribute_core::ids::{PartnerId, ProgramId};

use crate::common::{publishable_key, Reply, SeedPartner, TestApp};

/// A program with partners alice and bob and an ingest key bound to it.
pub struct Setup {
    pub program_id: ProgramId,
    pub alice: SeedPartner,
    pub bob: SeedPartner,
    /// An `ingest` key: the Segment write key.
    pub write_key: String,
}

impl Setup {
    pub async fn new(app: &TestApp) -> Self {
        let seed = app.seed().await;
        let program_id = ProgramId::parse(&seed.program_id).expect("a program id");
        // A Segment write key is publishable: analytics.js puts it in every page.
        let write_key = publishable_key(&app.store, &program_id).await;
        Self {
            program_id,
            alice: seed.alice,
            bob: seed.bob,
            write_key,
        }
    }

    pub fn partner_id(p: &SeedPartner) -> PartnerId {
        PartnerId::parse(&p.id).expect("a partner id")
    }

    /// Events stored for the program.
    pub async fn events(&self, app: &TestApp) -> i64 {
        app.store
            .count_events(&self.program_id)
            .await
            .expect("counting events")
    }

    /// Leads that count for `partner`.
    pub async fn leads(&self, app: &TestApp, partner: &SeedPartner) -> i64 {
        app.store
            .count_leads(&self.program_id, &Self::partner_id(partner))
            .await
            .expect("counting leads")
    }

    /// The program's conversions as the API lists them (admin view).
    pub async fn conversions(&self, app: &TestApp) -> Vec<Value> {
        app.get(
            &format!("/conversions?program_id={}&limit=500", self.program_id),
            &app.admin_key,
        )
        .await
        .ok(200)["data"]
            .as_array()
            .expect("a list")
            .clone()
    }
}

/// Read a response as the shared tests do.
pub async fn reply_of(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("reading the body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

/// POST `body` to a Segment endpoint (`/v1/track`…), the write key as the
/// HTTP Basic username and an empty password, as Segment's SDKs send it.
pub async fn segment(app: &TestApp, path: &str, write_key: &str, body: &Value) -> Reply {
    segment_raw(app, path, Some(write_key), body.to_string()).await
}

/// POST a raw body, with the write key as Basic username when given.
pub async fn segment_raw(
    app: &TestApp,
    path: &str,
    write_key: Option<&str>,
    body: String,
) -> Reply {
    let mut request = app
        .client
        .post(app.url(path))
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(key) = write_key {
        request = request.basic_auth(key, Some(""));
    }
    reply_of(request.send().await.expect("sending a Segment request")).await
}

/// Assert Segment's success answer: 200 `{"success": true}`.
#[track_caller]
pub fn assert_success(reply: &Reply, case: &str) {
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{case}: expected 200, got {}: {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        reply.body,
        serde_json::json!({"success": true}),
        "{case}: body {}",
        reply.text
    );
}

/// Follow a new link of `partner` as a browser would; return the click id
/// once the click is written (events only find clicks already stored).
pub async fn click(app: &TestApp, partner: &SeedPartner) -> String {
    let link = app.create_link(&partner.id, serde_json::json!({})).await;
    let code = link["code"].as_str().expect("a link code");
    let reply = app.visit(&format!("/r/{code}")).await;
    assert_eq!(reply.status.as_u16(), 302, "redirect: {}", reply.text);
    let tid = reply
        .location()
        .query_pairs()
        .find(|(k, _)| k == "tid")
        .map(|(_, v)| v.into_owned())
        .expect("a tid on the redirect");
    app.wait_for_click(&tid).await;
    tid
}

/// `tests/segment/send.py`.
pub fn send_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/segment/send.py")
}

/// Whether `python3` can import the Segment SDK. Without it the test is
/// skipped with a visible message, except in CI (`CI=true` or `CI=1`),
/// where a missing SDK is a failure: `.ci/run` installs it.
pub fn python_sdk_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import segment.analytics"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    tribute_store::testing::skip(
        test,
        "segment-analytics-python is not installed \
         (python3 -m pip install -r crates/server/tests/segment/requirements.txt)",
    );
    false
}

/// Run `send.py` with `args`; panic with its output unless it succeeds.
pub async fn run_send_py(args: Vec<String>) {
    let script = send_script();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args(&args)
            .output()
            .expect("running python3")
    })
    .await
    .expect("the python task");
    assert!(
        output.status.success(),
        "send.py failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
