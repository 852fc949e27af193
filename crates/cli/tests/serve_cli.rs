//! Black-box tests of `tribute serve` at start: a database that refuses
//! writes stops it with a reason before it logs "serving", on SQLite and on
//! PostgreSQL.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tribute_store::testing::TestDb;

/// Run `tribute --database-url URL ARGS…`, killing it after `limit`.
fn tribute(url: &str, args: &[&str], limit: Duration) -> (Output, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tribute"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("TRIBUTE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tribute");
    let deadline = Instant::now() + limit;
    let mut killed = false;
    while child.try_wait().expect("polling tribute").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("reading tribute"), killed)
}

#[track_caller]
fn assert_refused_before_serving(url: &str, case: &str) {
    let (out, killed) = tribute(
        url,
        &["serve", "--listen", "127.0.0.1:0"],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!killed, "{case}: still running after 20 s: {stderr}");
    assert!(
        !out.status.success(),
        "{case}: exited successfully: {stderr}"
    );
    assert!(
        !stderr.contains("serving"),
        "{case}: logged serving: {stderr}"
    );
    assert!(
        stderr.contains("refuses writes") || stderr.contains("read-only"),
        "{case}: no reason given: {stderr}"
    );
}

#[test]
fn a_read_only_sqlite_database_stops_serve_before_it_logs_serving() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let (out, _) = tribute(&url, &["migrate"], Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `mode=ro` opens the (migrated) file read-only, as a read-only mount would.
    assert_refused_before_serving(&format!("{url}?mode=ro"), "SQLite opened read-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgresql_database_stops_serve_before_it_logs_serving() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    db.store.execute_sql("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', \
         current_database()); END $$",
    )
    .await
    .expect("running test SQL");
    let url = db.url.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        assert_refused_before_serving(&url, "PostgreSQL read-only by default");
    })
    .await;
    db.destroy().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
