//! SQLite's fast path for the two hottest writes, clicks and events: one
//! rusqlite connection on a blocking thread, cached 32-row INSERTs (and a
//! single-row one for the remainder) inside one transaction per batch.
//!
//! Why a second driver: through sqlx's `Any` driver a row costs 10–25 µs
//! (argument conversion and a worker-thread hop per statement, and
//! multi-row statements grow superlinearly with their size), which capped
//! the redirect at about a third of a bare server and event ingestion at
//! ~10,000 events/s. A prepared rusqlite statement costs a few µs per row.
//! Same file, same schema, same WAL mode: the conformance suite checks that
//! both backends behave the same.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tribute_core::click::{epoch_day, Click};
use tribute_core::tracking::Event;

use crate::clicks::ua_id;
use crate::{to_ms, Result, StoreError};

#[derive(Clone)]
pub(crate) struct FastSqlite {
    conn: Arc<Mutex<Option<Connection>>>,
    path: String,
}

impl std::fmt::Debug for FastSqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastSqlite")
            .field("path", &self.path)
            .finish()
    }
}

fn native(e: rusqlite::Error) -> StoreError {
    StoreError::Native(format!("sqlite: {e}"))
}

impl FastSqlite {
    pub(crate) fn new(path: String) -> Self {
        Self {
            conn: Arc::new(Mutex::new(None)),
            path,
        }
    }

    /// Insert, handing the batch back (for reuse of its allocation, or a retry).
    pub(crate) async fn insert_owned(&self, clicks: Vec<Click>) -> (Vec<Click>, Result<()>) {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || {
            let r = this.insert_blocking(&clicks);
            (clicks, r)
        })
        .await
        {
            Ok(done) => done,
            // The batch went down with the thread: report it lost. The
            // caller sees an error with an empty batch, so it cannot retry
            // (nothing is left) nor count the clicks as written.
            Err(e) => (
                Vec::new(),
                Err(StoreError::Native(format!("click writer thread: {e}"))),
            ),
        }
    }

    /// Run `f` on the connection (opened on first use), on this thread.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // One batch at a time on this connection: the click writer and the
        // event writer take turns, as SQLite's single writer would anyway.
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            // A 64 MiB page cache, and a WAL checkpoint every 16,000 pages
            // (64 MiB) rather than 1,000: at tens of thousands of clicks a
            // second, frequent checkpoints (each a copy and an fsync) cost
            // the redirect benchmark several percent.
            let conn = Connection::open(&self.path).map_err(native)?;
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                 PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16000;",
            )
            .map_err(native)?;
            *guard = Some(conn);
        }
        f(guard.as_mut().expect("opened above"))
    }

    fn insert_blocking(&self, clicks: &[Click]) -> Result<()> {
        self.with_conn(|conn| insert_clicks(conn, clicks))
    }

    /// Store events, skipping repeats of an external id; returns the ids stored.
    pub(crate) async fn insert_events(&self, events: Vec<Event>) -> Result<BTreeSet<String>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with_conn(|conn| insert_events(conn, &events)))
            .await
            .map_err(|e| StoreError::Native(format!("event writer thread: {e}")))?
    }
}

/// Rows per multi-row INSERT: one statement step writes this many rows,
/// amortising SQLite's per-statement work; the remainder goes row by row,
/// so only two statements per table are ever prepared (and cached).
const ROWS: usize = 32;

/// `INSERT INTO {table} ({columns}) VALUES (?, …), … {tail}` for `rows` rows.
fn multi_row_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let one = format!("({})", vec!["?"; columns].join(", "));
    format!("{head} VALUES {} {tail}", vec![one; rows].join(", "))
}

const EVENT_HEAD: &str = "INSERT INTO events (id, program_id, external_id, type, name, \
     anonymous_id, user_id, email_hash, customer_id, phone_hash, click_id, partner_id, \
     occurred_at, received_at, properties)";
const EVENT_TAIL: &str = "ON CONFLICT (program_id, external_id) DO NOTHING RETURNING id";

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
    stmt.raw_bind_parameter(at + 10, &e.click_id)?;
    stmt.raw_bind_parameter(at + 11, e.partner.as_ref().map(|(p, _)| p.as_str()))?;
    stmt.raw_bind_parameter(at + 12, to_ms(e.occurred_at))?;
    stmt.raw_bind_parameter(at + 13, to_ms(e.received_at))?;
    stmt.raw_bind_parameter(at + 14, e.properties.to_string())
}

fn insert_events(conn: &mut Connection, events: &[Event]) -> Result<BTreeSet<String>> {
    let tx = conn.transaction().map_err(native)?;
    let full = multi_row_sql(EVENT_HEAD, 15, ROWS, EVENT_TAIL);
    let single = multi_row_sql(EVENT_HEAD, 15, 1, EVENT_TAIL);
    let split = events.len() - events.len() % ROWS;
    let mut inserted = BTreeSet::new();
    for chunk in events[..split]
        .chunks(ROWS)
        .chain(events[split..].chunks(1))
    {
        let mut stmt = tx
            .prepare_cached(if chunk.len() == ROWS { &full } else { &single })
            .map_err(native)?;
        for (k, e) in chunk.iter().enumerate() {
            bind_event(&mut stmt, k * 15 + 1, e).map_err(native)?;
        }
        // RETURNING names the rows written: a repeated external id is not.
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next().map_err(native)? {
            inserted.insert(row.get::<_, String>(0).map_err(native)?);
        }
    }
    tx.commit().map_err(native)?;
    Ok(inserted)
}

const CLICK_HEAD: &str = "INSERT INTO clicks (id, program_id, link_id, partner_id, at, \
     ip_truncated, ip_hash, visitor_hash, ua_id, referrer, source, is_bot, day)";
const CLICK_TAIL: &str = "ON CONFLICT (id) DO NOTHING";

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
    stmt.raw_bind_parameter(at + 12, epoch_day(c.at))
}

fn insert_clicks(conn: &mut Connection, clicks: &[Click]) -> Result<()> {
    let tx = conn.transaction().map_err(native)?;
    {
        // Each distinct user agent of the batch once (usually a handful).
        let agents: std::collections::BTreeMap<i64, &str> = clicks
            .iter()
            .filter_map(|c| c.user_agent.as_deref())
            .map(|ua| (ua_id(ua), ua))
            .collect();
        let mut stmt = tx
            .prepare_cached("INSERT INTO user_agents (id, user_agent) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING")
            .map_err(native)?;
        for (id, ua) in agents {
            stmt.execute(rusqlite::params![id, ua]).map_err(native)?;
        }
    }
    let full = multi_row_sql(CLICK_HEAD, 13, ROWS, CLICK_TAIL);
    let single = multi_row_sql(CLICK_HEAD, 13, 1, CLICK_TAIL);
    let split = clicks.len() - clicks.len() % ROWS;
    for chunk in clicks[..split]
        .chunks(ROWS)
        .chain(clicks[split..].chunks(1))
    {
        let mut stmt = tx
            .prepare_cached(if chunk.len() == ROWS { &full } else { &single })
            .map_err(native)?;
        for (k, c) in chunk.iter().enumerate() {
            bind_click(&mut stmt, k * 13 + 1, c).map_err(native)?;
        }
        stmt.raw_execute().map_err(native)?;
    }
    tx.commit().map_err(native)?;
    Ok(())
}
