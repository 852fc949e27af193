//! The OpenAPI document as a contract: schemathesis (from PyPI, pinned in
//! `tests/schemathesis/requirements.txt`) fuzzes a running Tribute from
//! `/api/openapi.json` with every check, once with an admin key and once
//! with a partner key, with a fixed seed and a bounded number of cases.
//!
//! It must find no 5xx, no response that breaks the document (status,
//! schema, content type, headers), no schema-valid request refused and no
//! schema-invalid request accepted. What a document cannot know (which ids
//! exist, what time it is) comes from `tests/schemathesis/hooks.py`, which
//! swaps the seeded records into schema-valid cases.
//!
//! Without schemathesis the tests print `SKIPPED: …` and pass, except under
//! CI (`CI=true` or `CI=1`), where they fail.

#[allow(unused_macros)]
mod common;
#[path = "hooks/mod.rs"]
mod hooks;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tribute_core::ids::{PartnerId, ProgramId};

use common::{spawn_app, str_of, TestApp};

/// Cases per operation and phase: enough to reach every rule of the
/// document, few enough that both runs take a minute or two.
const MAX_EXAMPLES: &str = "30";
/// A fixed seed: the same cases every run, so a failure reproduces.
const SEED: &str = "20260131";
/// Longest one run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn schemathesis_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis")
}

/// Schemathesis's command line (`st`), run by the `python3` that pip
/// installed it for, so no script directory needs to be on `PATH`.
const ST: &str = "import sys; from schemathesis.cli import schemathesis; \
                  sys.argv[0] = 'st'; sys.exit(schemathesis())";

/// Whether `python3` can import schemathesis; if not, skip (outside CI) or
/// fail (under CI).
fn schemathesis_available(test: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import schemathesis.cli"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        tribute_store::testing::skip(
            test,
            "schemathesis is not installed (python3 -m pip install -r \
             crates/server/tests/schemathesis/requirements.txt)",
        );
    }
    ok
}

/// Show the server's warnings and errors (the cause of a 500) with a
/// failing run's output.
fn log_server_warnings() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
}

/// Records the hooks swap into schema-valid cases, and the key to test
/// with: the admin key, or the partner key of the partner the run acts as.
async fn fixture(app: &TestApp, as_partner: bool) -> (String, Value) {
    let seed = app.seed().await;
    let program = &seed.program_id;
    // Changed at will by the run, so the records referenced below stay put.
    let other_program = app.create_program("Patchable").await;
    let carol = app.create_partner(program, "carol").await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let coupon = app
        .post(
            "/coupons",
            &app.admin_key,
            &json!({"partner_id": seed.alice.id, "code": "ALICE10"}),
        )
        .await
        .ok(201)
        .clone();
    // A webhook endpoint with a public URL (its attempts fail: the name
    // does not resolve here), made before the conversion and the payout
    // so its delivery log has messages; the run may change it.
    let endpoint = app
        .post(
            "/webhook-endpoints",
            &app.admin_key,
            &json!({"program_id": program, "url": "https://hooks.example.com/tribute",
                    "events": ["conversion.created", "payout.paid", "partner.created"]}),
        )
        .await
        .ok(201)
        .clone();
    // A generic integration with a valid mapping and one delivery in its
    // log, sent to its hook signed as its mapping says.
    let integration = app
        .post(
            "/integrations",
            &app.admin_key,
            &json!({"program_id": program, "kind": "generic",
                    "secret": "schemathesis-signing-secret",
                    "mapping": {"external_id": "/id", "value": "/amount",
                                "currency": "/currency", "email": "/email"}}),
        )
        .await
        .ok(201)
        .clone();
    let currency = str_of(&seed.program, "currency");
    let inbound = inbound_delivery(app, str_of(&integration, "id"), currency).await;
    // Credited to alice through her coupon, so her key may read it too.
    let conversion = app
        .post(
            "/conversions",
            &app.admin_key,
            &json!({"program_id": program, "external_id": "o-1", "value": 4200,
                    "currency": "EUR", "coupon": "ALICE10"}),
        )
        .await
        .ok(201)
        .clone();
    // A batch paying alice, who has a payout e-mail, so every format exports.
    app.patch(
        &format!("/partners/{}", seed.alice.id),
        &app.admin_key,
        &json!({"payout_email": "alice@payouts.example.com"}),
    )
    .await
    .ok(200);
    app.store
        .adjust_partner(
            &ProgramId::parse(program).expect("a program id"),
            &PartnerId::parse(&seed.alice.id).expect("a partner id"),
            5000,
            "schemathesis fixture",
            chrono::Utc::now(),
        )
        .await
        .expect("crediting alice");
    let payout = app
        .post("/payouts", &app.admin_key, &json!({"program_id": program}))
        .await
        .ok(201)
        .clone();
    let webhook_delivery = app
        .get(
            &format!("/webhook-endpoints/{}/deliveries", str_of(&endpoint, "id")),
            &app.admin_key,
        )
        .await
        .ok(200)["data"][0]["id"]
        .as_str()
        .expect("the endpoint's first delivery")
        .to_owned();
    let key = if as_partner {
        seed.alice.key.clone()
    } else {
        app.admin_key.clone()
    };
    let fixture = json!({
        "admin": !as_partner,
        "program_id": program,
        "currency": str_of(&seed.program, "currency"),
        "partner_id": seed.alice.id,
        "partner_slug": seed.alice.slug,
        "team_lead_id": seed.bob.id,
        "patchable_program_id": str_of(&other_program, "id"),
        "patchable_partner_id": if as_partner { seed.alice.id.clone() } else { str_of(&carol, "id").to_owned() },
        "link_id": str_of(&link, "id"),
        "coupon_id": str_of(&coupon, "id"),
        "conversion_id": str_of(&conversion, "id"),
        "payout_id": str_of(&payout, "id"),
        "webhook_endpoint_id": str_of(&endpoint, "id"),
        "webhook_delivery_id": webhook_delivery,
        "integration_id": str_of(&integration, "id"),
        "inbound_delivery_id": inbound,
    });
    (key, fixture)
}

/// Send one signed delivery to the generic integration `id` (its mapping
/// is the fixture's: an HMAC-SHA256 of the body in `x-signature`), and
/// return its id in the integration's log.
async fn inbound_delivery(app: &TestApp, id: &str, currency: &str) -> String {
    let body = json!({"id": "hook-order-1", "amount": 1500, "currency": currency,
                      "email": "hook@example.com"})
    .to_string();
    let mac = hooks::hmac_sha256(b"schemathesis-signing-secret", &[body.as_bytes()]);
    let signature = [("x-signature".to_owned(), hex::encode(mac))];
    let path = format!("/hooks/generic/{id}");
    let answer = hooks::deliver(app, &path, &body, &signature).await;
    str_of(answer.ok(200), "delivery_id").to_owned()
}

/// Run schemathesis against `app` with `key`; panic with its report unless
/// it passes.
async fn schemathesis(app: &TestApp, key: &str, fixture: &Value, who: &str) {
    let workdir = tempfile::tempdir().expect("a scratch directory");
    let mut command = tokio::process::Command::new("python3");
    command
        .args(["-c", ST])
        .arg("--config-file")
        .arg(schemathesis_dir().join("schemathesis.toml"))
        .arg("run")
        .arg(app.url("/api/openapi.json"))
        .args(["--url", &app.address])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "all"])
        .args(["--seed", SEED])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "30"])
        .args(["--workers", "1"])
        .arg("--no-color")
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", schemathesis_dir())
        .env("TRIBUTE_ST_FIXTURE", fixture.to_string())
        // Reports and caches go to a directory that is thrown away.
        .current_dir(workdir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ({who}) did not finish within {RUN_TIMEOUT:?}"))
        .expect("running schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis with {who} found contract violations ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation_with_an_admin_key() {
    if !schemathesis_available("schemathesis_finds_no_contract_violation_with_an_admin_key") {
        return;
    }
    log_server_warnings();
    let app = spawn_app().await;
    let (key, fixture) = fixture(&app, false).await;
    schemathesis(&app, &key, &fixture, "an admin key").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation_with_a_partner_key() {
    if !schemathesis_available("schemathesis_finds_no_contract_violation_with_a_partner_key") {
        return;
    }
    log_server_warnings();
    let app = spawn_app().await;
    let (key, fixture) = fixture(&app, true).await;
    schemathesis(&app, &key, &fixture, "a partner key").await;
    app.finish().await;
}
