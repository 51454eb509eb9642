//! The change stream as rows of a PostgreSQL table (`stream =
//! "postgres"`), for programs that read an outbox table: a Debezium-style
//! connector capturing its inserts, or a job polling
//! `WHERE sequence > LAST ORDER BY sequence`.
//!
//! Each change is a row: `sequence` (its key), `time`, `dataset`,
//! `operation`, `key` (hex) and `change`, the JSON object a stream file's
//! line holds (`json`: see [`StreamTableWriter::definition`]). A batch's
//! rows and the stream's position go in one transaction, so that the table
//! and its position never disagree; the log is made durable first, so that
//! a row once written always names the same change, and a batch written
//! again after a commit whose answer was lost adds nothing (`ON CONFLICT
//! DO NOTHING`). One server writes one table: the position table
//! `NAME_position` names the change log that writes it, and another log (a
//! second server, or a data dir made anew, whose sequence numbers start
//! again) is refused with what to do.

use crate::config::StreamTable;
use crate::runtime::sql::outbox::error_text;
use crate::runtime::sql::{SqlError, SqlGrant, SqlSession, Value};
use std::sync::Arc;
use std::time::Duration;

/// Longest a statement of the stream waits for PostgreSQL.
const STATEMENT_LIMIT: Duration = Duration::from_secs(30);

/// A change stream's table, as this server writes it.
pub struct StreamTableWriter {
    settings: StreamTable,
    log_id: String,
    grant: Arc<SqlGrant>,
}

impl StreamTableWriter {
    /// The writer of `settings`' table for the change log `log_id`.
    pub fn new(settings: StreamTable, log_id: &str) -> anyhow::Result<Self> {
        let grant = SqlGrant::for_vsamrd(&settings.database, STATEMENT_LIMIT)?;
        Ok(Self {
            settings,
            log_id: log_id.to_string(),
            grant,
        })
    }

    /// Where the stream goes, for the status (the password hidden).
    pub fn describe(settings: &StreamTable) -> String {
        format!("table {} of {}", settings.name, settings.database)
    }

    fn position_table(&self) -> String {
        format!("{}_position", self.settings.name)
    }

    /// Makes the tables if they are not there, claims them for this
    /// server's log and answers the sequence number the stream goes on
    /// after: the saved position, or `head` for a new stream.
    pub async fn open(&self, head: u64) -> Result<u64, String> {
        let (table, position) = (&self.settings.name, self.position_table());
        let mut session = self.session();
        // Made only when missing: a role that may not create tables (on
        // PostgreSQL 15 and later, CREATE on the public schema is the
        // owner's) writes tables a DBA made for it.
        if !self.check_columns(&mut session).await? {
            session
                .batch(&Self::definition(table))
                .await
                .map_err(|e| self.failed("cannot make its tables", &e))?;
            if !self.check_columns(&mut session).await? {
                return Err(format!(
                    "{}: its tables are not there after they were made",
                    Self::describe(&self.settings)
                ));
            }
        }
        self.in_transaction(&mut session, async |session: &mut SqlSession| {
            let saved = session
                .query(
                    &format!("SELECT log_id, position FROM {position} FOR UPDATE"),
                    &[],
                )
                .await?;
            match saved.first().map(Vec::as_slice) {
                Some([Value::Text(log_id), Value::Integer(after)]) if *log_id == self.log_id => {
                    Ok(if *after as u64 > head {
                        Err(self.ahead_of_the_log(*after as u64, head))
                    } else {
                        Ok(*after as u64)
                    })
                }
                Some([Value::Text(log_id), _]) => Ok(Err(self.claimed_by(log_id))),
                Some(other) => Ok(Err(format!("{position} holds an unexpected row: {other:?}"))),
                None => {
                    let rows = session
                        .query(&format!("SELECT max(sequence) FROM {table}"), &[])
                        .await?;
                    if let Some([Value::Integer(last)]) = rows.first().map(Vec::as_slice) {
                        return Ok(Err(format!(
                            "table {table} holds changes up to sequence {last} but {position} names no change log: they are not this server's; empty the table (its readers start again), or give the stream a table of its own (changes.stream_table)"
                        )));
                    }
                    session
                        .execute(
                            &format!("INSERT INTO {position} (log_id, position) VALUES ($1, $2)"),
                            &[
                                Value::Text(self.log_id.clone()),
                                Value::Integer(head as i64),
                            ],
                        )
                        .await?;
                    Ok(Ok(head))
                }
            }
        })
        .await?
    }

    /// The statements that make the stream's tables `table` and
    /// `table_position`. `change` is `json`, not `jsonb`: a text field of
    /// LOW-VALUES decodes to U+0000, which `jsonb` refuses; `json` keeps the
    /// object's text as the file's line has it.
    pub fn definition(table: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (sequence BIGINT PRIMARY KEY, time TIMESTAMPTZ NOT NULL, \
             dataset TEXT NOT NULL, operation TEXT NOT NULL, key TEXT, change JSON NOT NULL); \
             CREATE TABLE IF NOT EXISTS {table}_position (only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row), \
             log_id TEXT NOT NULL, position BIGINT NOT NULL)"
        )
    }

    /// Whether both tables are there; refuses a table of the name that is
    /// not a change stream's (a dataset's table, another program's): the
    /// stream must never write rows into it, nor take its rows for
    /// changes.
    async fn check_columns(&self, session: &mut SqlSession) -> Result<bool, String> {
        let rows = session
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name IN ($1, $2) \
                 ORDER BY table_name, ordinal_position",
                &[
                    Value::Text(self.settings.name.clone()),
                    Value::Text(self.position_table()),
                ],
            )
            .await
            .map_err(|e| self.failed("cannot read its columns", &e))?;
        let columns = |table: &str| -> Vec<String> {
            rows.iter()
                .filter(|row| matches!(&row[0], Value::Text(t) if t == table))
                .filter_map(|row| match &row[1] {
                    Value::Text(column) => Some(column.clone()),
                    _ => None,
                })
                .collect()
        };
        for (table, wanted) in [
            (
                self.settings.name.clone(),
                &["sequence", "time", "dataset", "operation", "key", "change"][..],
            ),
            (
                self.position_table(),
                &["only_row", "log_id", "position"][..],
            ),
        ] {
            let found = columns(&table);
            if found.is_empty() {
                return Ok(false);
            }
            if found != wanted {
                return Err(format!(
                    "{}: table {table} is there with other columns ({}) than a change stream's ({}): it is not the stream's; give the stream a table of its own (changes.stream_table)",
                    Self::describe(&self.settings),
                    found.join(", "),
                    wanted.join(", ")
                ));
            }
        }
        Ok(true)
    }

    /// Writes `lines` (the stream's objects) and the position `through`
    /// in one transaction.
    ///
    /// The rows' columns come from a second array of the objects' plain
    /// members: PostgreSQL's `->>` reads every string of the object it
    /// looks into, and refuses the U+0000 of a field of LOW-VALUES, which
    /// `json_array_elements` and the `json` column keep as they are.
    pub async fn append(&self, lines: &[serde_json::Value], through: u64) -> Result<(), String> {
        let table = &self.settings.name;
        let columns: Vec<serde_json::Value> = lines
            .iter()
            .map(|line| {
                let mut plain = serde_json::Map::new();
                for member in ["sequence", "time", "dataset", "operation", "key"] {
                    if let Some(value) = line.get(member) {
                        plain.insert(member.into(), value.clone());
                    }
                }
                serde_json::Value::Object(plain)
            })
            .collect();
        let params = [
            Value::Text(serde_json::to_string(&columns).expect("JSON to memory")),
            Value::Text(serde_json::to_string(lines).expect("JSON to memory")),
        ];
        let mut session = self.session();
        self.in_transaction(&mut session, async |session: &mut SqlSession| {
            if let Err(error) = self.advance(session, through).await? {
                return Ok(Err(error));
            }
            session
                .execute(
                    &format!(
                        "INSERT INTO {table} (sequence, time, dataset, operation, key, change) \
                         SELECT (m->>'sequence')::bigint, (m->>'time')::timestamptz, m->>'dataset', \
                         m->>'operation', m->>'key', c \
                         FROM json_array_elements($1::json) WITH ORDINALITY AS columns (m, n) \
                         JOIN json_array_elements($2::json) WITH ORDINALITY AS changes (c, n) USING (n) \
                         ON CONFLICT (sequence) DO NOTHING"
                    ),
                    &params,
                )
                .await?;
            Ok(Ok(()))
        })
        .await?
    }

    /// Saves the position `through` (past the last row when changes of
    /// datasets the stream does not carry came after it), and deletes the
    /// rows older than the changes the table keeps.
    pub async fn save(&self, through: u64) -> Result<(), String> {
        let table = &self.settings.name;
        let mut session = self.session();
        self.in_transaction(&mut session, async |session: &mut SqlSession| {
            if let Err(error) = self.advance(session, through).await? {
                return Ok(Err(error));
            }
            let oldest_kept = through.saturating_sub(self.settings.keep_changes);
            session
                .execute(
                    &format!("DELETE FROM {table} WHERE sequence <= $1"),
                    &[Value::Integer(oldest_kept as i64)],
                )
                .await?;
            Ok(Ok(()))
        })
        .await?
    }

    /// Moves the position to `through` if this server's log still holds
    /// the table.
    async fn advance(
        &self,
        session: &mut SqlSession,
        through: u64,
    ) -> Result<Result<(), String>, SqlError> {
        let position = self.position_table();
        let moved = session
            .execute(
                &format!(
                    "UPDATE {position} SET position = GREATEST(position, $1) WHERE log_id = $2"
                ),
                &[
                    Value::Integer(through as i64),
                    Value::Text(self.log_id.clone()),
                ],
            )
            .await?;
        if moved == 1 {
            return Ok(Ok(()));
        }
        let rows = session
            .query(&format!("SELECT log_id FROM {position}"), &[])
            .await?;
        Ok(Err(match rows.first().map(Vec::as_slice) {
            Some([Value::Text(log_id)]) => self.claimed_by(log_id),
            _ => format!(
                "{position} lost its row while the stream wrote {table}: put it back with INSERT INTO {position} (log_id, position) VALUES ('{}', {through}), or empty {table} so that its readers start again",
                self.log_id,
                table = self.settings.name
            ),
        }))
    }

    /// Runs `work` in a transaction, committed if it answers `Ok(Ok)`,
    /// rolled back otherwise.
    async fn in_transaction<T>(
        &self,
        session: &mut SqlSession,
        work: impl AsyncFnOnce(&mut SqlSession) -> Result<Result<T, String>, SqlError>,
    ) -> Result<Result<T, String>, String> {
        session
            .begin()
            .await
            .map_err(|e| self.failed("cannot begin", &e))?;
        match work(session).await {
            Ok(Ok(value)) => session
                .commit()
                .await
                .map(|()| Ok(value))
                .map_err(|e| self.failed("cannot commit", &e)),
            Ok(Err(refused)) => {
                let _ = session.rollback().await;
                Ok(Err(refused))
            }
            Err(error) => {
                let _ = session.rollback().await;
                Err(self.failed("cannot write", &error))
            }
        }
    }

    fn session(&self) -> SqlSession {
        SqlSession::new(Some(self.grant.clone()))
    }

    fn failed(&self, what: &str, error: &SqlError) -> String {
        format!(
            "{}: {what}: {}",
            Self::describe(&self.settings),
            error_text(error)
        )
    }

    /// Why a table written past the log's end is not gone on with: the
    /// log went back (the data dir, or its change log, put back from an
    /// older copy), so the sequence numbers past `head` will name other
    /// changes than the rows the table holds for them. Going on from the
    /// table's position would pass those new changes by unwritten.
    fn ahead_of_the_log(&self, after: u64, head: u64) -> String {
        let table = &self.settings.name;
        format!(
            "table {table} carries changes up to sequence {after}, past the end of this server's change log (sequence {head}): the data dir, or its change log, was put back from an older copy, and the sequence numbers past {head} will name other changes than the table's rows for them; once the table's readers know (they have read changes the restored data does not hold), delete those rows so that the stream goes on from the log: DELETE FROM {table} WHERE sequence > {head}; UPDATE {table}_position SET position = {head}"
        )
    }

    fn claimed_by(&self, log_id: &str) -> String {
        format!(
            "table {} carries the change stream of another change log (id {log_id}, this server's is {}): another server writes it, or this server's changes directory was made anew and its sequence numbers start again; give this server's stream a table of its own (changes.stream_table), or empty both {} and {}_position so that its readers start again from the next change",
            self.settings.name, self.log_id, self.settings.name, self.settings.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_gives_a_dba_the_statements_the_stream_runs() {
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
        )
        .unwrap();
        for statement in StreamTableWriter::definition("_vsamrd_change_stream").split("; ") {
            assert!(
                readme.contains(&format!("{statement};\n")),
                "README.md lacks: {statement};"
            );
        }
    }
}
