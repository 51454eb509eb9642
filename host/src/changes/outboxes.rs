//! The backends' change outboxes as the change log sees them: read back
//! at start-up (what the log lost, a group a stop left in doubt) and
//! emptied of what the log holds durably (see `runtime::sql::outbox` for
//! why they exist).

use super::capture::Capture;
use super::log::{ChangeLog, Prepared, decode_group};
use crate::after_panic::LockOrStop;
use crate::runtime::BackendHandle;
use crate::runtime::sql::outbox::{self, error_text};
use crate::runtime::sql::{DatabaseUrl, SqlGrant};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A backend with a database, where its outbox is.
#[derive(Clone)]
pub struct Database {
    /// The backend's name.
    pub name: String,
    /// Its database.
    pub url: DatabaseUrl,
    /// The backend itself: its writer empties an SQLite outbox (see
    /// [`Outboxes::empty`]).
    pub backend: BackendHandle,
}

/// The backends of `backends` that have a database.
pub fn databases<'a>(backends: impl IntoIterator<Item = &'a BackendHandle>) -> Vec<Database> {
    backends
        .into_iter()
        .filter_map(|b| {
            Some(Database {
                name: b.name().to_string(),
                url: b.database()?,
                backend: b.clone(),
            })
        })
        .collect()
}

/// How long a statement on an outbox may take.
const STATEMENT_LIMIT: Duration = Duration::from_secs(10);

/// The host's own connections to the backends' databases, and how far
/// each backend's outbox was emptied.
#[derive(Default)]
pub struct Outboxes {
    grants: Mutex<HashMap<String, Arc<SqlGrant>>>,
    emptied: Mutex<HashMap<String, u64>>,
    /// Backends (and databases: a reload may move one) whose outbox table
    /// is known to exist.
    made: Mutex<std::collections::HashSet<String>>,
}

impl Outboxes {
    fn grant(&self, url: &DatabaseUrl) -> Result<Arc<SqlGrant>, String> {
        let key = format!("{url:?}");
        let mut grants = self.grants.lock_or_stop();
        if let Some(grant) = grants.get(&key) {
            return Ok(grant.clone());
        }
        let grant = SqlGrant::for_vsamrd(url, STATEMENT_LIMIT).map_err(|e| format!("{e:#}"))?;
        grants.insert(key, grant.clone());
        Ok(grant)
    }

    /// Reads `backend`'s outbox back into the log: groups the log lost are
    /// written to it, committed; groups in `doubt` that the outbox holds
    /// were committed, and are settled so (taken out of `doubt`). A
    /// transaction a stop left committing a group of it is waited for
    /// first ([`outbox::await_unfinished`]). Returns how many groups it
    /// took back.
    pub async fn recover(
        &self,
        log: &ChangeLog,
        name: &str,
        url: &DatabaseUrl,
        doubt: &mut Vec<Prepared>,
    ) -> Result<usize, String> {
        let grant = self.grant(url)?;
        // A COMMIT a stop left running ends first: read before it, its row
        // would be missed, and deleted with the next rows emptied.
        outbox::await_unfinished(&grant, log.id(), name, log.unsettled_groups(name))
            .await
            .map_err(|e| {
                format!(
                    "waiting up to {:?} for any transaction an earlier run left committing a group of it: {}",
                    outbox::UNFINISHED_WAIT,
                    error_text(&e)
                )
            })?;
        let rows = outbox::read(&grant, log.id(), name)
            .await
            .map_err(|e| error_text(&e))?;
        self.made.lock_or_stop().insert(format!("{name} {url:?}"));
        if rows.is_empty() {
            return Ok(0);
        }
        let groups: Vec<u64> = rows.iter().map(|(group, _)| *group).collect();
        let missing: BTreeSet<u64> = log
            .missing(&groups)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let held: BTreeSet<u64> = groups.iter().copied().collect();
        let mut settled = 0;
        for prepared in std::mem::take(doubt) {
            if prepared.backend == name && held.contains(&prepared.group) {
                log.settle(prepared.group, true)
                    .map_err(|e| e.to_string())?;
                settled += 1;
            } else {
                doubt.push(prepared);
            }
        }
        for (group, encoded) in &rows {
            if !missing.contains(group) {
                continue;
            }
            let Some(prepared) = decode_group(encoded) else {
                return Err(format!(
                    "group {group} in its outbox ({}) cannot be read; the table may have been changed by hand",
                    outbox::TABLE
                ));
            };
            log.write_committed(*group, name, encoded, prepared.changes.len())
                .map_err(|e| e.to_string())?;
        }
        log.make_durable().map_err(|e| e.to_string())?;
        if settled + missing.len() > 0 {
            tracing::info!(
                "change log: {} group(s) of backend {name} taken back from its outbox ({} the log did not hold, {settled} a stop left in doubt)",
                settled + missing.len(),
                missing.len()
            );
        }
        Ok(settled + missing.len())
    }

    /// Waits until the transaction that may have committed `group` of
    /// `backend` (its COMMIT went unanswered) has ended, and answers
    /// whether it committed (see [`outbox::await_outcome`]).
    pub async fn await_outcome(
        &self,
        log: &ChangeLog,
        database: &Database,
        group: u64,
    ) -> Result<bool, String> {
        outbox::await_outcome(&self.grant(&database.url)?, log.id(), &database.name, group)
            .await
            .map_err(|e| error_text(&e))
    }

    /// Reads back the outbox of every backend in `backends` that has a
    /// database; a backend whose database cannot be read now is marked
    /// recovering in `capture` (its groups wait) and returned.
    pub async fn recover_all(
        &self,
        log: &ChangeLog,
        capture: &Capture,
        backends: &[Database],
        doubt: &mut Vec<Prepared>,
    ) -> Vec<Database> {
        let mut later = Vec::new();
        for database in backends {
            let (name, url) = (&database.name, &database.url);
            match self.recover(log, name, url, doubt).await {
                Ok(_) => capture.set_recovering(name, None),
                Err(error) => {
                    tracing::warn!(
                        "change log: the groups of backend {name} in its outbox cannot be taken back now ({error}); its writes wait until they are"
                    );
                    capture.set_recovering(
                        name,
                        Some(format!(
                            "the change log is taking back the groups of backend {name} from its outbox, which it cannot do now ({error})"
                        )),
                    );
                    later.push(database.clone());
                }
            }
        }
        later
    }

    /// At start, before any backend records a group: removes from the
    /// SQLite outboxes of `backends` (every backend with a database) the
    /// lanes none of them writes. A changes directory made anew leaves its
    /// old log's lanes, a backend renamed or removed its old name's, each
    /// up to 16,384 groups kept in the database for good. A lane of this
    /// log is read back first: its groups are this log's, written under the
    /// backend's former name. A database with a backend in `unread` (its
    /// outbox not read back yet) is left for the next start, as is a lane
    /// that cannot be read or removed now (with a warning).
    pub async fn remove_unwritten_lanes(
        &self,
        log: &ChangeLog,
        backends: &[Database],
        unread: &[Database],
        doubt: &mut Vec<Prepared>,
    ) {
        let mut by_database: HashMap<String, (DatabaseUrl, Vec<String>)> = HashMap::new();
        for database in backends {
            by_database
                .entry(format!("{:?}", database.url))
                .or_insert_with(|| (database.url.clone(), Vec::new()))
                .1
                .push(database.name.clone());
        }
        for (url, names) in by_database.into_values() {
            if unread.iter().any(|database| names.contains(&database.name)) {
                continue;
            }
            let lanes = match self.grant(&url) {
                Ok(grant) => outbox::unwritten_lanes(&grant, log.id(), &names)
                    .await
                    .map_err(|e| error_text(&e)),
                Err(error) => Err(error),
            };
            let lanes = match lanes {
                Ok(lanes) => lanes,
                Err(error) => {
                    tracing::warn!(
                        "change log: the outbox lanes of {url} cannot be read now: {error}"
                    );
                    continue;
                }
            };
            for (lane_log, backend) in lanes {
                let ours = lane_log == log.id();
                if ours && let Err(error) = self.recover(log, &backend, &url, doubt).await {
                    tracing::warn!(
                        "change log: the outbox lane of former backend {backend} in {url} cannot be read back now ({error}); it stays until a later start"
                    );
                    continue;
                }
                let removed = match self.grant(&url) {
                    Ok(grant) => outbox::remove_unwritten_lane(&grant, &lane_log, &backend)
                        .await
                        .map_err(|e| error_text(&e)),
                    Err(error) => Err(error),
                };
                match removed {
                    Ok(slots) => tracing::info!(
                        "change log: removed the outbox lane of backend {backend} of {} from {url} ({slots} slots), which no backend of this server writes",
                        if ours {
                            "this change log, its groups read back".to_string()
                        } else {
                            format!("change log {lane_log}, a log no longer in use")
                        }
                    ),
                    Err(error) => tracing::warn!(
                        "change log: the outbox lane of backend {backend} of change log {lane_log} in {url} cannot be removed now ({error}); it stays until a later start"
                    ),
                }
            }
        }
    }

    /// Deletes from each backend's outbox the rows the log holds durably
    /// (the caller made it durable). False if one could not be emptied:
    /// the log must then keep its segments.
    ///
    /// An SQLite outbox is emptied by the backend's writer between two of
    /// its groups (`BackendHandle::between_groups`): SQLite has one write
    /// lock, and a DELETE from a connection of its own held the writer in
    /// SQLite's busy wait (asleep on a runtime thread) while the DELETE
    /// held the other, which showed as lag spikes of the mirrors. A
    /// PostgreSQL outbox is emptied on a connection of the host's, beside
    /// the writer: rows are locked one by one there, and the writer need
    /// not wait on the network for it.
    pub async fn empty(&self, log: &ChangeLog, capture: &Capture, backends: &[Database]) -> bool {
        let mut all = true;
        for database in backends {
            let (name, url) = (&database.name, &database.url);
            if capture.recovering(name).is_some() {
                all = false;
                continue;
            }
            let through = log.durable_group(name);
            if self.emptied.lock_or_stop().get(name).copied().unwrap_or(0) >= through {
                continue;
            }
            let made = format!("{name} {url:?}");
            let make = !self.made.lock_or_stop().contains(&made);
            let result = match self.grant(url) {
                Ok(grant) => {
                    let (log_id, backend) = (log.id().to_string(), name.clone());
                    let delete = async move {
                        outbox::delete_through(&grant, &log_id, &backend, through, make)
                            .await
                            .map_err(|e| error_text(&e))
                    };
                    match url {
                        DatabaseUrl::Sqlite(_) => database
                            .backend
                            .between_groups(delete)
                            .await
                            .unwrap_or_else(|| Err(format!("backend {name} has stopped"))),
                        DatabaseUrl::Postgres(_) => delete.await,
                    }
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(_) => {
                    self.emptied.lock_or_stop().insert(name.clone(), through);
                    self.made.lock_or_stop().insert(made);
                }
                Err(error) => {
                    tracing::warn!(
                        "change log: cannot delete the rows the log holds from the outbox of backend {name} ({error}); tried again in a few seconds"
                    );
                    all = false;
                }
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::super::change::{Change, Operation};
    use super::super::log::encode_group;
    use super::*;
    use crate::runtime::sql::SqlSession;
    use crate::runtime::sql::outbox::OutboxRow;

    fn insert(key: &str) -> Change {
        super::super::log::tests::change(key, Operation::Insert)
    }

    /// A plugin's transaction that writes `key`, with the host's row of
    /// its group staged before the commit (or the rollback).
    async fn group(session: &mut SqlSession, log: &ChangeLog, key: &str, commit: bool) -> bool {
        session.begin().await.unwrap();
        session
            .execute("CREATE TABLE IF NOT EXISTS t (k TEXT)", &[])
            .await
            .unwrap();
        let group = log.take_group().unwrap();
        let row = OutboxRow {
            log_id: log.id().to_string(),
            backend: "sql".into(),
            group,
            changes: encode_group(group, "sql", &[insert(key)]),
        };
        assert!(session.stage_outbox(row));
        if commit {
            session.commit().await.unwrap();
        } else {
            session.rollback().await.unwrap();
        }
        session.take_outbox_outcome() == crate::runtime::sql::outbox::Outcome::Written
    }

    #[tokio::test]
    async fn a_committed_group_the_log_missed_is_taken_back_once_and_its_row_goes_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("store.db"));
        let grant = SqlGrant::for_vsamrd(&url, STATEMENT_LIMIT).unwrap();
        let (log, _) = ChangeLog::open(&dir.path().join("log"), 1 << 20).unwrap();
        let capture = Capture::new(log.clone(), vec!["A.*".into()], false);
        let mut session = SqlSession::new(Some(grant.clone()));
        let staged = OutboxRow {
            log_id: log.id().to_string(),
            backend: "sql".into(),
            group: 0,
            changes: Vec::new(),
        };
        assert!(!session.stage_outbox(staged), "no transaction to carry it");
        assert!(group(&mut session, &log, "K1", true).await);
        assert!(!group(&mut session, &log, "K2", false).await);
        let rows = outbox::read(&grant, log.id(), "sql").await.unwrap();
        assert_eq!(rows.len(), 1, "the rolled back group left no row");
        // A stop came before the log took the committed group.
        let outboxes = Outboxes::default();
        let mut doubt = Vec::new();
        assert_eq!(outboxes.recover(&log, "sql", &url, &mut doubt).await, Ok(1));
        assert_eq!(outboxes.recover(&log, "sql", &url, &mut doubt).await, Ok(0));
        let read = log.reader(0).next_batch(10).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].key, b"K1");
        // Another server's log on the same database sees none of it.
        assert!(
            outbox::read(&grant, "another", "sql")
                .await
                .unwrap()
                .is_empty()
        );
        // The backend whose writer empties the SQLite outbox.
        struct Idle;
        impl crate::runtime::call::RecordStore for Idle {
            fn call(&mut self, _: crate::runtime::call::Call) -> crate::runtime::call::CallResult {
                Ok(crate::runtime::call::Reply::Done)
            }
        }
        let backend = BackendHandle::spawn(
            "sql",
            crate::runtime::VersionInfo::native("idle"),
            Box::new(Idle),
            vec![],
        )
        .unwrap();
        let databases = [Database {
            name: "sql".into(),
            url: url.clone(),
            backend,
        }];
        assert!(outboxes.empty(&log, &capture, &databases).await);
        assert!(
            outbox::read(&grant, log.id(), "sql")
                .await
                .unwrap()
                .is_empty()
        );
        // A backend still being read back keeps its rows.
        assert!(group(&mut session, &log, "K3", true).await);
        capture.set_recovering("sql", Some("test".into()));
        log.make_durable().unwrap();
        assert!(!outboxes.empty(&log, &capture, &databases).await);
        assert_eq!(
            outbox::read(&grant, log.id(), "sql").await.unwrap().len(),
            1
        );
    }
}
