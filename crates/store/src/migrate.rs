//! Schema migrations: numbered SQL files per backend, applied in order, once.
//!
//! Each file (and its Rust data step, if it has one) runs in its own
//! transaction with its version recorded, so a failed migration leaves
//! nothing half-applied. On PostgreSQL an advisory
//! lock serialises nodes that start together.

use sqlx::{AnyConnection, AnyPool, Executor, Row};
use tribute_core::postback::NewPostbackToken;

use crate::{Backend, BoxFuture};

/// Work a migration does in Rust after its SQL, in the same transaction:
/// rewriting data in a way SQL cannot say on both backends.
type DataStep = for<'c> fn(&'c mut AnyConnection) -> BoxFuture<'c, anyhow::Result<()>>;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
    data: Option<DataStep>,
}

macro_rules! migrations {
    ($dir:literal: $($version:literal => $file:literal $(then $data:path)?),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!("../migrations/", $dir, "/", $file)),
            data: migrations!(@data $($data)?),
        }),*]
    };
    (@data) => { None };
    (@data $data:path) => { Some($data) };
}

const SQLITE: &[Migration] = migrations!("sqlite":
    1 => "0001_foundation.sql",
    2 => "0002_tracking.sql",
    3 => "0003_fits.sql",
    4 => "0004_key_kinds.sql",
    5 => "0005_postback_token_hash.sql" then hash_postback_tokens,
    6 => "0006_conversion_reports.sql",
    7 => "0007_identity_claims.sql",
    8 => "0008_commissions.sql",
    9 => "0009_webhooks.sql",
    10 => "0010_fraud.sql",
);

const POSTGRES: &[Migration] = migrations!("postgres":
    1 => "0001_foundation.sql",
    2 => "0002_tracking.sql",
    3 => "0003_fits.sql",
    4 => "0004_key_kinds.sql",
    5 => "0005_postback_token_hash.sql" then hash_postback_tokens,
    6 => "0006_conversion_reports.sql",
    7 => "0007_identity_claims.sql",
    8 => "0008_commissions.sql",
    9 => "0009_webhooks.sql",
    10 => "0010_fraud.sql",
);

/// Migration 5: replace each postback token still stored in clear (a hash
/// column without a hint) by its hash and hint, so the URLs networks
/// already have keep working.
fn hash_postback_tokens(conn: &mut AnyConnection) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT program_id, postback_token_hash FROM program_tracking \
             WHERE postback_token_hash IS NOT NULL AND postback_token_hint IS NULL",
        )
        .fetch_all(&mut *conn)
        .await?;
        for (program_id, token) in rows {
            let stored = NewPostbackToken::from_token(token);
            sqlx::query(
                "UPDATE program_tracking SET postback_token_hash = $1, postback_token_hint = $2 \
                 WHERE program_id = $3",
            )
            .bind(stored.hash)
            .bind(stored.hint)
            .bind(program_id)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    })
}

/// The newest schema version this build knows.
pub(crate) fn latest(backend: Backend) -> i64 {
    let all = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    all.iter().map(|m| m.version).max().unwrap_or(0)
}

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
        if let Some(data) = m.data {
            data(&mut tx)
                .await
                .map_err(|e| anyhow::anyhow!("migration {} (data step) failed: {e}", m.name))?;
        }
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
