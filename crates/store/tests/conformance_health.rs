//! Storage conformance for readiness: a migrated, writable database is
//! ready; one behind this build's schema is not, and says why; a SQLite
//! file deleted under the store makes it unavailable, and is never
//! silently recreated empty.

mod common;

use tribute_store::{Backend, Store};

use common::*;

conformance!(
    a_migrated_writable_database_is_ready,
    a_database_behind_this_builds_schema_is_not_ready_and_says_so,
    a_deleted_sqlite_file_makes_the_store_unavailable_and_is_never_recreated,
);

async fn a_migrated_writable_database_is_ready(store: Store) {
    assert_eq!(store.readiness().await, Vec::<String>::new());
    assert!(store.intact().is_ok());
}

async fn a_database_behind_this_builds_schema_is_not_ready_and_says_so(store: Store) {
    store.execute_sql("DELETE FROM tribute_migrations WHERE version = (SELECT MAX(version) FROM tribute_migrations)",
    )
    .await
    .expect("running test SQL");
    let problems = store.readiness().await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("tribute migrate"), "{problems:?}");
}

async fn a_deleted_sqlite_file_makes_the_store_unavailable_and_is_never_recreated(store: Store) {
    if store.backend() != Backend::Sqlite {
        // PostgreSQL has no file to lose; its outages are the server's errors.
        return;
    }
    let p = program("Acme");
    store.insert_program(&p).await.expect("inserting a program");
    let path = store.sqlite_file().expect("a SQLite store has a file");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let err = store.intact().expect_err("the file is gone");
    assert!(err.is_unavailable(), "{err:?}");
    let problems = store.readiness().await;
    assert!(
        problems.iter().any(|p| p.contains("deleted or replaced")),
        "{problems:?}"
    );
    // Reads and writes through the pool fail as unavailable rather than
    // reaching an empty database created in the file's place.
    let err = store
        .insert_program(&program("Other"))
        .await
        .expect_err("writing to a deleted database");
    assert!(err.is_unavailable(), "{err:?}");
    let err = store
        .program(&p.id)
        .await
        .expect_err("reading a deleted database");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(!path.exists(), "the database file was recreated");
}
