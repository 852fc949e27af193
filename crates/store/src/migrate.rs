//! Schema migrations: numbered SQL files per backend, applied in order, once.
//!
//! Each file runs in its own transaction with its version recorded, so a
//! failed migration leaves nothing half-applied. On PostgreSQL an advisory
//! lock serialises nodes that start together.

use sqlx::{AnyPool, Executor, Row};

use crate::Backend;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

macro_rules! migrations {
    ($dir:literal: $($version:literal => $file:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!("../migrations/", $dir, "/", $file)),
        }),*]
    };
}

const SQLITE: &[Migration] = migrations!("sqlite":
    1 => "0001_foundation.sql",
    2 => "0002_tracking.sql",
    3 => "0003_fits.sql",
    4 => "0004_key_kinds.sql",
    6 => "0006_conversion_reports.sql",
);

const POSTGRES: &[Migration] = migrations!("postgres":
    1 => "0001_foundation.sql",
    2 => "0002_tracking.sql",
    3 => "0003_fits.sql",
    4 => "0004_key_kinds.sql",
    6 => "0006_conversion_reports.sql",
);

/// An arbitrary constant naming Tribute's migration lock.
const PG_LOCK_KEY: i64 = 0x0074_7269_6275_7465;

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> anyhow::Result<Vec<String>> {
    run_until(pool, backend, i64::MAX).await
}

/// Apply the migrations not yet applied whose version is at most `last`.
pub(crate) async fn run_until(
    pool: &AnyPool,
    backend: Backend,
    last: i64,
) -> anyhow::Result<Vec<String>> {
    // The lock is held by one pooled connection while the migrations run on
    // others: it is a session lock, so it excludes other nodes all the same.
    let mut lock = pool.acquire().await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *lock)
            .await?;
    }
    let result = apply(pool, backend, last).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *lock)
            .await?;
    }
    result
}

async fn apply(pool: &AnyPool, backend: Backend, last: i64) -> anyhow::Result<Vec<String>> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS tribute_migrations (
            version    BIGINT PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    let done: Vec<i64> = sqlx::query("SELECT version FROM tribute_migrations")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect();
    let all = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let mut applied = Vec::new();
    for m in all
        .iter()
        .filter(|m| m.version <= last && !done.contains(&m.version))
    {
        let mut tx = pool.begin().await?;
        // Through the `Executor` method rather than `RawSql::execute`, whose
        // generic async fn trips rust-lang/rust#102211 (a spurious non-Send).
        (&mut *tx)
            .execute(sqlx::raw_sql(m.sql))
            .await
            .map_err(|e| anyhow::anyhow!("migration {} failed: {e}", m.name))?;
        sqlx::query(
            "INSERT INTO tribute_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        applied.push(m.name.to_owned());
    }
    Ok(applied)
}
