//! Black-box tests of `tribute payouts create|export|mark-paid` on a
//! SQLite file: a batch made, exported to standard output and to files (in
//! parts past Wise's 1,000 rows), marked paid once; errors naming the argument.

use std::path::Path;
use std::process::{Command, Output};

use chrono::Utc;
use tribute_core::attribution::ModelKind;
use tribute_core::ids::{PartnerId, ProgramId};
use tribute_core::money::Currency;
use tribute_core::partner::{Email, Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
use tribute_store::Store;

fn tribute(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tribute"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .arg("payouts")
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

/// The error of a command that must fail.
fn stderr(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A migrated database at `db` with a program and `n` partners
/// (`p0001`…), each owed `100 + i` minor units.
async fn with_partners(db: &Path, n: usize) -> (Store, ProgramId) {
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let now = Utc::now();
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
        created_at: now,
    };
    store.insert_program(&program).await.unwrap();
    for i in 1..=n {
        let slug = format!("p{i:04}");
        let partner = Partner {
            id: PartnerId::generate(),
            program_id: program.id.clone(),
            slug: Slug::parse(&slug).unwrap(),
            name: slug.to_uppercase(),
            email: Some(Email::parse(&format!("{slug}@example.com")).unwrap()),
            payout_email: None,
            status: PartnerStatus::Active,
            tier: None,
            group: None,
            team_lead_id: None,
            created_at: now,
        };
        store.insert_partner(&partner).await.unwrap();
        store
            .adjust_partner(&program.id, &partner.id, 100 + i as i64, "owed", now)
            .await
            .unwrap();
    }
    (store, program.id)
}

#[test]
fn bad_arguments_name_the_argument_and_leave_no_database_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tribute.db");
    for (args, named) in [
        (&["create", "--program", "ptn_x"][..], "--program"),
        (
            &["create", "--program", "prg_x", "--until", "soon"],
            "--until",
        ),
        (
            &["create", "--program", "prg_x", "--min-amount", "-5"],
            "--min-amount",
        ),
        (&["export", "prg_x", "--format", "csv"], "ID"),
        (&["export", "pay_x", "--format", "xls"], "--format"),
        (
            &["export", "pay_x", "--format", "csv", "--part", "0"],
            "--part",
        ),
        (&["mark-paid", "nope"], "ID"),
    ] {
        let err = stderr(&tribute(&db, args));
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(!db.exists(), "{args:?} left a database behind");
    }
}

#[tokio::test]
async fn a_batch_is_created_exported_and_marked_paid_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tribute.db");
    let (store, program) = with_partners(&db, 3).await;

    let high = stderr(&tribute(
        &db,
        &[
            "create",
            "--program",
            program.as_str(),
            "--min-amount",
            "500",
        ],
    ));
    assert!(high.contains("--min-amount"), "{high}");
    let created = stdout(&tribute(
        &db,
        &[
            "create",
            "--program",
            program.as_str(),
            "--min-amount",
            "102",
        ],
    ));
    let id = created.lines().last().unwrap().to_owned();
    assert!(id.starts_with("pay_"), "{created}");
    assert!(
        created.contains("2 partner(s), 205 minor units of EUR"),
        "{created}"
    );

    let paypal = stdout(&tribute(&db, &["export", &id, "--format", "paypal"]));
    let lines: Vec<&str> = paypal.lines().collect();
    assert_eq!(lines.len(), 2, "{paypal}");
    assert!(
        lines[0].starts_with("p0002@example.com,1.02,EUR,ptn_"),
        "{paypal}"
    );
    let out = dir.path().join("batch.csv");
    let written = tribute(
        &db,
        &[
            "export",
            &id,
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    stdout(&written);
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(file.starts_with("partner_id,name,email,amount"), "{file}");
    assert_eq!(file.lines().count(), 3);

    assert!(stdout(&tribute(&db, &["mark-paid", &id])).starts_with("paid payout"));
    let again = stdout(&tribute(&db, &["mark-paid", &id]));
    assert!(again.contains("already paid"), "{again}");
    let balances = store.account_balances(&program).await.unwrap();
    assert_eq!(balances.values().sum::<i64>(), 0, "the books balance");
    let unknown = stderr(&tribute(&db, &["mark-paid", "pay_doesnotexist"]));
    assert!(unknown.contains("no payout"), "{unknown}");
    let nothing = stderr(&tribute(
        &db,
        &[
            "create",
            "--program",
            program.as_str(),
            "--min-amount",
            "102",
        ],
    ));
    assert!(
        nothing.contains("--min-amount"),
        "p0001's 101 is below 102: {nothing}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_wise_batch_past_a_thousand_rows_is_written_in_numbered_parts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tribute.db");
    let (store, program) = with_partners(&db, 1001).await;
    store.close().await;
    let id = stdout(&tribute(&db, &["create", "--program", program.as_str()]))
        .lines()
        .last()
        .unwrap()
        .to_owned();

    let to_stdout = stderr(&tribute(&db, &["export", &id, "--format", "wise"]));
    assert!(to_stdout.contains("--out"), "{to_stdout}");
    let out = dir.path().join("wise.csv");
    let out_arg = out.to_str().unwrap();
    stdout(&tribute(
        &db,
        &["export", &id, "--format", "wise", "--out", out_arg],
    ));
    let rows = |name: &str| {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        (rows("wise-1.csv"), rows("wise-2.csv")),
        (1001, 2),
        "header and rows"
    );
    let second = stdout(&tribute(
        &db,
        &["export", &id, "--format", "wise", "--part", "2"],
    ));
    assert!(
        second
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("P1001,p1001@example.com"),
        "{second}"
    );
    let past = stderr(&tribute(
        &db,
        &["export", &id, "--format", "wise", "--part", "3"],
    ));
    assert!(past.contains("--part"), "{past}");
}
