//! Black-box tests of `tribute key create` on a fresh SQLite file.

use std::process::{Command, Output};

fn key_create(database: &str, name: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tribute"))
        .args([
            "--database-url",
            database,
            "key",
            "create",
            "--scope",
            "admin",
        ])
        .args(["--name", name])
        .output()
        .expect("running tribute")
}

#[test]
fn a_key_name_with_bidi_or_control_characters_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    for (case, name) in [
        ("a right-to-left override", "deploy\u{202e}yolped"),
        ("an escape sequence", "deploy\u{1b}[2J"),
        ("a newline", "deploy\nkey"),
    ] {
        let out = key_create(&database, name);
        assert!(!out.status.success(), "{case}: accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--name"), "{case}: {stderr}");
        assert!(out.stdout.is_empty(), "{case}: printed a key");
    }
    let out = key_create(&database, "deploy key");
    assert!(
        out.status.success(),
        "a plain name: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin key"));
}
