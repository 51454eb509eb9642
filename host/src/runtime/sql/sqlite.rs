//! Embedded SQLite connections (rusqlite, the library compiled in).

use crate::runtime::bindings::wit_sql::{SqlError, Value};
use rusqlite::ErrorCode;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One connection to an SQLite file in WAL mode with full syncs, so a
/// committed transaction survives a crash of vsamrd or of the machine.
///
/// SQLite runs in vsamrd's own thread, out of reach of the sandbox's
/// epochs and of the call's wall clock (which act where a call awaits): a
/// statement a plugin sends is bounded here instead, in time (interrupted
/// at `limit`, checked every [`PROGRESS_STEPS`] steps of SQLite's machine)
/// and in the bytes of the rows it returns (`result_bytes`, what the
/// plugin's memory may hold). Without them one `WITH RECURSIVE` without
/// end held a runtime thread for good, and rows of `zeroblob`s filled
/// vsamrd's memory. A statement may not ATTACH another file either, nor
/// set a PRAGMA.
pub struct SqliteConnection {
    connection: rusqlite::Connection,
    limit: Duration,
    result_bytes: u64,
    /// When the running statement must end, in nanoseconds after `epoch`
    /// (0: none runs); read by SQLite's progress handler.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
}

/// The PRAGMAs a plugin may give an argument to: they ask about a table or
/// an index and change nothing. Any other PRAGMA with a value is refused,
/// since those set what vsamrd relies on or share it with every backend:
/// `hard_heap_limit` and `soft_heap_limit` bound the memory of every
/// SQLite connection of the process (one backend could starve the
/// others), `cache_size` and `temp_store` move a plugin's memory into
/// vsamrd's beyond its limit, `synchronous`, `journal_mode` and
/// `locking_mode` undo the durability of the writes vsamrd acknowledges
/// and shut out the backend's readers, `writable_schema` breaks the file.
/// vsamrd sets what it needs when it opens the connection. A PRAGMA
/// without a value only reads.
const ASKING_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// Steps of SQLite's virtual machine between two looks at the clock: a few
/// microseconds of work.
const PROGRESS_STEPS: i32 = 10_000;

impl SqliteConnection {
    /// Opens (creating if needed) the database file. A statement waits at
    /// most `limit` (a plugin call's limit; 5 s at most) for a lock another
    /// connection holds, runs at most `limit`, and returns at most
    /// `result_bytes` of rows.
    pub fn open(path: &Path, limit: Duration, result_bytes: u64) -> Result<Self, SqlError> {
        let lock_wait = limit;
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
        // ATTACH (and VACUUM INTO, which attaches) opens any file vsamrd
        // may open: another backend's database, a new file anywhere. The
        // grant is one file. A PRAGMA that sets something is refused too
        // (see `ASKING_PRAGMAS`).
        connection.authorizer(Some(|context: AuthContext<'_>| match context.action {
            AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
            AuthAction::Pragma {
                pragma_name,
                pragma_value: Some(_),
            } if !ASKING_PRAGMAS
                .iter()
                .any(|asking| asking.eq_ignore_ascii_case(pragma_name)) =>
            {
                Authorization::Deny
            }
            _ => Authorization::Allow,
        }));
        let deadline = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let watched = deadline.clone();
        connection.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let until = watched.load(Ordering::Relaxed);
                until != 0 && epoch.elapsed().as_nanos() as u64 > until
            }),
        );
        Ok(Self {
            connection,
            limit,
            result_bytes,
            deadline,
            epoch,
        })
    }

    /// Runs `statement` under the time limit: SQLite interrupts it once the
    /// limit passed.
    fn timed<T>(
        &mut self,
        statement: impl FnOnce(&mut Self) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let until = (self.epoch.elapsed() + self.limit).as_nanos() as u64;
        self.deadline.store(until.max(1), Ordering::Relaxed);
        let result = statement(self);
        self.deadline.store(0, Ordering::Relaxed);
        let interrupted = self.epoch.elapsed().as_nanos() as u64 > until;
        result.map_err(|error| match error {
            SqlError::Failed(message) if interrupted => SqlError::Failed(format!(
                "the statement ran longer than the call's limit of {} ms and was interrupted ({message})",
                self.limit.as_millis()
            )),
            other => other,
        })
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
        self.timed(|this| {
            let result_bytes = this.result_bytes;
            let mut prepared = this.connection.prepare_cached(statement).map_err(error)?;
            let columns = prepared.column_count();
            let mut rows = prepared
                .query(rusqlite::params_from_iter(params.iter().map(Param)))
                .map_err(error)?;
            let mut out = Vec::new();
            let mut bytes = 0u64;
            while let Some(row) = rows.next().map_err(error)? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    let value = value(row.get_ref(i).map_err(error)?);
                    bytes += super::value_bytes(&value);
                    values.push(value);
                }
                if bytes > result_bytes {
                    return Err(super::too_many_bytes(out.len() + 1, result_bytes));
                }
                out.push(values);
            }
            Ok(out)
        })
    }

    /// A statement that changes rows.
    pub fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        self.timed(|this| {
            let mut prepared = this.connection.prepare_cached(statement).map_err(error)?;
            let changed = prepared
                .execute(rusqlite::params_from_iter(params.iter().map(Param)))
                .map_err(error)?;
            Ok(changed as u64)
        })
    }

    /// Parameterless statements.
    pub fn batch(&mut self, statements: &str) -> Result<(), SqlError> {
        self.timed(|this| this.connection.execute_batch(statements).map_err(error))
    }

    /// Rolls back whatever transaction is open; false if that fails.
    pub fn abandon(&mut self) -> bool {
        if self.connection.is_autocommit() {
            return true;
        }
        self.connection.execute_batch("ROLLBACK").is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite holds a file's schema in hash tables that stop growing at
    /// 64 buckets unless it is compiled with `SQLITE_MALLOC_SOFT_LIMIT=0`
    /// (`.cargo/config.toml`): with one table per dataset, a connection to a
    /// file of 100,000 datasets then took 36 s to read the schema, past every
    /// call's limit, so that the backend never served again.
    #[test]
    fn the_schema_of_many_tables_is_held_in_hash_tables_that_grow() {
        let dir = tempfile::tempdir().unwrap();
        let mut connection =
            SqliteConnection::open(&dir.path().join("vsam.db"), Duration::from_secs(5), 1 << 20)
                .unwrap();
        let options: Vec<String> = connection
            .query("PRAGMA compile_options", &[])
            .unwrap()
            .into_iter()
            .flatten()
            .filter_map(|option| match option {
                Value::Text(option) => Some(option),
                _ => None,
            })
            .collect();
        assert!(
            options.iter().any(|option| option == "MALLOC_SOFT_LIMIT=0"),
            "SQLite was compiled without LIBSQLITE3_FLAGS=-DSQLITE_MALLOC_SOFT_LIMIT=0: {options:?}"
        );
    }
}
