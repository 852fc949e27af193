//! One way to run a statement on either of the two drivers: sqlx (every
//! PostgreSQL connection, and SQLite's pool) and rusqlite (SQLite's native
//! writer connection).
//!
//! A conversion's write path (finding its journey, writing it with its
//! credits, commissions and ledger entries) runs on both: through sqlx on
//! PostgreSQL and wherever a sqlx transaction is already open, and on
//! SQLite's native connection when conversions are written in groups
//! (`record.rs`), where each statement is a prepared-statement step on the
//! writer's own thread instead of a hop to sqlx's worker thread and back
//! (about twenty statements per conversion). The SQL text is the same for
//! both (`$n` parameters, which SQLite reads natively), so the functions of
//! that path are written once, against [`Db`].

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::{Any, AnyConnection, Row as _, Transaction};

use crate::{BoxFuture, StoreError};

/// A statement's parameter. A null keeps its type: PostgreSQL refuses a
/// text null for a number column.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    Null,
    NullInt,
    Int(i64),
    Text(&'a str),
    Owned(String),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Owned(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Arg::Null, Arg::Text)
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        v.map_or(Arg::Null, Arg::Owned)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::NullInt, Arg::Int)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Null | Arg::NullInt => ToSqlOutput::Borrowed(ValueRef::Null),
            Arg::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Owned(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// A row read back, by column position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {i} in a row")))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s)),
            Cell::Int(n) => Err(StoreError::Corrupt(format!(
                "column {i}: a number ({n}) where text was expected"
            ))),
        }
    }

    pub fn text(&self, i: usize) -> Result<&str, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i}: null where text was expected")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n)),
            Cell::Text(_) => Err(StoreError::Corrupt(format!(
                "column {i}: text where a number was expected"
            ))),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| {
            StoreError::Corrupt(format!("column {i}: null where a number was expected"))
        })
    }
}

/// A driver's failure.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlx(sqlx::Error),
    Sqlite(rusqlite::Error),
}

impl DbError {
    fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlx(sqlx::Error::Database(e)) => e.is_unique_violation(),
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            _ => false,
        }
    }

    fn into_store(self, context: &'static str) -> StoreError {
        match self {
            DbError::Sqlx(source) => StoreError::Database { context, source },
            DbError::Sqlite(source) => StoreError::Sqlite { context, source },
        }
    }
}

/// Attach what was being done to a driver's error.
pub(crate) trait DbContext<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for Result<T, DbError> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| e.into_store(context))
    }
}

/// Turn a unique violation into a `Conflict` naming `field`.
pub(crate) fn on_unique_db<T>(
    r: Result<T, DbError>,
    field: &'static str,
    message: &str,
    context: &'static str,
) -> Result<T, StoreError> {
    match r {
        Err(e) if e.is_unique_violation() => Err(StoreError::Conflict {
            field,
            message: message.to_owned(),
        }),
        other => other.context(context),
    }
}

/// A connection statements run on, inside whatever transaction its holder
/// opened.
pub(crate) trait Db: Send {
    /// Run a statement; the number of rows it changed.
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<u64, DbError>>;
    /// Run a query; every row it returns.
    fn fetch<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>>;
    /// What this write transaction has read and may read again without
    /// asking: only SQLite's native writer has one, as it holds SQLite's
    /// write lock for the whole transaction, so nothing it read can change
    /// under it.
    fn memo(&mut self) -> Option<&mut WriteMemo> {
        None
    }
}

/// Reads kept for the length of one write transaction on SQLite's native
/// writer (a group of conversions or a batch of events): each program's
/// enabled webhook endpoints, read once per group instead of twice per
/// conversion; each program's fraud settings.
#[derive(Debug, Default)]
pub(crate) struct WriteMemo {
    pub endpoints: std::collections::HashMap<String, Vec<Row>>,
    /// Each program's fraud settings.
    pub fraud: std::collections::HashMap<String, std::sync::Arc<tribute_core::fraud::FraudConfig>>,
}

/// The first row of a query, if any.
pub(crate) async fn fetch_optional(
    db: &mut dyn Db,
    sql: &str,
    args: Vec<Arg<'_>>,
) -> Result<Option<Row>, DbError> {
    Ok(db.fetch(sql, args).await?.into_iter().next())
}

fn any_cell(row: &sqlx::any::AnyRow, i: usize) -> Result<Cell, sqlx::Error> {
    use sqlx::any::AnyTypeInfoKind as Kind;
    use sqlx::{TypeInfo as _, ValueRef as _};
    let value = row.try_get_raw(i)?;
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let info = value.type_info();
    Ok(match info.kind() {
        Kind::SmallInt | Kind::Integer | Kind::BigInt => Cell::Int(row.try_get::<i64, _>(i)?),
        Kind::Bool => Cell::Int(i64::from(row.try_get::<bool, _>(i)?)),
        Kind::Text => Cell::Text(row.try_get::<String, _>(i)?),
        _ => {
            return Err(sqlx::Error::ColumnDecode {
                index: i.to_string(),
                source: format!("a {} where a number or text was expected", info.name()).into(),
            })
        }
    })
}

fn any_query<'a>(
    sql: &'a str,
    args: Vec<Arg<'a>>,
) -> sqlx::query::Query<'a, Any, sqlx::any::AnyArguments<'a>> {
    let mut q = sqlx::query(sql);
    for a in args {
        q = match a {
            Arg::Null => q.bind(None::<String>),
            Arg::NullInt => q.bind(None::<i64>),
            Arg::Int(i) => q.bind(i),
            Arg::Text(s) => q.bind(s),
            Arg::Owned(s) => q.bind(s),
        };
    }
    q
}

impl Db for AnyConnection {
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<u64, DbError>> {
        Box::pin(async move {
            let done = any_query(sql, args)
                .execute(&mut *self)
                .await
                .map_err(DbError::Sqlx)?;
            Ok(done.rows_affected())
        })
    }

    fn fetch<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>> {
        Box::pin(async move {
            let rows = any_query(sql, args)
                .fetch_all(&mut *self)
                .await
                .map_err(DbError::Sqlx)?;
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| any_cell(r, i))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Row)
                })
                .collect::<Result<_, _>>()
                .map_err(DbError::Sqlx)
        })
    }
}

impl Db for Transaction<'_, Any> {
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<u64, DbError>> {
        (**self).execute(sql, args)
    }

    fn fetch<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>> {
        (**self).fetch(sql, args)
    }
}

/// SQLite's native writer connection, on the thread that holds it, with
/// the memo of its write transaction when it has one.
pub(crate) struct Native<'c>(
    pub &'c mut rusqlite::Connection,
    pub Option<&'c mut WriteMemo>,
);

#[cfg(test)]
impl<'c> Native<'c> {
    /// The connection without a memo.
    pub fn new(conn: &'c mut rusqlite::Connection) -> Self {
        Self(conn, None)
    }
}

impl Native<'_> {
    /// Prepare (cached) and bind: `$n` is the n-th argument wherever it
    /// appears (SQLite numbers named parameters by first appearance).
    fn bound<'s>(
        &'s self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> rusqlite::Result<rusqlite::CachedStatement<'s>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        for i in 1..=stmt.parameter_count() {
            let n = stmt
                .parameter_name(i)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(i);
            let arg = args
                .get(n - 1)
                .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
            stmt.raw_bind_parameter(i, arg)?;
        }
        Ok(stmt)
    }
}

impl Db for Native<'_> {
    fn memo(&mut self) -> Option<&mut WriteMemo> {
        self.1.as_deref_mut()
    }

    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<u64, DbError>> {
        let done = self
            .bound(sql, &args)
            .and_then(|mut stmt| stmt.raw_execute())
            .map(|n| n as u64)
            .map_err(DbError::Sqlite);
        Box::pin(std::future::ready(done))
    }

    fn fetch<'a>(
        &'a mut self,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>> {
        let rows = (|| {
            let mut stmt = self.bound(sql, &args)?;
            let columns = stmt.column_count();
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let mut cells = Vec::with_capacity(columns);
                for i in 0..columns {
                    cells.push(match r.get_ref(i)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(n) => Cell::Int(n),
                        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Real(f) => Cell::Text(f.to_string()),
                        ValueRef::Blob(b) => Cell::Text(String::from_utf8_lossy(b).into_owned()),
                    });
                }
                out.push(Row(cells));
            }
            Ok(out)
        })()
        .map_err(DbError::Sqlite);
        Box::pin(std::future::ready(rows))
    }
}

/// Run a future made only of native statements (each ready at once) to its
/// end on this thread. `None` if it waited on anything: a sqlx call slipped
/// into the native path, a bug the caller reports.
pub(crate) fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_statements_bind_numbered_parameters_wherever_they_appear() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c INTEGER)")
            .unwrap();
        let mut db = Native::new(&mut conn);
        let changed = ready_now(db.execute(
            "INSERT INTO t (a, b, c) VALUES ($2, $1, $2)",
            vec![Arg::Text("x"), Arg::Int(7)],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(changed, 1);
        let rows = ready_now(db.fetch(
            "SELECT a, b, c, NULL FROM t WHERE b = $1",
            vec![Arg::from(Some("x"))],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            rows,
            vec![Row(vec![
                Cell::Int(7),
                Cell::Text("x".into()),
                Cell::Int(7),
                Cell::Null
            ])]
        );
        assert_eq!(rows[0].int(0).unwrap(), 7);
        assert_eq!(rows[0].opt_text(3).unwrap(), None);
        assert!(rows[0].text(0).is_err(), "a number is not text");
    }

    #[test]
    fn a_native_unique_violation_is_a_conflict_naming_the_field() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY)")
            .unwrap();
        let mut db = Native::new(&mut conn);
        let insert = |db: &mut Native<'_>| {
            ready_now(db.execute("INSERT INTO t (id) VALUES ($1)", vec![Arg::Text("a")])).unwrap()
        };
        insert(&mut db).unwrap();
        match on_unique_db(insert(&mut db), "id", "taken", "inserting") {
            Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "id"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
}
