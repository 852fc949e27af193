//! Is the database still usable: the file the store opened (SQLite), at
//! this build's schema, and writable?
//!
//! Why the file's identity: a SQLite file deleted (or replaced) under a
//! running server is not an error SQLite reports. Open connections keep
//! writing into the deleted inode, and a new connection would create a
//! fresh, empty database at the same path. So the store remembers the
//! file's device and inode when it opens it, new connections never create
//! the file, and every pooled connection handed out, every native batch and
//! every readiness check first compares the path's identity with the one
//! remembered. Once they differ the store stays unavailable (it does not
//! adopt whatever file appears later) until the process restarts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::Row;

use crate::{migrate, Result, Store, StoreError};

/// The device and inode of the SQLite file the store opened.
#[derive(Debug)]
pub(crate) struct FileIdentity {
    path: PathBuf,
    id: (u64, u64),
    /// Set once the path stops naming that file; never cleared.
    lost: AtomicBool,
}

#[cfg(unix)]
fn identity_of(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Elsewhere there is no inode to compare: only a missing file is seen.
#[cfg(not(unix))]
fn identity_of(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|_| (0, 0))
}

impl FileIdentity {
    /// Remember the file now at `path` (it must exist).
    pub(crate) fn record(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let id = identity_of(&path)?;
        Ok(Self {
            path,
            id,
            lost: AtomicBool::new(false),
        })
    }

    /// `Err` when the path no longer names the file first opened: deleted,
    /// moved away or replaced. A `stat`, about a microsecond.
    pub(crate) fn check(&self) -> Result<()> {
        if !self.lost.load(Ordering::Relaxed) {
            match identity_of(&self.path) {
                Ok(id) if id == self.id => return Ok(()),
                _ => {
                    tracing::error!(path = %self.path.display(),
                        "the database file was deleted or replaced while in use");
                    self.lost.store(true, Ordering::Relaxed);
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "the database file {} was deleted or replaced while the server ran; \
             restore it and restart",
            self.path.display()
        )))
    }
}

/// The identity, once the first connection has made sure the file exists;
/// shared by the pool's hooks, the native batch path and the store.
pub(crate) type SharedIdentity = Arc<OnceLock<FileIdentity>>;

/// `Err` once the file behind `identity` (if any) is gone.
pub(crate) fn check(identity: &SharedIdentity) -> Result<()> {
    identity.get().map_or(Ok(()), FileIdentity::check)
}

impl StoreError {
    /// Whether the database could not be reached at all (gone, replaced,
    /// refusing connections, shutting down), as opposed to refusing one
    /// statement: the server answers these 503, worth a retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Shared(e) => e.is_unavailable(),
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => unavailable_code(&e.extended_code.to_string()),
            StoreError::Database { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_) => true,
                sqlx::Error::Database(e) => e.code().is_some_and(|c| unavailable_code(&c)),
                _ => false,
            },
            _ => false,
        }
    }
}

/// SQLite's "cannot open" (14) and "read-only" (8, and its extended codes),
/// PostgreSQL's connection (08…), shutdown (57P…), read-only transaction
/// (25006) and missing database (3D000) classes.
fn unavailable_code(code: &str) -> bool {
    let sqlite = code.parse::<i32>().ok().map(|c| c & 0xff);
    matches!(sqlite, Some(8 | 14))
        || code.starts_with("08")
        || code.starts_with("57P")
        || code == "25006"
        || code == "3D000"
}

impl Store {
    /// Cheap (no query): `Err` once the SQLite file was deleted or replaced.
    /// Always `Ok` on PostgreSQL, whose server reports its own failures.
    pub fn intact(&self) -> Result<()> {
        check(&self.identity)
    }

    /// The SQLite file the store opened (`None` on PostgreSQL).
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.identity.get().map(|i| i.path.as_path())
    }

    /// What stops the store from serving, if anything: the file is gone,
    /// the schema is not this build's, or the database refuses writes.
    /// Empty when ready. Each problem is a sentence for an operator.
    pub async fn readiness(&self) -> Vec<String> {
        if let Err(e) = self.intact() {
            return vec![e.to_string()];
        }
        let mut problems = Vec::new();
        let latest = migrate::latest(self.backend);
        match sqlx::query("SELECT MAX(version) FROM tribute_migrations")
            .fetch_one(self.pool())
            .await
        {
            Ok(row) => match row.try_get::<Option<i64>, _>(0) {
                Ok(Some(v)) if v >= latest => {}
                Ok(v) => problems.push(format!(
                    "the schema is at version {} but this build needs {latest}: run `tribute migrate`",
                    v.unwrap_or(0)
                )),
                Err(e) => problems.push(format!("reading the schema version: {e}")),
            },
            Err(e) => problems.push(format!("the schema cannot be read: {e}")),
        }
        // A write that changes nothing: it still needs a write transaction,
        // which a read-only file, mount, mode or server refuses.
        if let Err(e) =
            sqlx::query("UPDATE tribute_migrations SET applied_at = applied_at WHERE version < 0")
                .execute(self.pool())
                .await
        {
            problems.push(format!("the database refuses writes: {e}"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_lost_for_good() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("db");
        std::fs::write(&path, b"x").expect("writing");
        let id = FileIdentity::record(&path).expect("recording");
        assert!(id.check().is_ok());
        std::fs::remove_file(&path).expect("removing");
        assert!(id.check().is_err(), "deleted");
        std::fs::write(&path, b"y").expect("writing again");
        assert!(
            id.check().is_err(),
            "a new file at the same path is not the one opened"
        );
    }

    #[test]
    fn unavailable_codes_are_connection_and_read_only_classes() {
        assert!(unavailable_code("14"));
        assert!(unavailable_code("1032")); // SQLITE_READONLY_DBMOVED
        assert!(unavailable_code("08006"));
        assert!(unavailable_code("57P01"));
        assert!(
            !unavailable_code("23505"),
            "a unique violation is not an outage"
        );
        assert!(!unavailable_code("1"));
    }
}
