//! The first-party snippet end to end: `/t.js` and `/collect` over HTTP, and
//! in a real headless Chromium (Debian's `chromium`, driven by
//! `tests/browser/run.mjs` through `playwright-core`) on a test page served
//! by a second local server, as an owner's site would embed it.
//!
//! Without Chromium or `tests/browser/node_modules` the browser tests print
//! `SKIPPED: …` and pass, except under CI (`CI=true` or `CI=1`), where they
//! fail (`tribute_store::testing::skip`).
//!
//! The same endpoints over plain HTTP are tested in `browser_http.rs`.

// This binary uses no backend matrix.
#[allow(unused_macros)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tribute_core::ids::{PartnerId, ProgramId};

use common::snippet::{program_id, write_key};
use common::{spawn_app, TestApp};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Longest one browser scenario may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

// --- in Chromium -----------------------------------------------------------

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Whether Chromium, node and playwright-core are here; if not, skip
/// (outside CI) or fail (under CI).
fn browser_available(test: &str) -> bool {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (apt-get install chromium)"));
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        missing.push("playwright-core (npm ci in crates/server/tests/browser)".to_owned());
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        missing.push("node".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    tribute_store::testing::skip(test, &format!("missing {}", missing.join(", ")));
    false
}

/// The owner's page: it embeds the snippet and has a sign-up form whose
/// handler reports a lead. (Built from a fixed template; the inserted values
/// are a URL and a key, neither of which needs escaping.)
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Acme</title>
<script src="TRIBUTE/t.js" data-key="KEY" async></script>
</head><body>
<form id="signup"><input id="email" type="email" required><button id="submit">Sign up</button></form>
<p id="done"></p>
<script>
document.getElementById('signup').addEventListener('submit', function (ev) {
  ev.preventDefault();
  window.tribute.lead({email: document.getElementById('email').value, form: 'signup'});
  window.tribute.flush().then(function () { document.getElementById('done').textContent = 'thanks'; });
});
</script>
</body></html>"#;

/// A tiny second server on another port: the owner's site, which becomes
/// the program's allowed domain. Returns its origin.
///
/// The site is named `site.localhost`: Chromium resolves every `*.localhost`
/// name to the loopback address, and an allowed domain is a registrable
/// name, never an IP address, with its port listed explicitly.
async fn serve_site(app: &TestApp, program: &ProgramId, key: &str) -> String {
    let html = PAGE.replace("TRIBUTE", &app.address).replace("KEY", key);
    let router = axum::Router::new()
        .route("/landing", get(move || async move { Html(html) }))
        // Chromium asks for it; a 404 would show as an error on the page.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    app.patch(
        &format!("/programs/{program}"),
        &app.admin_key,
        &json!({"allowed_domains": [format!("site.localhost:{port}")]}),
    )
    .await
    .ok(200);
    format!("http://site.localhost:{port}")
}

/// A program (its allowed domain set by [`serve_site`]), with partners
/// alice and bob and a write key; returns (program, alice, bob, key).
async fn site_program(app: &TestApp) -> (ProgramId, String, String, String) {
    let program = app
        .post(
            "/programs",
            &app.admin_key,
            &json!({"name": "Acme", "currency": "EUR", "allowed_domains": ["acme.test"]}),
        )
        .await
        .ok(201)
        .clone();
    let program = program_id(&program);
    let alice = app.create_partner(program.as_str(), "alice").await;
    let bob = app.create_partner(program.as_str(), "bob").await;
    let key = write_key(app, &program).await;
    (
        program,
        alice["id"].as_str().unwrap().to_owned(),
        bob["id"].as_str().unwrap().to_owned(),
        key,
    )
}

/// Run `run.mjs` with `args`; `at_checkpoint` sees each checkpoint (and
/// the script waits for it); returns the final `done` object.
async fn run_browser<F, Fut>(args: Value, mut at_checkpoint: F) -> Value
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut child = tokio::process::Command::new("node")
        .arg(browser_dir().join("run.mjs"))
        .arg(args.to_string())
        .current_dir(browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let done = loop {
        let line = tokio::time::timeout_at(deadline.into(), out.next_line())
            .await
            .expect("the browser scenario finishes in time")
            .expect("reading node's output")
            .expect("node ended without a result");
        let msg: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                eprintln!("node: {line}");
                continue;
            }
        };
        match msg["step"].as_str() {
            Some("done") => break msg,
            Some("error") => panic!("browser scenario failed: {}", msg["message"]),
            _ => {
                let wait = msg["wait"] == true;
                at_checkpoint(msg).await;
                if wait {
                    stdin.write_all(b"go\n").await.expect("resuming node");
                    stdin.flush().await.expect("resuming node");
                }
            }
        }
    };
    let status = tokio::time::timeout_at(deadline.into(), child.wait())
        .await
        .expect("node exits")
        .expect("waiting for node");
    assert!(status.success(), "node exited with {status}");
    assert_eq!(done["errors"], json!([]), "errors on the page: {done}");
    done
}

/// The `_tribute` cookie's state, as the page stored it.
fn tribute_cookie(result: &Value) -> Option<Value> {
    result["cookies"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "_tribute")
        .and_then(|c| c["value"].as_str())
        .map(|v| {
            let decoded = url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            serde_json::from_str(&decoded).expect("the cookie holds JSON")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_click_then_a_signup_in_chromium_credits_the_partner_with_a_conversion_by_email()
{
    if !browser_available("browser lead scenario") {
        return;
    }
    let app = spawn_app().await;
    let (program, alice, bob, key) = site_program(&app).await;
    let site = serve_site(&app, &program, &key).await;
    let link = app
        .create_link(
            &alice,
            json!({"destination": format!("{site}/landing?plan=pro")}),
        )
        .await;
    let email = "jane.doe@example.com";

    let result = run_browser(
        json!({
            "scenario": "lead",
            "start_url": app.url(&format!("/r/{}", link["code"].as_str().unwrap())),
            "tribute_origin": app.address,
            "email": email,
            "chromium": CHROMIUM,
        }),
        |_| async {},
    )
    .await;

    // The browser landed on the owner's page with the click id.
    let landed = url::Url::parse(result["url"].as_str().unwrap()).unwrap();
    assert!(
        result["url"].as_str().unwrap().starts_with(&site),
        "{landed}"
    );
    let tid = landed
        .query_pairs()
        .find(|(k, _)| k == "tid")
        .map(|(_, v)| v.into_owned())
        .expect("the landing URL carries tid");
    let click = app.wait_for_click(&tid).await;
    assert!(!click.is_bot, "a person's click: {:?}", click.user_agent);
    // The snippet kept it, with an anonymous id, in a first-party cookie and localStorage.
    let state = tribute_cookie(&result).expect("a _tribute cookie");
    assert_eq!(state["t"], tid.as_str(), "{state}");
    assert!(
        state["a"].as_str().is_some_and(|a| a.len() >= 32),
        "{state}"
    );
    let stored: Value = serde_json::from_str(
        result["local_storage"]["tribute"]
            .as_str()
            .expect("localStorage"),
    )
    .unwrap();
    assert_eq!(stored, state, "cookie and localStorage agree");
    // It sent a page view and the lead, each accepted, email never in clear.
    let sent: Vec<&Value> = result["collected"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|c| assert_eq!(c["status"], 200, "{c}"))
        .flat_map(|c| c["body"]["events"].as_array().unwrap())
        .collect();
    let types: Vec<&str> = sent.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"page_view") && types.contains(&"lead"),
        "{types:?}"
    );
    assert!(sent
        .iter()
        .all(|e| e["click_id"] == tid.as_str() && e["anonymous_id"] == state["a"]));
    let alice_id = PartnerId::parse(&alice).unwrap();
    assert_eq!(
        app.store.count_leads(&program, &alice_id).await.unwrap(),
        1,
        "the sign-up is alice's lead"
    );
    assert_eq!(
        app.store
            .count_leads(&program, &PartnerId::parse(&bob).unwrap())
            .await
            .unwrap(),
        0
    );

    // The owner's backend reports the order by e-mail only, with its own
    // secret key (the page's publishable key may not use the API).
    let backend = app.ingest_key(program.as_str()).await;
    let conversion = app
        .post(
            "/conversions",
            &backend,
            &json!({"email": "Jane.Doe@example.com", "value": 12_900, "currency": "EUR", "external_id": "order-1"}),
        )
        .await;
    let body = conversion.ok(201);
    let partners = body["partners"].as_array().expect("partners");
    assert_eq!(partners.len(), 1, "{body}");
    assert_eq!(partners[0]["partner_id"], alice.as_str(), "{body}");
    assert_eq!(partners[0]["amount"], 12_900);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_opt_in_mode_chromium_stores_and_sends_nothing_until_consent() {
    if !browser_available("browser consent scenario") {
        return;
    }
    let app = spawn_app().await;
    let (program, alice, _bob, key) = site_program(&app).await;
    app.patch(
        &format!("/programs/{program}/tracking"),
        &app.admin_key,
        &json!({"consent": "opt_in"}),
    )
    .await
    .ok(200);
    let site = serve_site(&app, &program, &key).await;
    let link = app
        .create_link(&alice, json!({"destination": format!("{site}/landing")}))
        .await;
    let store = app.store.clone();
    let checked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = checked.clone();
    let program_at_checkpoint = program.clone();

    let result = run_browser(
        json!({
            "scenario": "consent",
            "start_url": app.url(&format!("/r/{}", link["code"].as_str().unwrap())),
            "tribute_origin": app.address,
            "email": "visitor@example.com",
            "chromium": CHROMIUM,
        }),
        move |before: Value| {
            let store = store.clone();
            let flag = flag.clone();
            let program = program_at_checkpoint.clone();
            async move {
                assert_eq!(before["step"], "before_consent");
                assert_eq!(before["status"], "waiting", "{before}");
                assert!(
                    before["url"].as_str().unwrap().contains("tid=clk_"),
                    "the visitor came through a partner link: {before}"
                );
                assert_eq!(before["document_cookie"], "", "no cookie: {before}");
                assert_eq!(before["cookies"], json!([]), "no cookie: {before}");
                assert_eq!(
                    before["local_storage"],
                    json!({}),
                    "nothing stored: {before}"
                );
                assert_eq!(before["collected"], json!([]), "nothing sent: {before}");
                let posts: Vec<&Value> = before["seen"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["method"] != "GET")
                    .collect();
                assert!(
                    posts.is_empty(),
                    "only the script and settings were fetched: {before}"
                );
                assert_eq!(
                    store.count_events(&program).await.unwrap(),
                    0,
                    "no event reached Tribute before consent"
                );
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        },
    )
    .await;
    assert!(
        checked.load(std::sync::atomic::Ordering::SeqCst),
        "the before-consent checkpoint was reached"
    );

    // After tribute.consent(true): stored, and what was queued is sent.
    assert_eq!(result["status"], "on");
    let state = tribute_cookie(&result).expect("a _tribute cookie after consent");
    assert_eq!(state["k"], 1, "consent remembered: {state}");
    assert!(state["t"].as_str().is_some_and(|t| t.starts_with("clk_")));
    let events = app.store.count_events(&program).await.unwrap();
    assert_eq!(events, 3, "page view, track and lead arrive after consent");
    app.finish().await;
}
