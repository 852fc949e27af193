//! What tests need and production must not see (feature `test-support`):
//! fresh databases (a SQLite file, or a new PostgreSQL database on the local
//! server, dropped afterwards) and reads only tests make (`inspect.rs`).
//!
//! Without PostgreSQL a test run skips the PostgreSQL half with a visible
//! message; under CI (`CI=true` or `CI=1`) a missing PostgreSQL is a
//! failure. [`skip`] is that rule for every real client the tests use
//! (PostgreSQL, Chromium, the Segment Python client, schemathesis).

mod inspect;

use std::future::Future;
use std::path::PathBuf;

use sqlx::Executor;

use crate::{Backend, Store};

/// Where the test PostgreSQL server is: an admin URL on a database that exists.
pub fn postgres_admin_url() -> String {
    std::env::var("TRIBUTE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether this run is CI: `CI=true` or `CI=1` (services set either). Under
/// CI a test that needs a real client or database and cannot find it fails;
/// elsewhere it is skipped with a visible line ([`skip`]).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        v == "1" || v.eq_ignore_ascii_case("true")
    })
}

/// The running test's name: the harness names each test's thread after it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("a test")
        .to_owned()
}

/// `test` cannot run because `why` (say how to install what is missing).
/// Under CI that is a failure (a panic). Elsewhere it prints
/// `SKIPPED: test: why` straight to the process's stderr: the test harness
/// captures `eprintln!` of passing tests, and a skip must show in a plain
/// `cargo test` run.
pub fn skip(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (CI is set, so this is a failure, not a skip)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {why}");
}

/// A migrated store on a database made for one test.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database { admin_url: String, name: String },
}

fn random_suffix() -> String {
    tribute_core::ids::random_base62(12).to_ascii_lowercase()
}

impl TestDb {
    /// A fresh SQLite file in the temp directory.
    pub async fn sqlite() -> Self {
        Self::sqlite_migrated(true).await
    }

    async fn sqlite_migrated(migrate: bool) -> Self {
        let path = std::env::temp_dir().join(format!("tribute-test-{}.db", random_suffix()));
        let url = format!("sqlite://{}", path.display());
        let store = open(&url, migrate).await;
        Self {
            store,
            url,
            cleanup: Cleanup::File(path),
        }
    }

    /// A fresh SQLite file at `path` (e.g. on a small file system a test
    /// fills up). The file is deleted by [`TestDb::destroy`].
    pub async fn sqlite_at(path: PathBuf) -> Self {
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url).await.expect("opening test sqlite");
        Self {
            store,
            url,
            cleanup: Cleanup::File(path),
        }
    }

    /// A storage fault on PostgreSQL: every other connection to this
    /// database is terminated by the server, as a restart or a failover
    /// would. (No-op on SQLite.)
    pub async fn kill_connections(&self) {
        if let Cleanup::Database { admin_url, name } = &self.cleanup {
            let admin = Store::connect(admin_url)
                .await
                .expect("connecting as admin");
            admin
                .pool()
                .execute(
                    format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    )
                    .as_str(),
                )
                .await
                .expect("terminating connections");
            admin.close().await;
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a message) when there is
    /// no server and this is not CI.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_migrated(true).await
    }

    async fn postgres_migrated(migrate: bool) -> Option<Self> {
        let admin_url = postgres_admin_url();
        let name = format!("tribute_test_{}", random_suffix());
        let admin = match Store::connect(&admin_url).await {
            Ok(s) => s,
            Err(e) => {
                skip(
                    &format!("{} on PostgreSQL", current_test()),
                    &format!("no server at {admin_url}: {e}"),
                );
                return None;
            }
        };
        admin
            .pool()
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("creating test database");
        admin.close().await;
        let url = database_url(&admin_url, &name);
        let store = open(&url, migrate).await;
        Some(Self {
            store,
            url,
            cleanup: Cleanup::Database { admin_url, name },
        })
    }

    /// A fresh database of the given backend (`None`: PostgreSQL unavailable outside CI).
    pub async fn of(backend: Backend) -> Option<Self> {
        Self::of_migrated(backend, true).await
    }

    async fn of_migrated(backend: Backend, migrate: bool) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite_migrated(migrate).await),
            Backend::Postgres => Self::postgres_migrated(migrate).await,
        }
    }

    /// Close and delete the database.
    pub async fn destroy(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::Database { admin_url, name } => {
                if let Ok(admin) = Store::connect(&admin_url).await {
                    let _ = admin
                        .pool()
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    admin.close().await;
                }
            }
        }
    }
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    format!("{base}/{name}{query}")
}

async fn open(url: &str, migrate: bool) -> Store {
    let store = Store::connect(url).await.expect("opening test database");
    if migrate {
        store.migrate().await.expect("migrating test database");
    }
    store
}

impl Store {
    /// Apply the migrations up to `version` only: to write rows as an older
    /// version did, then see what the later migrations make of them.
    pub async fn migrate_until(&self, version: i64) -> anyhow::Result<Vec<String>> {
        crate::migrate::run_until(self.pool(), self.backend(), version).await
    }

    /// Run SQL as it is (rows written as an older version wrote them).
    pub async fn execute_sql(&self, sql: &str) -> crate::Result<()> {
        use crate::Context;
        self.pool().execute(sql).await.context("running test SQL")?;
        Ok(())
    }
}

/// Run `test` on a fresh database of `backend`, then drop the database even
/// if the test panicked (the panic is passed on).
pub async fn run_on<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_on_migrated(backend, true, test).await
}

/// [`run_on`] on a database with no schema yet: the test migrates it
/// (see [`Store::migrate_until`]).
pub async fn run_on_unmigrated<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_on_migrated(backend, false, test).await
}

async fn run_on_migrated<F, Fut>(backend: Backend, migrate: bool, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::of_migrated(backend, migrate).await else {
        return;
    };
    let outcome = tokio::spawn(test(db.store.clone())).await;
    db.destroy().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_the_database_and_keeps_options() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            database_url("postgres://u@h/db?sslmode=disable", "t1"),
            "postgres://u@h/t1?sslmode=disable"
        );
        assert_eq!(database_url("postgres://u@h", "t1"), "postgres://u@h/t1");
    }
}
