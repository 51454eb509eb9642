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
//! outbox. Rows the log holds durably are deleted in a later transaction.
//!
//! One table serves every server and backend on a database: rows are
//! keyed by the change log's id (one per server), the backend and the
//! group's number in that log.

use super::{SqlError, SqlGrant, SqlSession};
use crate::runtime::bindings::wit_sql::{Dialect, Value};
use std::sync::Arc;

/// The table's name: one no dataset's table can have (a dataset's name
/// starts with a letter or a national character, so its table's name never
/// starts with a single underscore; the SQL plugin's catalog is
/// `_vsam_catalog` for the same reason).
pub const TABLE: &str = "_vsamrd_change_outbox";

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

fn create_statement(dialect: Dialect) -> String {
    let bytes = match dialect {
        Dialect::Postgres => "BYTEA",
        Dialect::Sqlite => "BLOB",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (log_id TEXT NOT NULL, backend TEXT NOT NULL, grp BIGINT NOT NULL, changes {bytes} NOT NULL, PRIMARY KEY (log_id, backend, grp))"
    )
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
    if !session.outbox_table_known {
        // Not a batch: PostgreSQL connections forget their prepared
        // statements after a batch that changes tables.
        session.execute(&create_statement(dialect), &[]).await?;
        session.outbox_table_known = true;
    }
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
        .await?;
    Ok(())
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
mod tests {
    use super::*;
    use crate::runtime::sql::DatabaseUrl;

    #[tokio::test]
    async fn a_group_whose_row_cannot_be_written_is_rolled_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("store.db"));
        let grant = SqlGrant::new(
            &url,
            std::time::Duration::from_secs(5),
            &tokio::runtime::Handle::current(),
        )
        .unwrap();
        let mut session = SqlSession::new(Some(grant));
        // A table of that name the host cannot write (made by hand).
        session
            .batch(&format!("CREATE TABLE {TABLE} (x INTEGER)"))
            .await
            .unwrap();
        session
            .execute("CREATE TABLE t (k TEXT)", &[])
            .await
            .unwrap();
        session.begin().await.unwrap();
        session
            .execute("INSERT INTO t VALUES ('K1')", &[])
            .await
            .unwrap();
        let row = OutboxRow {
            log_id: "log".into(),
            backend: "sql".into(),
            group: 1,
            changes: vec![1, 2, 3],
        };
        assert!(session.stage_outbox(row));
        match session.commit().await {
            Err(SqlError::Failed(message)) => {
                assert!(message.contains("rolled back"), "{message}")
            }
            other => panic!("the commit went on: {other:?}"),
        }
        assert!(!session.take_outbox_written());
        let rows = session.query("SELECT count(*) FROM t", &[]).await.unwrap();
        assert!(
            matches!(rows.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(0)])),
            "the plugin's write stayed: {rows:?}"
        );
    }
}
