//! What a newcomer meets first: settings read like every other setting, a
//! database that is down named as such, a demo that checks its port before
//! seeding and keeps its keys between runs, and logs without colour codes
//! when they do not go to a terminal.

mod common;

use std::time::{Duration, Instant};

use common::{closed_port, tribute, Running, Stream};
use tribute_core::apikey::{KeyKind, Scope};
use tribute_store::Store;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// --- settings ----------------------------------------------------------------------

#[test]
fn worker_threads_is_a_flag_and_an_environment_setting_like_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let help = tribute(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(
        help.contains("--worker-threads") && help.contains("TRIBUTE_WORKER_THREADS"),
        "{help}"
    );

    for bad in ["abc", "0", "-1"] {
        let out = tribute(dir.path())
            .args(["migrate", "--database-url", "sqlite://refused.db"])
            .env("TRIBUTE_WORKER_THREADS", bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} accepted");
        assert!(
            stderr(&out).contains("--worker-threads"),
            "{bad}: the error names the setting: {}",
            stderr(&out)
        );
    }
    assert!(
        !dir.path().join("refused.db").exists(),
        "a refused setting touches no database"
    );

    for (how, args, env) in [
        ("the variable", vec![], Some("2")),
        ("the flag", vec!["--worker-threads", "2"], None),
    ] {
        let mut cmd = tribute(dir.path());
        cmd.args(["migrate", "--database-url", "sqlite://ok.db"])
            .args(args);
        if let Some(v) = env {
            cmd.env("TRIBUTE_WORKER_THREADS", v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{how}: {}", stderr(&out));
    }
}

// --- an unreachable database -------------------------------------------------------

#[test]
fn an_unreachable_postgres_says_connection_refused_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{}/tribute", closed_port());
    let started = Instant::now();
    let out = tribute(dir.path())
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("connection refused"),
        "the real cause is named: {}",
        stderr(&out)
    );
    // A failure bound, not a measurement: the pool used to wait 30 s.
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: {}",
        stderr(&out)
    );
}

// --- demo ------------------------------------------------------------------------

#[test]
fn demo_on_a_taken_port_suggests_listen_and_seeds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = tribute(dir.path())
        .args(["demo", "--listen", &addr.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&addr.to_string()), "{err}");
    assert!(err.contains("--listen"), "suggests --listen: {err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("/r/"),
        "no URLs printed"
    );
    assert!(
        !dir.path().join("tribute.db").exists(),
        "no database created or seeded"
    );
}

/// The demo's output up to its admin key: (all stdout lines, admin key, partner key).
fn run_demo(dir: &std::path::Path) -> (Vec<String>, String, String) {
    let mut cmd = tribute(dir);
    cmd.args(["demo", "--listen", "127.0.0.1:0"]);
    let mut demo = Running::spawn(cmd);
    demo.wait_for(Stream::Out, |l| l == "  admin key:");
    let admin = demo.wait_for(Stream::Out, |l| !l.is_empty());
    let out: Vec<String> = demo
        .seen(Stream::Out)
        .iter()
        .map(|l| l.to_string())
        .collect();
    let partner = out
        .iter()
        .find_map(|l| l.strip_prefix("  partner key (ada-reviews): "))
        .expect("a partner key line")
        .to_owned();
    (out, admin, partner)
}

#[test]
fn a_second_demo_reuses_its_database_and_keys_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (first, admin, partner) = run_demo(dir.path());
    assert!(admin.starts_with("trb_"), "{first:#?}");
    assert!(
        !first.iter().any(|l| l.contains("Reusing")),
        "the first run seeds: {first:#?}"
    );

    let (second, admin_again, partner_again) = run_demo(dir.path());
    assert!(
        second
            .iter()
            .any(|l| l.contains("Reusing") && l.contains("./tribute.db")),
        "the second run says it reuses ./tribute.db: {second:#?}"
    );
    assert_eq!(admin_again, admin, "the same admin key");
    assert_eq!(partner_again, partner, "the same partner key");

    // Both are kept on the owner's side (the demo prints no publishable key).
    let db = format!("sqlite://{}", dir.path().join("tribute.db").display());
    let kinds = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut kinds = Vec::new();
        for token in [&admin, &partner] {
            let key = store
                .api_key_by_token(token)
                .await
                .unwrap()
                .expect("a live key");
            kinds.push((key.scope, key.kind));
        }
        store.close().await;
        kinds
    });
    assert_eq!(
        kinds,
        [
            (Scope::Admin, KeyKind::Secret),
            (Scope::Partner, KeyKind::Secret)
        ]
    );
}

// --- logs --------------------------------------------------------------------------

#[test]
fn logs_have_no_colour_codes_when_not_written_to_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tribute(dir.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("TRIBUTE_LOG", "info");
    let mut server = Running::spawn(cmd);
    let line = server.wait_for(Stream::Err, |l| l.contains("serving"));
    assert!(line.contains("INFO"), "{line}");
    assert!(
        !line.contains('\u{1b}'),
        "an escape code in a piped log: {line:?}"
    );
}
