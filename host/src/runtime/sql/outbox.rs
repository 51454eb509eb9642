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

use super::{SqlError, SqlGrant, SqlSession};
use crate::runtime::bindings::wit_sql::{Dialect, Value};
use std::sync::Arc;

/// The table's name: one no dataset's table can have (a dataset's name
/// starts with a letter or a national character, so its table's name never
/// starts with a single underscore; the SQL plugin's catalog is
/// `_vsam_catalog` for the same reason). PostgreSQL's outbox, and SQLite's
/// before the ring (still read back and emptied there).
pub const TABLE: &str = "_vsamrd_change_outbox";

/// SQLite's outbox: a ring of slots, each (log, backend) a lane of its
/// own.
pub const RING: &str = "_vsamrd_change_ring";

/// The lanes of SQLite's ring: which (log, backend) each is, and up to
/// which group its slots are emptied (the log holds them durably).
pub const LANES: &str = "_vsamrd_change_lanes";

/// Slots in a lane: group `g` goes to slot `g % SLOTS` of its lane, over
/// the group `SLOTS` before it, which the log must hold durably by then
/// (the backend's task makes the log durable first when it does not: see
/// `runtime::worker::group`). At several thousand groups a second and the
/// log made durable every second, a slot is written again after several
/// seconds.
pub const SLOTS: u64 = 16_384;

/// A group's changes past this size are cleared from its slot once the
/// log holds the group durably, so that the ring keeps no more than
/// `SLOTS` groups of a page each whatever the groups' size.
///
/// Why: a slot is written over only when its lane comes round again, so
/// without this the ring would keep the last `SLOTS` groups whole: a batch
/// committing units of ten thousand records would leave gigabytes in the
/// primary's database for good. A row of this size or less fits in its
/// page of the ring (4 KiB, SQLite's default) and stays there, written
/// over in place; a larger one spills into overflow pages, which the
/// clearing gives back to the database for the next large group.
pub const LARGE_GROUP_BYTES: usize = 4000;

/// The distance between two lanes' first slots.
const LANE_SPAN: i64 = 1 << 32;

/// An SQLite outbox's lane, as a session found it: the (log, backend) it
/// serves and its number.
///
/// Why a ring: an outbox row is written at every commit and emptied once
/// the log is durable. Appended and deleted, the rows made SQLite allocate
/// a page every few commits and free them by the hundred at each emptying
/// (the table's pages, its parent page, the free-list's pages and the
/// database header: 1.4 pages more in each commit's WAL, counted with
/// strace). A row written over a slot in place changes one page, and the
/// emptying moves a lane's mark instead of deleting. Measured with
/// `vsam-bench --only mirrors` (vsamrd as a process, SQLite primary): the
/// recording cost, 12-16% of the throughput with the appended rows, fell
/// to 5-7%, against 3-5% with no row at all.
#[derive(Debug, Clone)]
pub struct Lane {
    log_id: String,
    backend: String,
    number: i64,
}

impl Lane {
    /// Group `group`'s slot.
    fn slot(&self, group: u64) -> i64 {
        self.number * LANE_SPAN + (group % SLOTS) as i64
    }

    /// The slots groups `after + 1 ..= through` were written to, as at
    /// most two runs `[first, end)`: a group has one slot in its lane, so
    /// emptying them reads only these, not the whole lane (16,384 rows
    /// read twice in the writer's pause each second, 6 ms here, where a
    /// second's groups are a few thousand).
    fn spans(&self, after: u64, through: u64) -> Vec<(i64, i64)> {
        if through <= after {
            return Vec::new();
        }
        if through - after >= SLOTS {
            return vec![self.slots()];
        }
        let base = self.number * LANE_SPAN;
        let (from, to) = (((after + 1) % SLOTS) as i64, (through % SLOTS) as i64);
        if from <= to {
            vec![(base + from, base + to + 1)]
        } else {
            vec![(base + from, base + SLOTS as i64), (base, base + to + 1)]
        }
    }

    /// The lane's slots.
    fn slots(&self) -> (i64, i64) {
        (
            self.number * LANE_SPAN,
            self.number * LANE_SPAN + SLOTS as i64,
        )
    }
}

fn ring_statements() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {RING} (slot INTEGER PRIMARY KEY, grp BIGINT NOT NULL, changes BLOB NOT NULL); \
         CREATE TABLE IF NOT EXISTS {LANES} (lane INTEGER PRIMARY KEY, log_id TEXT NOT NULL, backend TEXT NOT NULL, emptied_through BIGINT NOT NULL DEFAULT 0, UNIQUE (log_id, backend))"
    )
}

/// The lane of (`log_id`, `backend`) in the session's SQLite database,
/// made if `make` (else `None` when it has none).
async fn lane(
    session: &mut SqlSession,
    log_id: &str,
    backend: &str,
    make: bool,
) -> Result<Option<Lane>, SqlError> {
    let key = [
        Value::Text(log_id.to_string()),
        Value::Text(backend.to_string()),
    ];
    if make {
        session
            .execute(
                &format!("INSERT OR IGNORE INTO {LANES} (log_id, backend) VALUES (?, ?)"),
                &key,
            )
            .await?;
    }
    let rows = session
        .query(
            &format!("SELECT lane FROM {LANES} WHERE log_id = ? AND backend = ?"),
            &key,
        )
        .await?;
    Ok(match rows.first().map(Vec::as_slice) {
        Some([Value::Integer(number)]) => Some(Lane {
            log_id: log_id.to_string(),
            backend: backend.to_string(),
            number: *number,
        }),
        _ => None,
    })
}

/// True if the session's SQLite database has the outbox table of before
/// the ring.
async fn has_old_table(session: &mut SqlSession) -> Result<bool, SqlError> {
    let rows = session
        .query(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
            &[Value::Text(TABLE.to_string())],
        )
        .await?;
    Ok(matches!(
        rows.first().map(Vec::as_slice),
        Some([Value::Integer(1)])
    ))
}

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

/// Writes `row` over its slot in its lane of SQLite's ring.
async fn write_slot(session: &mut SqlSession, row: &OutboxRow) -> Result<(), SqlError> {
    if !session.outbox_table_known {
        session.batch(&ring_statements()).await?;
        session.outbox_table_known = true;
    }
    let known = session
        .outbox_lane
        .as_ref()
        .filter(|lane| lane.log_id == row.log_id && lane.backend == row.backend)
        .cloned();
    let lane = match known {
        Some(lane) => lane,
        None => {
            let lane = lane(session, &row.log_id, &row.backend, true)
                .await?
                .ok_or_else(|| SqlError::Failed(format!("{LANES}: the lane was not made")))?;
            session.outbox_lane = Some(lane.clone());
            lane
        }
    };
    session
        .execute(
            &format!(
                "INSERT INTO {RING} (slot, grp, changes) VALUES (?, ?, ?) \
                 ON CONFLICT (slot) DO UPDATE SET grp = excluded.grp, changes = excluded.changes"
            ),
            &[
                Value::Integer(lane.slot(row.group)),
                Value::Integer(row.group as i64),
                Value::Blob(row.changes.clone()),
            ],
        )
        .await
        .map(drop)
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

/// SQLite's [`delete_through`]: the lane's slots up to group `through` are
/// emptied (its mark moves; the next groups write over them, and the
/// changes of those past [`LARGE_GROUP_BYTES`] are cleared now), and the
/// rows of the table of before the ring are deleted. How many rows it
/// emptied.
async fn empty_lane(
    session: &mut SqlSession,
    log_id: &str,
    backend: &str,
    through: u64,
) -> Result<u64, SqlError> {
    session.batch(&ring_statements()).await?;
    session.begin().await?;
    let emptied = async {
        let mut emptied = 0;
        if has_old_table(session).await? {
            emptied += session
                .execute(
                    &format!("DELETE FROM {TABLE} WHERE log_id = ? AND backend = ? AND grp <= ?"),
                    &[
                        Value::Text(log_id.to_string()),
                        Value::Text(backend.to_string()),
                        Value::Integer(through as i64),
                    ],
                )
                .await?;
        }
        let Some(lane) = lane(session, log_id, backend, false).await? else {
            return Ok(emptied);
        };
        let marked = session
            .query(
                &format!("SELECT emptied_through FROM {LANES} WHERE lane = ?"),
                &[Value::Integer(lane.number)],
            )
            .await?;
        let after = match marked.first().map(Vec::as_slice) {
            Some([Value::Integer(after)]) => (*after).max(0) as u64,
            other => {
                return Err(SqlError::Failed(format!(
                    "{LANES}: lane {} has no mark: {other:?}",
                    lane.number
                )));
            }
        };
        for (first, end) in lane.spans(after, through) {
            let span = [
                Value::Integer(first),
                Value::Integer(end),
                Value::Integer(after as i64),
                Value::Integer(through as i64),
            ];
            let passed = session
                .query(
                    &format!(
                        "SELECT count(*) FROM {RING} WHERE slot >= ? AND slot < ? AND grp > ? AND grp <= ?"
                    ),
                    &span,
                )
                .await?;
            if let Some([Value::Integer(count)]) = passed.first().map(Vec::as_slice) {
                emptied += *count as u64;
            }
            session
                .execute(
                    &format!(
                        "UPDATE {RING} SET changes = x'' WHERE slot >= ? AND slot < ? AND grp > ? AND grp <= ? \
                         AND length(changes) > {LARGE_GROUP_BYTES}"
                    ),
                    &span,
                )
                .await?;
        }
        session
            .execute(
                &format!(
                    "UPDATE {LANES} SET emptied_through = max(emptied_through, ?) WHERE lane = ?"
                ),
                &[Value::Integer(through as i64), Value::Integer(lane.number)],
            )
            .await?;
        Ok(emptied)
    }
    .await;
    match emptied {
        Ok(emptied) => session.commit().await.map(|()| emptied),
        Err(error) => {
            let _ = session.rollback().await;
            Err(error)
        }
    }
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

/// SQLite's [`read`]: the rows of the table of before the ring, then the
/// lane's slots past its mark, by group.
async fn read_ring(
    session: &mut SqlSession,
    log_id: &str,
    backend: &str,
) -> Result<Vec<(u64, Vec<u8>)>, SqlError> {
    session.batch(&ring_statements()).await?;
    let mut rows = Vec::new();
    if has_old_table(session).await? {
        rows.extend(
            session
                .query(
                    &format!(
                        "SELECT grp, changes FROM {TABLE} WHERE log_id = ? AND backend = ? ORDER BY grp"
                    ),
                    &[
                        Value::Text(log_id.to_string()),
                        Value::Text(backend.to_string()),
                    ],
                )
                .await?,
        );
    }
    if let Some(lane) = lane(session, log_id, backend, false).await? {
        let (first, end) = lane.slots();
        rows.extend(
            session
                .query(
                    &format!(
                        "SELECT grp, changes FROM {RING} WHERE slot >= ? AND slot < ? \
                         AND grp > (SELECT emptied_through FROM {LANES} WHERE lane = ?) ORDER BY grp"
                    ),
                    &[
                        Value::Integer(first),
                        Value::Integer(end),
                        Value::Integer(lane.number),
                    ],
                )
                .await?,
        );
    }
    let mut groups = rows
        .into_iter()
        .map(|row| match row.as_slice() {
            [Value::Integer(group), Value::Blob(changes)] => Ok((*group as u64, changes.clone())),
            other => Err(SqlError::Failed(format!(
                "{RING}: a row is not (group, changes): {other:?}"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    groups.sort_by_key(|(group, _)| *group);
    groups.dedup_by_key(|(group, _)| *group);
    Ok(groups)
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

    /// A fresh SQLite file: its directory, grant and a session on it.
    fn sqlite_store() -> (tempfile::TempDir, Arc<SqlGrant>, SqlSession) {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("store.db"));
        let timeout = std::time::Duration::from_secs(5);
        let grant = SqlGrant::new(&url, timeout, &tokio::runtime::Handle::current()).unwrap();
        let session = SqlSession::new(Some(grant.clone()));
        (dir, grant, session)
    }

    #[tokio::test]
    async fn a_group_whose_row_cannot_be_written_is_rolled_back_whole() {
        let (_dir, _grant, mut session) = sqlite_store();
        // A ring of that name the host cannot write (made by hand).
        session
            .batch(&format!("CREATE TABLE {RING} (x INTEGER)"))
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
        assert_eq!(session.take_outbox_outcome(), Outcome::NotWritten);
        let rows = session.query("SELECT count(*) FROM t", &[]).await.unwrap();
        assert!(
            matches!(rows.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(0)])),
            "the plugin's write stayed: {rows:?}"
        );
    }

    /// Commits one group with its outbox row, as a backend's task does.
    async fn commit_group(session: &mut SqlSession, log_id: &str, backend: &str, group: u64) {
        session.begin().await.unwrap();
        session
            .execute("INSERT INTO t VALUES (?)", &[Value::Integer(group as i64)])
            .await
            .unwrap();
        assert!(session.stage_outbox(OutboxRow {
            log_id: log_id.into(),
            backend: backend.into(),
            group,
            changes: format!("{log_id}/{backend}/{group}").into_bytes(),
        }));
        session.commit().await.unwrap();
        assert_eq!(session.take_outbox_outcome(), Outcome::Written);
    }

    /// Writes rows of two logs and two backends, reads and deletes some,
    /// in a table made by the host or made before (`made_before`); the
    /// session, to look at the table after.
    async fn rows_of_each_log_and_backend_stay_apart(
        made_before: Option<&str>,
    ) -> (tempfile::TempDir, SqlSession) {
        let (dir, grant, mut session) = sqlite_store();
        session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
        if let Some(schema) = made_before {
            session.batch(schema).await.unwrap();
        }
        for group in [1, 2, 3] {
            commit_group(&mut session, "log-a", "b1", group).await;
        }
        commit_group(&mut session, "log-b", "b1", 1).await;
        commit_group(&mut session, "log-a", "b2", 4).await;
        let text = |rows: Vec<(u64, Vec<u8>)>| {
            rows.into_iter()
                .map(|(group, changes)| (group, String::from_utf8(changes).unwrap()))
                .collect::<Vec<_>>()
        };
        let read_a1 = read(&grant, "log-a", "b1").await.unwrap();
        assert_eq!(
            text(read_a1),
            [(1, "log-a/b1/1"), (2, "log-a/b1/2"), (3, "log-a/b1/3")]
                .map(|(g, c)| (g, c.to_string()))
        );
        assert_eq!(
            delete_through(&grant, "log-a", "b1", 2, false)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            text(read(&grant, "log-a", "b1").await.unwrap()),
            [(3, "log-a/b1/3".to_string())]
        );
        assert_eq!(
            text(read(&grant, "log-b", "b1").await.unwrap()),
            [(1, "log-b/b1/1".to_string())]
        );
        assert_eq!(
            text(read(&grant, "log-a", "b2").await.unwrap()),
            [(4, "log-a/b2/4".to_string())]
        );
        (dir, session)
    }

    /// Counts the rows `sql` selects (a `count(*)`).
    async fn count(session: &mut SqlSession, sql: &str) -> i64 {
        match session.query(sql, &[]).await.unwrap().as_slice() {
            [row] => match row.as_slice() {
                [Value::Integer(count)] => *count,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_sqlite_outbox_writes_each_group_over_a_slot_and_keeps_logs_and_backends_apart() {
        let (dir, mut session) = rows_of_each_log_and_backend_stay_apart(None).await;
        // No index beside the slots: a commit writes one page of the ring.
        let indexes = count(
            &mut session,
            &format!(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = '{RING}'"
            ),
        )
        .await;
        assert_eq!(indexes, 0, "the ring has an index");
        // A group `SLOTS` later takes the slot of the one before: the ring
        // keeps its size, and the lane holds the newer group alone.
        let rows_before = count(&mut session, &format!("SELECT count(*) FROM {RING}")).await;
        commit_group(&mut session, "log-a", "b1", 3 + SLOTS).await;
        assert_eq!(
            count(&mut session, &format!("SELECT count(*) FROM {RING}")).await,
            rows_before
        );
        let grant = SqlGrant::new(
            &DatabaseUrl::Sqlite(dir.path().join("store.db")),
            std::time::Duration::from_secs(5),
            &tokio::runtime::Handle::current(),
        )
        .unwrap();
        let groups: Vec<u64> = read(&grant, "log-a", "b1")
            .await
            .unwrap()
            .into_iter()
            .map(|(group, _)| group)
            .collect();
        assert_eq!(groups, [3 + SLOTS]);
    }

    /// The database's size in pages.
    async fn pages(session: &mut SqlSession) -> i64 {
        count(session, "SELECT page_count FROM pragma_page_count()").await
    }

    #[tokio::test]
    async fn large_groups_leave_the_ring_once_emptied_and_their_pages_serve_the_next_ones() {
        let (_dir, grant, mut session) = sqlite_store();
        session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
        let commit = async |session: &mut SqlSession, group: u64, bytes: usize| {
            session.begin().await.unwrap();
            assert!(session.stage_outbox(OutboxRow {
                log_id: "log".into(),
                backend: "sql".into(),
                group,
                changes: vec![group as u8; bytes],
            }));
            session.commit().await.unwrap();
        };
        // A small group, then units of 200 KB each.
        commit(&mut session, 1, 300).await;
        for group in 2..=21 {
            commit(&mut session, group, 200_000).await;
        }
        let full = pages(&mut session).await;
        assert_eq!(
            delete_through(&grant, "log", "sql", 21, false)
                .await
                .unwrap(),
            21
        );
        let kept = count(
            &mut session,
            &format!("SELECT coalesce(sum(length(changes)), 0) FROM {RING}"),
        )
        .await;
        assert_eq!(
            kept, 300,
            "the small group stays in its slot, the large ones leave"
        );
        // The next large units take the pages the first ones gave back.
        for group in 22..=41 {
            commit(&mut session, group, 200_000).await;
        }
        let grown = pages(&mut session).await - full;
        assert!(
            grown < 20,
            "the database grew by {grown} pages for groups whose space was given back"
        );
        assert_eq!(
            read(&grant, "log", "sql")
                .await
                .unwrap()
                .into_iter()
                .map(|(group, changes)| (group, changes.len()))
                .collect::<Vec<_>>(),
            (22..=41).map(|group| (group, 200_000)).collect::<Vec<_>>(),
            "the groups not emptied are read back whole"
        );
    }

    #[test]
    fn the_slots_of_a_run_of_groups_wrap_round_the_lane_once_at_most() {
        let lane = Lane {
            log_id: "log".into(),
            backend: "sql".into(),
            number: 2,
        };
        let base = 2 * LANE_SPAN;
        let slots = SLOTS as i64;
        assert_eq!(lane.spans(10, 10), []);
        assert_eq!(lane.spans(10, 4), []);
        assert_eq!(lane.spans(10, 12), [(base + 11, base + 13)]);
        assert_eq!(
            lane.spans(SLOTS - 3, SLOTS + 1),
            [(base + slots - 2, base + slots), (base, base + 2)]
        );
        assert_eq!(lane.spans(SLOTS - 1, 2 * SLOTS - 1), [(base, base + slots)]);
        assert_eq!(lane.spans(0, SLOTS), [lane.slots()]);
        assert_eq!(lane.spans(5, 3 * SLOTS), [lane.slots()]);
    }

    #[tokio::test]
    async fn emptying_across_the_end_of_the_lane_clears_the_groups_on_both_sides_and_no_others() {
        let (_dir, grant, mut session) = sqlite_store();
        session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
        let commit = async |session: &mut SqlSession, group: u64| {
            session.begin().await.unwrap();
            assert!(session.stage_outbox(OutboxRow {
                log_id: "log".into(),
                backend: "sql".into(),
                group,
                changes: vec![group as u8; 5000],
            }));
            session.commit().await.unwrap();
        };
        commit(&mut session, 7).await;
        assert_eq!(
            delete_through(&grant, "log", "sql", SLOTS - 3, false)
                .await
                .unwrap(),
            1
        );
        // Slots 16382, 16383, 0 and 1, then 2.
        for group in SLOTS - 2..=SLOTS + 2 {
            commit(&mut session, group).await;
        }
        assert_eq!(
            delete_through(&grant, "log", "sql", SLOTS + 1, false)
                .await
                .unwrap(),
            4
        );
        let kept: Vec<(i64, i64)> = session
            .query(
                &format!("SELECT grp, length(changes) FROM {RING} ORDER BY grp"),
                &[],
            )
            .await
            .unwrap()
            .into_iter()
            .map(|row| match row.as_slice() {
                [Value::Integer(group), Value::Integer(length)] => (*group, *length),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kept,
            [7, SLOTS - 2, SLOTS - 1, SLOTS, SLOTS + 1, SLOTS + 2]
                .map(|group| (group as i64, if group == SLOTS + 2 { 5000 } else { 0 }))
                .to_vec(),
            "the emptied groups are cleared on both sides of the lane's end, the next one is kept"
        );
        assert_eq!(
            read(&grant, "log", "sql").await.unwrap().len(),
            1,
            "only the group past the mark is read back"
        );
    }

    #[tokio::test]
    async fn rows_an_earlier_version_left_in_the_outbox_table_are_read_back_and_emptied() {
        let (_dir, grant, mut session) = sqlite_store();
        session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
        // The keyed table of an earlier version, with a group it left.
        session
            .batch(&format!(
                "CREATE TABLE {TABLE} (log_id TEXT NOT NULL, backend TEXT NOT NULL, grp BIGINT NOT NULL, changes BLOB NOT NULL, PRIMARY KEY (log_id, backend, grp)); \
                 INSERT INTO {TABLE} VALUES ('log-a', 'b1', 1, x'01'), ('log-b', 'b1', 1, x'02')"
            ))
            .await
            .unwrap();
        commit_group(&mut session, "log-a", "b1", 2).await;
        let read_back = read(&grant, "log-a", "b1").await.unwrap();
        assert_eq!(
            read_back,
            [(1, vec![1]), (2, b"log-a/b1/2".to_vec())],
            "the old row, then the ring's"
        );
        assert_eq!(
            delete_through(&grant, "log-a", "b1", 2, false)
                .await
                .unwrap(),
            2
        );
        assert!(read(&grant, "log-a", "b1").await.unwrap().is_empty());
        assert_eq!(
            read(&grant, "log-b", "b1").await.unwrap(),
            [(1, vec![2])],
            "another log's old row stays"
        );
    }
}
