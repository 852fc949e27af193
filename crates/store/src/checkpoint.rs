//! SQLite's WAL checkpoints, off the writers' path.
//!
//! Left to SQLite, a checkpoint runs inside the commit that takes the WAL
//! past `wal_autocheckpoint` pages: that commit copies the WAL into the
//! database file and waits for two fsyncs, and every conversion of its
//! group waits with it (batches that normally take 20–50 ms took 90–150 ms
//! in the conversion benchmark). So the native writer's own threshold is
//! set high, as a safety net only, and a thread of the store's checkpoints
//! the WAL every [`EVERY`] with a connection of its own, in PASSIVE mode
//! (it never waits for, nor blocks, a writer or a reader). It stops when
//! the store is dropped or its file is gone.

use std::sync::Weak;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::health::{check, SharedIdentity};

/// How often the WAL is checkpointed.
pub(crate) const EVERY: Duration = Duration::from_millis(500);

/// The native writer's own checkpoint threshold (pages): only reached if
/// the checkpoint thread has stopped.
pub(crate) const WRITER_AUTOCHECKPOINT: i64 = 262_144;

/// Start checkpointing the SQLite file at `path` while `alive` can be
/// upgraded (the store holds the other end).
pub(crate) fn spawn(path: String, identity: SharedIdentity, alive: Weak<()>) {
    let started = std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || run(&path, &identity, &alive));
    if let Err(e) = started {
        // The writers' own threshold still bounds the WAL.
        tracing::warn!(error = %e, "no checkpoint thread; SQLite checkpoints in its commits");
    }
}

fn run(path: &str, identity: &SharedIdentity, alive: &Weak<()>) {
    let mut conn: Option<Connection> = None;
    loop {
        std::thread::sleep(EVERY);
        if alive.upgrade().is_none() || check(identity).is_err() {
            return;
        }
        if conn.is_none() {
            conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| tracing::warn!(error = %e, "opening the checkpoint connection"))
            .ok();
        }
        if let Some(c) = &conn {
            if let Err(e) = checkpoint(c) {
                tracing::warn!(error = %e, "checkpointing the WAL");
                conn = None;
            }
        }
    }
}

/// One PASSIVE checkpoint: every WAL frame no reader still needs is copied
/// into the database file. Returns (frames in the WAL, frames checkpointed).
pub(crate) fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passive_checkpoint_copies_what_another_connection_wrote_without_blocking_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (x TEXT);",
            )
            .unwrap();
        let checkpointer = Connection::open(&path).unwrap();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        for i in 0..1000 {
            writer
                .execute("INSERT INTO t (x) VALUES (?1)", [format!("row {i:0>100}")])
                .unwrap();
        }
        writer.execute_batch("COMMIT").unwrap();
        // The writer holds its write lock again: a passive checkpoint still runs.
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (frames, copied) = checkpoint(&checkpointer).unwrap();
        assert!(frames > 10, "the writer's commit is in the WAL: {frames}");
        assert_eq!(copied, frames, "every committed frame was copied");
        writer
            .execute("INSERT INTO t (x) VALUES ('after')", [])
            .unwrap();
        writer.execute_batch("COMMIT").unwrap();
        let rows: i64 = checkpointer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1001);
    }
}
