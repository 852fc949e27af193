//! Black-box tests of `tribute key create|list|revoke` on a SQLite file.

use std::path::Path;
use std::process::{Command, Output};

use chrono::Utc;
use tribute_core::apikey::{KeyKind, Principal, PUBLISHABLE_PREFIX};
use tribute_core::attribution::ModelKind;
use tribute_core::ids::ProgramId;
use tribute_core::money::Currency;
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
use tribute_store::Store;

fn tribute(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tribute"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .arg("key")
        .args(args)
        .env_remove("TRIBUTE_DATABASE_URL")
        .output()
        .expect("running tribute")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tribute failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The token `key create` printed: its last line.
fn token(out: &Output) -> String {
    stdout(out).lines().last().unwrap().to_owned()
}

#[test]
fn key_create_with_bad_arguments_leaves_no_database_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tribute.db");
    for args in [
        &["create", "--scope", "partner"][..],
        &["create", "--scope", "partner", "--partner", "Not A Slug"],
        &["create", "--scope", "admin", "--partner", "jane"],
        &["create", "--scope", "admin", "--program", "prg_abc"],
        &["create", "--scope", "ingest", "--program", "acme"],
        &["create", "--scope", "ingest", "--name", " "],
        &[
            "create",
            "--scope",
            "admin",
            "--name",
            "deploy\u{202e}yolped",
        ],
        &["create", "--scope", "admin", "--name", "deploy\u{1b}[2J"],
        &["create", "--scope", "admin", "--name", "deploy\nkey"],
        &["create", "--scope", "wizard"],
        &["revoke", "not-a-key-id"],
    ] {
        let out = tribute(&db, args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            !String::from_utf8_lossy(&out.stderr).trim().is_empty(),
            "{args:?} failed without saying why"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind");
    }
}

/// A migrated database at `db` with one program; returns the store and the program.
async fn with_program(db: &Path) -> (Store, ProgramId) {
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let program = Program {
        id: ProgramId::generate(),
        settings: ProgramSettings {
            name: "Acme".into(),
            currency: Currency::parse("EUR").unwrap(),
            allowed_domains: vec![AllowedDomain::parse("acme.test").unwrap()],
            default_model: ModelKind::LastTouch,
            window_days: 30,
            cookie_days: 90,
            hold_days: 30,
        },
        created_at: Utc::now(),
    };
    store.insert_program(&program).await.unwrap();
    (store, program.id)
}

#[tokio::test]
async fn an_ingest_key_is_publishable_unless_created_with_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tribute.db");
    let (store, program) = with_program(&db).await;

    let public = token(&tribute(&db, &["create", "--scope", "ingest"]));
    assert!(public.starts_with(PUBLISHABLE_PREFIX), "{public}");
    let secret = token(&tribute(&db, &["create", "--scope", "ingest", "--secret"]));
    assert!(!secret.starts_with(PUBLISHABLE_PREFIX), "{secret}");

    let principal = |token: String| {
        let store = store.clone();
        async move {
            store
                .api_key_by_token(&token)
                .await
                .unwrap()
                .and_then(|k| k.principal())
                .unwrap()
        }
    };
    assert_eq!(
        principal(public).await,
        Principal::Ingest {
            program_id: Some(program.clone()),
            kind: KeyKind::Publishable
        }
    );
    assert_eq!(
        principal(secret).await,
        Principal::Ingest {
            program_id: Some(program),
            kind: KeyKind::Secret
        }
    );
    store.close().await;
}

#[tokio::test]
async fn keys_are_listed_without_their_secrets_and_revoked_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tribute.db");
    let (store, program) = with_program(&db).await;
    let created = tribute(&db, &["create", "--scope", "ingest", "--name", "shop"]);
    let id = stdout(&created)
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .expect("the key id is printed")
        .to_owned();
    let public = token(&created);
    let admin = token(&tribute(&db, &["create", "--scope", "admin"]));

    let list = stdout(&tribute(&db, &["list"]));
    assert!(!list.contains(&public) && !list.contains(&admin), "{list}");
    let line = list.lines().find(|l| l.starts_with(&id)).expect(&list);
    for field in ["ingest", "publishable", program.as_str(), "shop"] {
        assert!(line.contains(field), "{field} missing from `{line}`");
    }
    assert!(line.trim_end().ends_with('-'), "not revoked yet: {line}");

    assert!(stdout(&tribute(&db, &["revoke", &id])).contains("revoked"));
    assert_eq!(store.api_key_by_token(&public).await.unwrap(), None);
    assert!(store.api_key_by_token(&admin).await.unwrap().is_some());
    let list = stdout(&tribute(&db, &["list"]));
    let line = list.lines().find(|l| l.starts_with(&id)).expect(&list);
    assert!(!line.trim_end().ends_with('-'), "revoked: {line}");

    // Again: nothing changes, and it says so.
    assert!(stdout(&tribute(&db, &["revoke", &id])).contains("already revoked"));
    let unknown = tribute(&db, &["revoke", "key_doesnotexist"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no key"));
    store.close().await;
}
