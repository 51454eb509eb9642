//! Embedded SQLite connections (rusqlite, the library compiled in).

use crate::runtime::bindings::wit_sql::{SqlError, Value};
use rusqlite::ErrorCode;
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::path::Path;
use std::time::Duration;

/// One connection to an SQLite file in WAL mode with full syncs, so a
/// committed transaction survives a crash of vsamrd or of the machine.
pub struct SqliteConnection {
    connection: rusqlite::Connection,
}

impl SqliteConnection {
    /// Opens (creating if needed) the database file. A statement waits at
    /// most `lock_wait` (a plugin call's limit, 5 s at most) for a lock
    /// another connection holds.
    pub fn open(path: &Path, lock_wait: Duration) -> Result<Self, SqlError> {
        let connection = rusqlite::Connection::open(path).map_err(|e| {
            SqlError::Unavailable(format!("cannot open SQLite file {}: {e}", path.display()))
        })?;
        connection
            .busy_timeout(lock_wait.min(Duration::from_secs(5)))
            .and_then(|()| {
                connection.execute_batch(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;",
                )
            })
            .map_err(|e| {
                SqlError::Unavailable(format!("cannot set up SQLite file {}: {e}", path.display()))
            })?;
        connection.set_prepared_statement_cache_capacity(256);
        Ok(Self { connection })
    }
}

struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            // NUMERIC columns convert exact decimal text by their affinity.
            Value::Text(t) | Value::Numeric(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn error(e: rusqlite::Error) -> SqlError {
    let message = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => SqlError::Constraint(message),
        Some(ErrorCode::DiskFull) => SqlError::NoSpace(message),
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::ReadOnly,
        ) => SqlError::Unavailable(message),
        _ => SqlError::Failed(message),
    }
}

impl SqliteConnection {
    /// A statement that returns rows.
    pub fn query(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        let mut prepared = self.connection.prepare_cached(statement).map_err(error)?;
        let columns = prepared.column_count();
        let mut rows = prepared
            .query(rusqlite::params_from_iter(params.iter().map(Param)))
            .map_err(error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(value(row.get_ref(i).map_err(error)?));
            }
            out.push(values);
        }
        Ok(out)
    }

    /// A statement that changes rows.
    pub fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        let mut prepared = self.connection.prepare_cached(statement).map_err(error)?;
        let changed = prepared
            .execute(rusqlite::params_from_iter(params.iter().map(Param)))
            .map_err(error)?;
        Ok(changed as u64)
    }

    /// Parameterless statements.
    pub fn batch(&mut self, statements: &str) -> Result<(), SqlError> {
        self.connection.execute_batch(statements).map_err(error)
    }

    /// Rolls back whatever transaction is open; false if that fails.
    pub fn abandon(&mut self) -> bool {
        if self.connection.is_autocommit() {
            return true;
        }
        self.connection.execute_batch("ROLLBACK").is_ok()
    }
}
