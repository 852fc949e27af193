//! Tribute's persistence: one [`Store`] over SQLite or PostgreSQL.
//!
//! The backend is chosen once, from the database URL, when the store is
//! opened. Both backends run the same SQL through sqlx's `Any` driver: the
//! schemas are kept to a common dialect (TEXT ids, BIGINT millisecond times,
//! `$n` placeholders, `ON CONFLICT`, `RETURNING`), each backend has its own
//! migrations, and `tests/conformance.rs` runs every behaviour against both,
//! which is what keeps "one behaviour" true rather than hoped for.
//!
//! Rows are read through backend-neutral row structs, each beside the
//! queries that read it, and turned into `tribute_core` values there;
//! nothing outside this crate sees SQL.

mod accrual_jobs;
mod attribution;
mod checkpoint;
mod clicks;
mod commissions;
mod conversions;
mod db;
mod events;
mod fraud;
mod fraud_stats;
mod fx;
mod health;
mod identity;
mod integrations;
mod keys;
mod ledger;
mod links;
mod migrate;
mod outbox;
mod partners;
mod payout_reads;
mod payout_requests;
mod payouts;
mod programs;
mod recompute;
mod record;
mod rules;
mod secrets;
mod settlement;
mod sql;
mod sqlite_batch;
mod statement;
#[cfg(feature = "test-support")]
pub mod testing;
mod tiers;
mod touches;
mod tracking_settings;
mod webhook_endpoints;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};

pub use attribution::{ConversionJourney, StoredFit};
pub use clicks::{MetricsBySource, PartnerMetrics};
pub use conversions::{ConversionFilter, Credit};
pub use events::IngestOutcome;
pub use fraud::{PartnerIdentifiers, ReviewDecision, Screening, StoredDecision, StoredRisk};
pub use fraud_stats::{PartnerStats, ProgramStats};
pub use fx::{FxRateFilter, StoredFxRate};
pub use identity::Journey;
pub use integrations::{InboundStart, InboundStatus, StoredInboundDelivery, StoredIntegration};
pub use ledger::{CommissionFilter, LedgerFilter, StoredCommission, StoredEntry};
pub use links::OwnedFilter;
pub use outbox::{AttemptResult, ClaimedDelivery};
pub use partners::PartnerFilter;
pub use payout_requests::{PayoutRequestFilter, StoredPayoutRequest};
pub use payouts::{PayoutFilter, StoredPayout, StoredPayoutItem};
pub use recompute::{Recompute, RecomputeLine};
pub use record::{Decide, Recorded, Recording};
pub use settlement::{NewRefund, RefundKind, StoredRefund};
pub use statement::{Statement, StatementLine};
pub use tiers::{StoredTier, StoredTierChange};
pub use touches::NewTouch;
pub use tracking_settings::{PostbackTokenHash, ProgramTracking};
pub use webhook_endpoints::{
    EndpointHealth, StoredAttempt, StoredDelivery, StoredEndpoint, StoredNotice,
};

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names: PostgreSQL for `postgres://…` and
    /// `postgresql://…`, SQLite for anything else (`sqlite:…`, a bare path).
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// A failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique constraint refused the write; `field` names the input at fault.
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    /// A value read back from the database no longer parses: a bug or a
    /// hand-edited row, reported rather than papered over.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// SQLite's batch writer (clicks, events) failed.
    #[error("sqlite error while {context}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The blocking thread of SQLite's batch writer failed (it panicked or
    /// the runtime shut down): the batch it held is lost.
    #[error("the batch writer's thread failed while {context}")]
    WriterThread {
        context: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The database cannot be used at all (its file was deleted or replaced).
    #[error("{0}")]
    Unavailable(String),
    /// The transaction a write shared with others (SQLite's group commit
    /// of conversions) failed: each of them sees the one failure.
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
    #[error("database error while {context}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A boxed `Send` future (see `Store::insert_clicks` for why some are boxed).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Attach what was being done to a sqlx error.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Database { context, source })
    }
}

/// Turn a unique violation into a `Conflict` naming `field`; other errors keep their context.
pub(crate) fn on_unique<T>(
    r: std::result::Result<T, sqlx::Error>,
    field: &'static str,
    message: &str,
    context: &'static str,
) -> Result<T> {
    match r {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict {
            field,
            message: message.to_owned(),
        }),
        other => other.context(context),
    }
}

/// A page of a list: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: 50,
            offset: 0,
        }
    }
}

/// How long the first connection at start-up may take before the store
/// gives up and says so (an unreachable host rather than a refused port).
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The persistent store. Cheap to clone: it is a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: the native batch writer for clicks and events.
    sqlite_batch: Option<sqlite_batch::SqliteBatchWriter>,
    /// SQLite only: the file opened, checked before each use (`health.rs`).
    identity: health::SharedIdentity,
    /// SQLite only: the one writer of conversions, committing them in
    /// groups (`record.rs`).
    group_writer: Option<std::sync::Arc<record::GroupWriter>>,
    /// SQLite only: held while any clone of the store lives; the WAL
    /// checkpoint thread stops once it is gone (`checkpoint.rs`).
    _alive: Option<std::sync::Arc<()>>,
}

/// A value read back that no longer parses, reported as corrupt with what it was.
pub(crate) fn corrupt(what: &str) -> impl FnOnce(tribute_core::FieldError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

/// Normalise a database URL: `sqlite://path`, `sqlite:path`, a bare path,
/// or `postgres://…` / `postgresql://…`.
fn normalize_url(url: &str) -> (Backend, String) {
    if Backend::of_url(url) == Backend::Postgres {
        return (Backend::Postgres, url.to_owned());
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let sep = if path.contains('?') { '&' } else { '?' };
    let opts = if path.contains("mode=") {
        ""
    } else {
        "mode=rwc"
    };
    let url = if opts.is_empty() {
        format!("sqlite://{path}")
    } else {
        format!("sqlite://{path}{sep}{opts}")
    };
    (Backend::Sqlite, url)
}

/// The file path inside a normalised `sqlite://path?options` URL.
fn sqlite_path(url: &str) -> String {
    let rest = url.strip_prefix("sqlite://").unwrap_or(url);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

impl Store {
    /// Open the database at `url` (creating a SQLite file if needed). Does not migrate.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url);
        let options = AnyConnectOptions::from_str(&url)?;
        // The pool retries a refused connection until its acquire timeout
        // and then reports only "pool timed out": a newcomer whose
        // PostgreSQL is down would wait 30 s to learn nothing. One direct
        // attempt first reports the real cause (connection refused, unknown
        // host, bad password, no such database) at once.
        let backend_name = match backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        };
        match tokio::time::timeout(FIRST_CONNECT_TIMEOUT, AnyConnection::connect_with(&options))
            .await
        {
            Ok(Ok(probe)) => probe.close().await?,
            Ok(Err(e)) => {
                return Err(anyhow::Error::new(e).context(format!("connecting to {backend_name}")))
            }
            Err(_) => anyhow::bail!(
                "connecting to {backend_name}: no answer within {} s",
                FIRST_CONNECT_TIMEOUT.as_secs()
            ),
        }
        let identity = health::SharedIdentity::default();
        let (on_connect, on_acquire) = (identity.clone(), identity.clone());
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time anyway; a few readers run alongside in WAL mode.
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            // A request future can be dropped at any await point. sqlx rolls a
            // dropped `Transaction` back, but a future dropped *inside*
            // `begin_with("BEGIN IMMEDIATE")` (after the BEGIN ran, before the
            // `Transaction` existed) leaves the connection in an open
            // transaction that nobody will ever end: every later `begin`
            // fails ("non-zero transaction depth") and on SQLite it holds the
            // write lock. So a connection coming back is first flushed (the
            // ping runs after every command still queued on it, rollbacks
            // included) and closed, not pooled, if it is still inside a
            // transaction. Closing a connection rolls its transaction back.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            // The same check on the way out, for a connection that went back
            // some other way (cheap: no round trip). And a pooled connection
            // to a SQLite file since deleted is closed rather than used
            // (`health.rs`; a stat, about a microsecond).
            .before_acquire(move |conn, _meta| {
                let ok = !conn.is_in_transaction() && health::check(&on_acquire).is_ok();
                Box::pin(async move { Ok(ok) })
            })
            .after_connect(move |conn, _meta| {
                let intact = health::check(&on_connect);
                Box::pin(async move {
                    intact.map_err(|e| sqlx::Error::Configuration(e.into()))?;
                    if backend == Backend::Sqlite {
                        conn.execute(sqlite_batch::SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let sqlite_batch = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(&url);
                // The first connection has created the file if needed; later
                // ones must never create it again (an empty database in
                // place of a deleted one), and remember which file it is.
                if url.contains("mode=rwc") {
                    pool.set_connect_options(AnyConnectOptions::from_str(
                        &url.replace("mode=rwc", "mode=rw"),
                    )?);
                }
                if let Ok(id) = health::FileIdentity::record(&path) {
                    let _ = identity.set(id);
                }
                let alive = std::sync::Arc::new(());
                checkpoint::spawn(
                    path.clone(),
                    identity.clone(),
                    std::sync::Arc::downgrade(&alive),
                );
                Some((
                    sqlite_batch::SqliteBatchWriter::new(path, identity.clone()),
                    alive,
                ))
            }
            Backend::Postgres => None,
        };
        let (sqlite_batch, alive) = sqlite_batch.unzip();
        let group_writer = sqlite_batch
            .clone()
            .map(|native| std::sync::Arc::new(record::GroupWriter::new(native)));
        Ok(Self {
            pool,
            backend,
            sqlite_batch,
            identity,
            group_writer,
            _alive: alive,
        })
    }

    /// Open and bring the schema up to date.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Apply every migration not yet applied. Safe to run from several nodes at once.
    pub fn migrate(&self) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        Box::pin(migrate::run(&self.pool, self.backend))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn sqlite_batch(&self) -> Option<&sqlite_batch::SqliteBatchWriter> {
        self.sqlite_batch.as_ref()
    }

    /// A transaction that reads and then writes. On SQLite it takes the
    /// write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that
    /// read first cannot upgrade once another connection has written, and
    /// fails with "database is locked" instead of waiting its turn.
    pub(crate) async fn begin_write(
        &self,
    ) -> std::result::Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

/// Milliseconds since the epoch, the stored form of every time.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}
