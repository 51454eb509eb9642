//! SQLite's outbox: a ring of slots written over in place, one lane per
//! (change log, backend), so that a group's row changes one page of the
//! commit and emptying moves a mark instead of deleting rows (see
//! [`Lane`]). The table of before the ring is still read back and emptied.

use super::{OutboxRow, TABLE};
use crate::runtime::bindings::wit_sql::Value;
use crate::runtime::sql::{SqlError, SqlSession};

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

pub(super) fn ring_statements() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {RING} (slot INTEGER PRIMARY KEY, grp BIGINT NOT NULL, changes BLOB NOT NULL); \
         CREATE TABLE IF NOT EXISTS {LANES} (lane INTEGER PRIMARY KEY, log_id TEXT NOT NULL, backend TEXT NOT NULL, emptied_through BIGINT NOT NULL DEFAULT 0, UNIQUE (log_id, backend))"
    )
}

/// The lane of (`log_id`, `backend`) in the session's SQLite database,
/// made if `make` (else `None` when it has none).
pub(super) async fn lane(
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
pub(super) async fn has_old_table(session: &mut SqlSession) -> Result<bool, SqlError> {
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

/// Writes `row` over its slot in its lane of SQLite's ring.
pub(super) async fn write_slot(session: &mut SqlSession, row: &OutboxRow) -> Result<(), SqlError> {
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

/// SQLite's [`delete_through`](super::delete_through): the lane's slots up to group `through` are
/// emptied (its mark moves; the next groups write over them, and the
/// changes of those past [`LARGE_GROUP_BYTES`] are cleared now), and the
/// rows of the table of before the ring are deleted. How many rows it
/// emptied.
pub(super) async fn empty_lane(
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
    session.settle(emptied).await
}

/// The lanes of SQLite's ring other than (`log_id`, one of `backends`):
/// those of a change log made anew since (its directory removed or
/// moved), and of backends renamed or removed since, as (log, backend).
pub(super) async fn other_lanes(
    session: &mut SqlSession,
    log_id: &str,
    backends: &[String],
) -> Result<Vec<(String, String)>, SqlError> {
    session.batch(&ring_statements()).await?;
    let rows = session
        .query(&format!("SELECT log_id, backend FROM {LANES}"), &[])
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [Value::Text(log), Value::Text(backend)] => Some((log.clone(), backend.clone())),
            _ => None,
        })
        .filter(|(log, backend)| log != log_id || !backends.contains(backend))
        .collect())
}

/// Removes the lane of (`log_id`, `backend`) from SQLite's ring, its slots
/// with it, in one transaction. How many slots it held.
pub(super) async fn remove_lane(
    session: &mut SqlSession,
    log_id: &str,
    backend: &str,
) -> Result<u64, SqlError> {
    session.begin().await?;
    let removed = async {
        let Some(lane) = lane(session, log_id, backend, false).await? else {
            return Ok(0);
        };
        let (first, end) = lane.slots();
        let slots = session
            .execute(
                &format!("DELETE FROM {RING} WHERE slot >= ? AND slot < ?"),
                &[Value::Integer(first), Value::Integer(end)],
            )
            .await?;
        session
            .execute(
                &format!("DELETE FROM {LANES} WHERE lane = ?"),
                &[Value::Integer(lane.number)],
            )
            .await?;
        Ok(slots)
    }
    .await;
    session.settle(removed).await
}

/// SQLite's [`read`](super::read): the rows of the table of before the ring, then the
/// lane's slots past its mark, by group.
pub(super) async fn read_ring(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
