//! Black-box tests of `/healthz`, `/readyz` and storage faults: a working
//! database is ready; a schema behind this build is not; a SQLite file
//! deleted under the server answers 503 and is never recreated empty; a
//! click dropped after its 302 is counted in `/metrics` and `/readyz`.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tribute_store::Backend;

use common::{spawn_app, Reply, TestApp};

on_both_backends!(
    healthz_and_readyz_answer_200_on_a_working_database,
    readyz_answers_503_naming_a_schema_behind_this_build,
    a_click_dropped_on_a_storage_fault_is_counted_in_metrics_and_readyz,
);

async fn get(app: &TestApp, path: &str, key: Option<&str>) -> Reply {
    let mut request = app.client.get(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    Reply::read(request.send().await.expect("sending a request")).await
}

async fn healthz_and_readyz_answer_200_on_a_working_database(app: TestApp) {
    assert_eq!(get(&app, "/healthz", None).await.ok(200)["status"], "ok");
    let ready = get(&app, "/readyz", None).await;
    assert_eq!(ready.ok(200)["status"], "ready", "{}", ready.text);
    assert_eq!(ready.body["clicks_dropped"], 0);
}

async fn readyz_answers_503_naming_a_schema_behind_this_build(app: TestApp) {
    app.store.execute_sql("DELETE FROM tribute_migrations WHERE version = (SELECT MAX(version) FROM tribute_migrations)",
    )
    .await
    .expect("running test SQL");
    let ready = get(&app, "/readyz", None).await;
    ready.assert_error(503, None, "a schema behind this build");
    let problems = ready.body["problems"].to_string();
    assert!(problems.contains("tribute migrate"), "{problems}");
    // Alive all the same: a balancer must not restart it for this.
    get(&app, "/healthz", None).await.ok(200);
}

/// Make click writes fail: the SQLite file deleted, the PostgreSQL table renamed.
async fn break_click_storage(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => remove_database_files(app),
        Backend::Postgres => app
            .store
            .execute_sql("ALTER TABLE clicks RENAME TO clicks_away")
            .await
            .expect("running test SQL"),
    }
}

fn remove_database_files(app: &TestApp) {
    let path = app.store.sqlite_file().expect("a SQLite file").to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

async fn a_click_dropped_on_a_storage_fault_is_counted_in_metrics_and_readyz(app: TestApp) {
    let seed = app.seed().await;
    let link = app.create_link(&seed.alice.id, json!({})).await;
    let code = link["code"].as_str().unwrap().to_owned();
    // The link and the admin key are cached by now, so the redirect and
    // /metrics still answer once the storage fails.
    app.click_link(&code).await;
    get(&app, "/metrics", Some(&app.admin_key)).await.ok(200);
    break_click_storage(&app).await;

    app.visit(&format!("/r/{code}")).await.ok(302);
    // The writer retries a failing database for about ten seconds before
    // it gives a batch up (at once when the SQLite file is gone).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = get(&app, "/metrics", Some(&app.admin_key)).await;
        if metrics.text.contains("tribute_clicks_dropped_total 1\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dropped click counted: {}",
            metrics.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = get(&app, "/readyz", None).await;
    ready.assert_error(503, None, "clicks were dropped");
    assert_eq!(ready.body["clicks_dropped"], 1, "{}", ready.text);
    assert!(
        ready.body["problems"]
            .to_string()
            .contains("clicks were dropped"),
        "{}",
        ready.text
    );
    get(&app, "/healthz", None).await.ok(200);
}

#[tokio::test]
async fn a_deleted_sqlite_file_answers_503_and_is_never_recreated_empty() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let path = app.store.sqlite_file().expect("a SQLite file").to_owned();
    remove_database_files(&app);

    let programs = app.get("/programs", &app.admin_key).await;
    programs.assert_error(503, None, "reading after the file was deleted");
    let event = json!({"type": "page_view", "anonymous_id": "a1", "program_id": seed.program_id});
    app.post("/events", &app.admin_key, &event)
        .await
        .assert_error(503, None, "an event after the file was deleted");
    let conversion = json!({"program_id": seed.program_id, "external_id": "o-1", "value": 100, "currency": "EUR"});
    app.post("/conversions", &app.admin_key, &conversion)
        .await
        .assert_error(503, None, "a conversion after the file was deleted");

    let ready = get(&app, "/readyz", None).await;
    ready.assert_error(503, None, "readiness after the file was deleted");
    assert!(
        ready.body["problems"]
            .to_string()
            .contains("deleted or replaced"),
        "{}",
        ready.text
    );
    get(&app, "/healthz", None).await.ok(200);
    assert!(
        !path.exists(),
        "an empty database was created in place of the deleted one"
    );
    app.finish().await;
}
