//! SQLite's batch writer for the two hottest writes, clicks and events: one
//! native (rusqlite) connection on a blocking thread, cached 32-row INSERTs
//! (and a single-row one for the remainder) inside one transaction per batch.
//!
//! Why a second driver: through sqlx's `Any` driver a row costs 10–25 µs
//! (argument conversion and a worker-thread hop per statement, and
//! multi-row statements grow superlinearly with their size), which capped
//! the redirect at about a third of a bare server and event ingestion at
//! ~10,000 events/s. A prepared rusqlite statement costs a few µs per row.
//! Same file, same schema, same pragmas as the sqlx connections, and the
//! same column lists (`EVENT_COLUMNS`, `CLICK_COLUMNS`): the conformance
//! suite checks that both backends behave the same.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tribute_core::click::{epoch_day, Click};
use tribute_core::tracking::Event;

use crate::clicks::{reasons_json, ua_id, CLICK_COLUMNS, SKIP_EXISTING_ID, USER_AGENT_COLUMNS};
use crate::db::{ready_now, Native, WriteMemo};
use crate::events::linking;
use crate::events::{EVENT_COLUMNS, EVENT_CONFLICT};
use crate::health::{check, SharedIdentity};
use crate::identity::stitch_events;
use crate::sql::{multi_row_insert, Params};
use crate::{to_ms, Backend, Result, StoreError};

/// The pragmas every connection to a SQLite file gets, sqlx's and this
/// writer's alike. WAL lets readers run while a batch commits;
/// synchronous=NORMAL is durable across process crashes (not power loss)
/// and is what makes batches cheap; foreign keys are checked everywhere. A
/// WAL checkpoint runs every 16,000 pages (64 MiB) rather than SQLite's
/// 1,000, whichever connection commits past it: at thousands of clicks or
/// conversions a second, frequent checkpoints (each a copy and an fsync)
/// cost several percent of the redirect and conversion benchmarks.
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 16000;";

#[derive(Clone)]
pub(crate) struct SqliteBatchWriter {
    conn: Arc<Mutex<Option<Connection>>>,
    path: String,
    /// The file the store opened: a batch never goes to another (`health.rs`).
    identity: SharedIdentity,
}

impl std::fmt::Debug for SqliteBatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBatchWriter")
            .field("path", &self.path)
            .finish()
    }
}

/// Attach what was being done to a rusqlite error.
trait SqliteContext<T> {
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T> SqliteContext<T> for rusqlite::Result<T> {
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Sqlite { context, source })
    }
}

impl SqliteBatchWriter {
    pub(crate) fn new(path: String, identity: SharedIdentity) -> Self {
        Self {
            conn: Arc::new(Mutex::new(None)),
            path,
            identity,
        }
    }

    /// Insert, handing the batch back (for reuse of its allocation, or a retry).
    pub(crate) async fn insert_clicks(&self, clicks: Vec<Click>) -> (Vec<Click>, Result<()>) {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || {
            let r = this.with_conn(|conn| insert_clicks(conn, &clicks));
            (clicks, r)
        })
        .await
        {
            Ok(done) => done,
            // The batch went down with the thread: report it lost. The
            // caller sees an error with an empty batch, so it cannot retry
            // (nothing is left) nor count the clicks as written.
            Err(source) => (
                Vec::new(),
                Err(StoreError::WriterThread {
                    context: "writing clicks",
                    source,
                }),
            ),
        }
    }

    /// Store events, skipping repeats of an external id; returns the ids
    /// stored, handing the batch back (empty if the thread failed).
    pub(crate) async fn insert_events(
        &self,
        events: Vec<Event>,
    ) -> (Vec<Event>, Result<BTreeSet<String>>) {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || {
            let r = this.with_conn(|conn| insert_events(conn, &events));
            (events, r)
        })
        .await
        {
            Ok(done) => done,
            Err(source) => (
                Vec::new(),
                Err(StoreError::WriterThread {
                    context: "writing events",
                    source,
                }),
            ),
        }
    }

    /// Run `f` on the connection (opened on first use), on this thread.
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // One batch at a time on this connection: the click writer and the
        // event writer take turns, as SQLite's single writer would anyway.
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = check(&self.identity) {
            // The open connection writes to a deleted file: drop it.
            *guard = None;
            return Err(e);
        }
        if guard.is_none() {
            // Never CREATE: the file exists since the store opened it.
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .context("opening the batch connection")?;
            // Besides the shared pragmas: a 64 MiB page cache; temporary
            // files in memory (when the conversion writer, `record.rs`,
            // writes a group again with a savepoint per conversion, their
            // journals of the pages changed would otherwise go to a
            // temporary file); and no checkpoint inside this connection's
            // commits (`checkpoint.rs` does them) unless that thread has
            // stopped. Its statements are cached too.
            conn.set_prepared_statement_cache_capacity(256);
            conn.execute_batch(SQLITE_PRAGMAS)
                .and_then(|()| {
                    conn.execute_batch(&format!(
                        "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; \
                         PRAGMA wal_autocheckpoint = {};",
                        crate::checkpoint::WRITER_AUTOCHECKPOINT
                    ))
                })
                .context("setting up the batch connection")?;
            *guard = Some(conn);
        }
        let conn = guard.as_mut().expect("opened above");
        // A writer that panicked mid-batch left its transaction open: roll
        // it back before anything else runs here.
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")
                .context("rolling back an abandoned batch")?;
        }
        f(conn)
    }
}

/// Rows per multi-row INSERT: one statement step writes this many rows,
/// amortising SQLite's per-statement work; the remainder goes row by row,
/// so only two statements per table are ever prepared (and cached).
const ROWS: usize = 32;

fn bind_event(stmt: &mut rusqlite::Statement<'_>, at: usize, e: &Event) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(at, e.id.as_str())?;
    stmt.raw_bind_parameter(at + 1, e.program_id.as_str())?;
    stmt.raw_bind_parameter(at + 2, &e.external_id)?;
    stmt.raw_bind_parameter(at + 3, e.event_type.as_str())?;
    stmt.raw_bind_parameter(at + 4, &e.name)?;
    stmt.raw_bind_parameter(at + 5, &e.ids.anonymous_id)?;
    stmt.raw_bind_parameter(at + 6, &e.ids.user_id)?;
    stmt.raw_bind_parameter(at + 7, &e.ids.email_hash)?;
    stmt.raw_bind_parameter(at + 8, &e.ids.customer_id)?;
    stmt.raw_bind_parameter(at + 9, &e.ids.phone_hash)?;
    stmt.raw_bind_parameter(at + 10, e.click_id.as_ref().map(|c| c.as_str()))?;
    stmt.raw_bind_parameter(at + 11, e.partner.as_ref().map(|(p, _)| p.as_str()))?;
    stmt.raw_bind_parameter(at + 12, to_ms(e.occurred_at))?;
    stmt.raw_bind_parameter(at + 13, to_ms(e.received_at))?;
    stmt.raw_bind_parameter(at + 14, e.properties.to_string())
}

/// Insert events, skipping repeats of an external id, and stitch the
/// linking ones, in one transaction; returns the ids inserted.
fn insert_events(conn: &mut Connection, events: &[Event]) -> Result<BTreeSet<String>> {
    in_write_transaction(conn, |conn| insert_and_stitch(conn, events).map(Some))
        .map(|inserted| inserted.unwrap_or_default())
}

/// Run `f` in a write transaction on the native connection: committed when
/// it returns `Ok(Some(_))`, rolled back when it returns `Ok(None)` or fails.
pub(crate) fn in_write_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<Option<T>>,
) -> Result<Option<T>> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .context("starting a write transaction")?;
    match f(conn) {
        Ok(Some(done)) => conn
            .execute_batch("COMMIT")
            .context("committing a write transaction")
            .map(|()| Some(done)),
        other => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            other
        }
    }
}

fn insert_and_stitch(conn: &mut Connection, events: &[Event]) -> Result<BTreeSet<String>> {
    const N: usize = EVENT_COLUMNS.len();
    let full = multi_row_insert(
        "events",
        &EVENT_COLUMNS,
        ROWS,
        EVENT_CONFLICT,
        Params::Anonymous,
    );
    let single = multi_row_insert(
        "events",
        &EVENT_COLUMNS,
        1,
        EVENT_CONFLICT,
        Params::Anonymous,
    );
    let split = events.len() - events.len() % ROWS;
    let mut inserted = BTreeSet::new();
    for chunk in events[..split]
        .chunks(ROWS)
        .chain(events[split..].chunks(1))
    {
        let mut stmt = conn
            .prepare_cached(if chunk.len() == ROWS { &full } else { &single })
            .context("preparing the event insert")?;
        for (k, e) in chunk.iter().enumerate() {
            bind_event(&mut stmt, k * N + 1, e).context("binding an event")?;
        }
        // RETURNING names the rows written: a repeated external id is not.
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next().context("inserting events")? {
            inserted.insert(row.get::<_, String>(0).context("reading an inserted id")?);
        }
    }
    let linking = linking(events);
    if !linking.is_empty() {
        // The stitching statements are native here: the future is ready at once.
        let mut memo = WriteMemo::default();
        let mut db = Native(conn, Some(&mut memo));
        ready_now(stitch_events(&mut db, Backend::Sqlite, &linking)).unwrap_or_else(|| {
            Err(StoreError::Unavailable(
                "stitching waited on something other than SQLite".to_owned(),
            ))
        })?;
    }
    Ok(inserted)
}

fn bind_click(stmt: &mut rusqlite::Statement<'_>, at: usize, c: &Click) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(at, c.id.as_str())?;
    stmt.raw_bind_parameter(at + 1, c.program_id.as_str())?;
    stmt.raw_bind_parameter(at + 2, c.link_id.as_str())?;
    stmt.raw_bind_parameter(at + 3, c.partner_id.as_str())?;
    stmt.raw_bind_parameter(at + 4, to_ms(c.at))?;
    stmt.raw_bind_parameter(at + 5, &c.ip_truncated)?;
    stmt.raw_bind_parameter(at + 6, &c.ip_hash)?;
    stmt.raw_bind_parameter(at + 7, &c.visitor_hash)?;
    stmt.raw_bind_parameter(at + 8, c.user_agent.as_deref().map(ua_id))?;
    stmt.raw_bind_parameter(at + 9, &c.referrer)?;
    stmt.raw_bind_parameter(at + 10, &c.source)?;
    stmt.raw_bind_parameter(at + 11, i64::from(c.is_bot))?;
    stmt.raw_bind_parameter(at + 12, epoch_day(c.at))?;
    stmt.raw_bind_parameter(at + 13, reasons_json(c))
}

fn insert_clicks(conn: &mut Connection, clicks: &[Click]) -> Result<()> {
    const N: usize = CLICK_COLUMNS.len();
    let tx = conn.transaction().context("starting a click batch")?;
    {
        // Each distinct user agent of the batch once (usually a handful).
        let agents: std::collections::BTreeMap<i64, &str> = clicks
            .iter()
            .filter_map(|c| c.user_agent.as_deref())
            .map(|ua| (ua_id(ua), ua))
            .collect();
        let sql = multi_row_insert(
            "user_agents",
            &USER_AGENT_COLUMNS,
            1,
            SKIP_EXISTING_ID,
            Params::Anonymous,
        );
        let mut stmt = tx
            .prepare_cached(&sql)
            .context("preparing the user agent insert")?;
        for (id, ua) in agents {
            stmt.execute(rusqlite::params![id, ua])
                .context("inserting a user agent")?;
        }
    }
    let full = multi_row_insert(
        "clicks",
        &CLICK_COLUMNS,
        ROWS,
        SKIP_EXISTING_ID,
        Params::Anonymous,
    );
    let single = multi_row_insert(
        "clicks",
        &CLICK_COLUMNS,
        1,
        SKIP_EXISTING_ID,
        Params::Anonymous,
    );
    let split = clicks.len() - clicks.len() % ROWS;
    for chunk in clicks[..split]
        .chunks(ROWS)
        .chain(clicks[split..].chunks(1))
    {
        let mut stmt = tx
            .prepare_cached(if chunk.len() == ROWS { &full } else { &single })
            .context("preparing the click insert")?;
        for (k, c) in chunk.iter().enumerate() {
            bind_click(&mut stmt, k * N + 1, c).context("binding a click")?;
        }
        stmt.raw_execute().context("inserting clicks")?;
    }
    tx.commit().context("committing a click batch")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_connection_checks_foreign_keys_like_the_sqlx_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // The store creates the file; the batch writer never does.
        Connection::open(&path).unwrap();
        let writer = SqliteBatchWriter::new(path.display().to_string(), Default::default());
        let on: i64 = writer
            .with_conn(|c| {
                c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                    .context("reading a pragma")
            })
            .unwrap();
        assert_eq!(on, 1);
    }

    #[tokio::test]
    async fn a_failed_batch_is_a_typed_error_with_its_sqlite_cause() {
        let dir = tempfile::tempdir().unwrap();
        // No such directory: the connection cannot be opened.
        let path = dir.path().join("missing").join("t.db");
        let writer = SqliteBatchWriter::new(path.display().to_string(), Default::default());
        let (events, r) = writer.insert_events(Vec::new()).await;
        assert!(events.is_empty());
        let err = r.unwrap_err();
        assert!(matches!(err, StoreError::Sqlite { .. }), "{err:?}");
        let cause = std::error::Error::source(&err).expect("the rusqlite error");
        assert!(cause.downcast_ref::<rusqlite::Error>().is_some());
    }
}
