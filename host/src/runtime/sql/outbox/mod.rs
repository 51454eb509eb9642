//! The change outbox: a table in a backend's own database where the host
//! writes a group's recorded changes inside the plugin's transaction,
//! just before its COMMIT.
//!
//! Why: the change log that mirrors and the change stream follow must
//! hold every change the backend committed, whenever vsamrd stops. On
//! local disk that is a second fsync per group beside the database's own,
//! and two fsync streams halve what one disk commits. A row in the
//! committed transaction is durable with it, at no sync of its own; the
//! log then takes the group after the commit without syncing, and at
//! start-up whatever the log lost (a power cut) is taken back from the
//! outbox. Rows the log holds durably are emptied in a later transaction
//! (on SQLite, by the backend's writer between two groups: see
//! `changes::outboxes::Outboxes::empty`).
//!
//! One outbox serves every server and backend on a database: a row names
//! the change log's id (one per server), the backend and the group's
//! number in that log. On PostgreSQL that is its key; SQLite keeps a ring
//! of slots instead (see [`Lane`]).

mod ring;

pub use ring::{LANES, LARGE_GROUP_BYTES, Lane, RING, SLOTS};

use super::{SqlError, SqlGrant, SqlSession};
use crate::runtime::bindings::wit_sql::{Dialect, Value};
use ring::{empty_lane, other_lanes, read_ring, remove_lane, write_slot};
use std::sync::Arc;

/// The table's name: one no dataset's table can have (a dataset's name
/// starts with a letter or a national character, so its table's name never
/// starts with a single underscore; the SQL plugin's catalog is
/// `_vsam_catalog` for the same reason). PostgreSQL's outbox, and SQLite's
/// before the ring (still read back and emptied there).
pub const TABLE: &str = "_vsamrd_change_outbox";

/// What became of a staged row at the store's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// No row went: none was staged, or the commit failed and its
    /// transaction was rolled back.
    #[default]
    NotWritten,
    /// The row was committed with the group.
    Written,
    /// The COMMIT was sent and no answer came (a connection lost, the
    /// call's limit passed): the server may have committed the group, row
    /// and all. The log reads the outbox back before the backend writes
    /// again (see `changes::outboxes::Outboxes::await_outcome`).
    InDoubt,
}

/// A group's row, staged by the backend's task before the store's sync.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// The change log's id (see `ChangeLog::id`).
    pub log_id: String,
    /// The backend whose group it is.
    pub backend: String,
    /// The group's number in the log.
    pub group: u64,
    /// The group's changes, as the log encodes a prepared group.
    pub changes: Vec<u8>,
}

/// The table, as each database keeps it best.
///
/// SQLite: one B-tree keyed by an integer the insert appends, so that a
/// group's row adds one page to its commit. A key of (log, backend,
/// group) costs a second B-tree (the key's index beside the rows; or,
/// without a rowid, rows past a quarter page spill into overflow pages):
/// every page counts here, since the row is written at every commit.
/// `bench/outbox_layout.py` measures it: commits of four small changes
/// ran 6-15% slower with a keyed row than with none, 0-11% with this
/// layout (five runs, each of its rounds in turn). The table holds a few
/// seconds of groups (deleted once the log is durable), so reading one
/// log's rows by scanning them costs nothing worth an index.
///
/// PostgreSQL keeps the key: a fleet of servers shares its database, and
/// the key says that no two of them write the same group.
fn create_statement(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (log_id TEXT NOT NULL, backend TEXT NOT NULL, grp BIGINT NOT NULL, changes BYTEA NOT NULL, PRIMARY KEY (log_id, backend, grp))"
        ),
        Dialect::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, log_id TEXT NOT NULL, backend TEXT NOT NULL, grp BIGINT NOT NULL, changes BLOB NOT NULL)"
        ),
    }
}

fn placeholders(dialect: Dialect, count: usize) -> Vec<String> {
    (1..=count)
        .map(|n| match dialect {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => "?".to_string(),
        })
        .collect()
}

/// Writes `row` in the session's open transaction (the table is made the
/// first time); a failure leaves the transaction to be rolled back.
pub(super) async fn write(session: &mut SqlSession, row: &OutboxRow) -> Result<(), SqlError> {
    let dialect = session.dialect().await?;
    if dialect == Dialect::Sqlite {
        return write_slot(session, row).await;
    }
    if !session.outbox_table_known {
        // Not a batch: PostgreSQL connections forget their prepared
        // statements after a batch that changes tables.
        session.execute(&create_statement(dialect), &[]).await?;
        session.outbox_table_known = true;
    }
    insert(session, dialect, row).await.map(drop)
}

/// Inserts `row` in the session's open transaction.
async fn insert(
    session: &mut SqlSession,
    dialect: Dialect,
    row: &OutboxRow,
) -> Result<u64, SqlError> {
    let p = placeholders(dialect, 4);
    session
        .execute(
            &format!(
                "INSERT INTO {TABLE} (log_id, backend, grp, changes) VALUES ({}, {}, {}, {})",
                p[0], p[1], p[2], p[3]
            ),
            &[
                Value::Text(row.log_id.clone()),
                Value::Text(row.backend.clone()),
                Value::Integer(row.group as i64),
                Value::Blob(row.changes.clone()),
            ],
        )
        .await
}

/// Waits until no transaction that may still commit group `group` of log
/// `log_id` and `backend` runs (a COMMIT whose answer was lost), then
/// answers whether the group's row is committed. An INSERT of the same
/// key waits for the transaction holding it, and fails once that one
/// committed; it is rolled back either way. PostgreSQL only: SQLite runs
/// in this process, where a failed COMMIT has ended.
pub async fn await_outcome(
    grant: &Arc<SqlGrant>,
    log_id: &str,
    backend: &str,
    group: u64,
) -> Result<bool, SqlError> {
    let mut session = SqlSession::new(Some(grant.clone()));
    if session.dialect().await? != Dialect::Postgres {
        return Ok(false);
    }
    session.begin().await?;
    let placeholder = OutboxRow {
        log_id: log_id.to_string(),
        backend: backend.to_string(),
        group,
        changes: Vec::new(),
    };
    let probe = insert(&mut session, Dialect::Postgres, &placeholder).await;
    let _ = session.rollback().await;
    match probe {
        Ok(_) => Ok(false),
        Err(SqlError::Constraint(_)) => Ok(true),
        Err(error) => Err(error),
    }
}

/// Longest [`await_unfinished`] waits for a transaction still committing.
pub const UNFINISHED_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits until no transaction that may still commit a group of log
/// `log_id` and `backend` numbered in `groups` runs: the transaction a
/// SIGKILL of vsamrd left on its way through COMMIT goes on in PostgreSQL,
/// and the outbox must not be read back before it has ended (a row
/// committed after the reading would never reach the log, and the emptier
/// would delete it). An INSERT of every key in the range waits for each
/// transaction holding one of them, and is rolled back. It waits at most
/// [`UNFINISHED_WAIT`], so that a COMMIT stuck in the server (a standby
/// that does not confirm) holds only this backend's writes, which the
/// caller refuses until a later try succeeds. PostgreSQL only: an SQLite
/// transaction ends with the process that ran it.
pub async fn await_unfinished(
    grant: &Arc<SqlGrant>,
    log_id: &str,
    backend: &str,
    groups: std::ops::Range<u64>,
) -> Result<(), SqlError> {
    let mut session = SqlSession::new(Some(grant.clone()));
    if groups.is_empty() || session.dialect().await? != Dialect::Postgres {
        return Ok(());
    }
    session.batch(&create_statement(Dialect::Postgres)).await?;
    session.begin().await?;
    session
        .execute(
            &format!("SET LOCAL lock_timeout = {}", UNFINISHED_WAIT.as_millis()),
            &[],
        )
        .await?;
    let probe = session
        .execute(
            &format!(
                "INSERT INTO {TABLE} (log_id, backend, grp, changes) \
                 SELECT $1, $2, g, ''::bytea FROM generate_series($3::bigint, $4::bigint) AS g \
                 ON CONFLICT DO NOTHING"
            ),
            &[
                Value::Text(log_id.to_string()),
                Value::Text(backend.to_string()),
                Value::Integer(groups.start as i64),
                Value::Integer(groups.end as i64 - 1),
            ],
        )
        .await;
    let _ = session.rollback().await;
    probe.map(drop)
}

/// Deletes the rows of log `log_id` and `backend` up to group `through`
/// (the log holds them durably), on a connection of its own; makes the
/// table first when `make` (a backend added by a reload has none yet).
pub async fn delete_through(
    grant: &Arc<SqlGrant>,
    log_id: &str,
    backend: &str,
    through: u64,
    make: bool,
) -> Result<u64, SqlError> {
    let mut session = SqlSession::new(Some(grant.clone()));
    let dialect = session.dialect().await?;
    if dialect == Dialect::Sqlite {
        return empty_lane(&mut session, log_id, backend, through).await;
    }
    if make {
        session.execute(&create_statement(dialect), &[]).await?;
    }
    let p = placeholders(dialect, 3);
    session
        .execute(
            &format!(
                "DELETE FROM {TABLE} WHERE log_id = {} AND backend = {} AND grp <= {}",
                p[0], p[1], p[2]
            ),
            &[
                Value::Text(log_id.to_string()),
                Value::Text(backend.to_string()),
                Value::Integer(through as i64),
            ],
        )
        .await
}

/// The rows of log `log_id` and `backend` in the granted database, by
/// group: (group, encoded changes). None when the table was never made.
pub async fn read(
    grant: &Arc<SqlGrant>,
    log_id: &str,
    backend: &str,
) -> Result<Vec<(u64, Vec<u8>)>, SqlError> {
    let mut session = SqlSession::new(Some(grant.clone()));
    let dialect = session.dialect().await?;
    if dialect == Dialect::Sqlite {
        return read_ring(&mut session, log_id, backend).await;
    }
    session.batch(&create_statement(dialect)).await?;
    let p = placeholders(dialect, 2);
    let rows = session
        .query(
            &format!(
                "SELECT grp, changes FROM {TABLE} WHERE log_id = {} AND backend = {} ORDER BY grp",
                p[0], p[1]
            ),
            &[
                Value::Text(log_id.to_string()),
                Value::Text(backend.to_string()),
            ],
        )
        .await?;
    rows.into_iter()
        .map(|row| match row.as_slice() {
            [Value::Integer(group), Value::Blob(changes)] => Ok((*group as u64, changes.clone())),
            other => Err(SqlError::Failed(format!(
                "{TABLE}: a row is not (group, changes): {other:?}"
            ))),
        })
        .collect()
}

/// The lanes of an SQLite outbox that no backend of this server writes:
/// any but (`log_id`, one of `backends`), as (log, backend). None on
/// PostgreSQL, whose outbox the servers of a fleet share (and whose rows
/// are deleted once a log holds them, not kept in slots).
pub async fn unwritten_lanes(
    grant: &Arc<SqlGrant>,
    log_id: &str,
    backends: &[String],
) -> Result<Vec<(String, String)>, SqlError> {
    let mut session = SqlSession::new(Some(grant.clone()));
    if session.dialect().await? != Dialect::Sqlite {
        return Ok(Vec::new());
    }
    other_lanes(&mut session, log_id, backends).await
}

/// Removes the lane of (`log_id`, `backend`) from an SQLite outbox, with
/// its slots: a lane no server writes again would keep up to 16,384
/// groups in the backend's database for good. How many slots it held.
pub async fn remove_unwritten_lane(
    grant: &Arc<SqlGrant>,
    log_id: &str,
    backend: &str,
) -> Result<u64, SqlError> {
    let mut session = SqlSession::new(Some(grant.clone()));
    remove_lane(&mut session, log_id, backend).await
}

/// An SQL error as a sentence.
pub fn error_text(error: &SqlError) -> String {
    match error {
        SqlError::NotGranted => "the backend has no database".into(),
        SqlError::Unavailable(m) => format!("the database cannot be reached: {m}"),
        SqlError::Constraint(m) => format!("a constraint was violated: {m}"),
        SqlError::NoSpace(m) => format!("the database is out of space: {m}"),
        SqlError::Failed(m) => m.clone(),
    }
}

#[cfg(test)]
mod tests;
