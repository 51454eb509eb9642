//! Group commit: a worker runs every job already queued, then asks its
//! store to `sync` once, and only then answers; a write whose instance a
//! fault dropped before the sync is answered as failed.

use super::super::call::{Call, CallError, CallResult, RecordStore, Reply};
use super::{Answer, CaptureSlot, Job};
use crate::changes::{Capture, Change, capture::complete};
use crate::runtime::sql::outbox::{self, OutboxRow, Outcome};
use std::sync::Arc;
use vsam_plugin_sdk::{Dataset, StoreError};

/// Merges each run of consecutive single GETs on one dataset into one
/// lookup job: a store that can answer many keys with one database round
/// trip does so. Nothing is reordered, so every GET still sees exactly the
/// writes queued before it.
fn coalesce_lookups(batch: Vec<Job>) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::with_capacity(batch.len());
    for job in batch {
        let job = match job {
            Job::Run {
                mut calls, answer, ..
            } if matches!(calls.as_slice(), [Call::Get(..)]) => {
                let Some(Call::Get(dataset, key)) = calls.pop() else {
                    unreachable!("matched one GET");
                };
                Job::Lookups {
                    dataset,
                    keys: vec![key],
                    answers: vec![answer],
                }
            }
            other => other,
        };
        match (out.last_mut(), job) {
            (
                Some(Job::Lookups {
                    dataset,
                    keys,
                    answers,
                }),
                Job::Lookups {
                    dataset: next,
                    keys: more_keys,
                    answers: more_answers,
                },
            ) if *dataset == next => {
                keys.extend(more_keys);
                answers.extend(more_answers);
            }
            (_, job) => out.push(job),
        }
    }
    out
}

/// The store as a group runs it, counting the faults: a fault drops the
/// plugin instance, and with it what the instance held unsynced (cached
/// intervals, an open transaction, unflushed rows).
struct Tracked<'a> {
    store: &'a mut dyn RecordStore,
    /// The message of each fault so far, in order.
    faults: Vec<String>,
}

impl Tracked<'_> {
    async fn call(&mut self, call: Call) -> CallResult {
        let result = self.store.call_async(call).await;
        if let Err(CallError::Fault(message)) = &result {
            self.faults.push(message.clone());
        }
        result
    }

    /// Which instance runs the next call: how many faults came before it.
    fn instance(&self) -> usize {
        self.faults.len()
    }

    fn reset(&mut self) {
        self.store.reset();
    }
}

/// Runs a lookup job: one `get` for one key, one `get-many` for several.
/// A `get-many` that faults (the instance was replaced) is asked again key
/// by key, so only a GET that itself makes the plugin fail fails.
async fn run_lookups(
    store: &mut Tracked<'_>,
    dataset: Dataset,
    keys: Vec<Vec<u8>>,
) -> Vec<CallResult> {
    let count = keys.len();
    if count == 1 {
        let key = keys.into_iter().next().expect("one key");
        return vec![store.call(Call::Get(dataset, key)).await];
    }
    match store
        .call(Call::GetMany(dataset.clone(), keys.clone()))
        .await
    {
        Ok(Reply::Records(records)) if records.len() == count => {
            records.into_iter().map(|r| Ok(Reply::Record(r))).collect()
        }
        Ok(other) => {
            let wrong = CallError::Fault(format!(
                "the plugin answered {count} lookups with {other:?}"
            ));
            vec![Err(wrong); count]
        }
        Err(CallError::Fault(_)) => {
            let mut results = Vec::with_capacity(count);
            for key in keys {
                results.push(store.call(Call::Get(dataset.clone(), key)).await);
            }
            results
        }
        Err(error) => vec![Err(error); count],
    }
}

/// Most jobs answered after one sync.
pub(super) const MAX_GROUP: usize = 256;

/// A call's result, and for a write the instance that ran it.
type Ran = (CallResult, Option<usize>);

/// Runs a batch of queued jobs: runs of ordinary jobs as groups sharing a
/// sync ([`run_writes`]), and each unit of work ([`run_unit`]) and chore
/// alone between them, once the group before is committed.
pub(super) async fn run_group(
    store: &mut dyn RecordStore,
    batch: Vec<Job>,
    slot: Option<&CaptureSlot>,
) {
    let capture = slot.and_then(CaptureSlot::current);
    let log = capture.as_deref().map(|capture| Log {
        capture,
        backend: &slot.expect("a capture comes from a slot").backend,
    });
    let mut segment = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Unit { calls, answer } => {
                if !segment.is_empty() {
                    run_writes(store, std::mem::take(&mut segment), log.as_ref()).await;
                }
                answer.send(run_unit(store, calls, log.as_ref()).await);
            }
            Job::Chore(chore) => {
                if !segment.is_empty() {
                    run_writes(store, std::mem::take(&mut segment), log.as_ref()).await;
                }
                chore.await;
            }
            job => segment.push(job),
        }
    }
    if !segment.is_empty() {
        run_writes(store, segment, log.as_ref()).await;
    }
}

/// A group's changes on their way to the log while its store commits.
enum Prepared {
    /// Written to the log as a prepare entry; the sync of it under way
    /// (none in strict durability: synced already).
    Logged {
        group: u64,
        syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    },
    /// Staged in the store's own database, committed with its sync; the
    /// log takes them after (see `runtime::sql::outbox`).
    Outboxed {
        group: u64,
        encoded: Vec<u8>,
        count: usize,
    },
}

/// The change log as one backend's group writes to it.
struct Log<'a> {
    capture: &'a Capture,
    backend: &'a str,
}

impl Log<'_> {
    /// The changes a call will make, if they are followed.
    fn draft(log: Option<&Self>, call: &Call) -> Vec<Change> {
        log.map(|log| log.capture.draft(call)).unwrap_or_default()
    }

    /// Why the group's writes are refused when the log cannot take them.
    fn refused(&self, error: impl std::fmt::Display) -> CallError {
        tracing::error!(
            backend = self.backend,
            "{error}; the group's writes are rolled back"
        );
        CallError::Store(StoreError::Io(format!(
            "the change log that mirrors and the change stream follow could not record the writes ({error}); they were rolled back: free the disk of the log, then repeat them"
        )))
    }

    /// Records the group's changes before the store commits them: staged
    /// in the store's outbox when it has one, else written to the log
    /// (synced too in strict durability). `None` when there are none; an
    /// error (the group must not be committed) when they cannot be.
    fn prepare(
        log: Option<&Self>,
        store: &mut dyn RecordStore,
        changes: &[Change],
    ) -> Result<Option<Prepared>, CallError> {
        let Some(log) = log.filter(|_| !changes.is_empty()) else {
            return Ok(None);
        };
        if let Some(why) = log.capture.lost() {
            return Err(CallError::Unavailable(why.to_string()));
        }
        if let Some(why) = log.capture.recovering(log.backend) {
            return Err(CallError::Store(StoreError::Io(format!(
                "not run: {why}; repeat the writes once it is done"
            ))));
        }
        let change_log = log.capture.log();
        if !log.capture.strict() {
            let group = change_log.take_group().map_err(|e| log.refused(e))?;
            // In an SQLite outbox the group's slot holds an earlier group,
            // which the log must hold durably before the slot is written
            // again (see `runtime::sql::outbox::Lane`).
            change_log
                .make_durable_before_slot(log.backend, group, outbox::SLOTS)
                .map_err(|e| log.refused(e))?;
            let encoded = crate::changes::log::encode_group(group, log.backend, changes);
            let row = OutboxRow {
                log_id: change_log.id().to_string(),
                backend: log.backend.to_string(),
                group,
                changes: encoded.clone(),
            };
            if store.stage_outbox(row) {
                return Ok(Some(Prepared::Outboxed {
                    group,
                    encoded,
                    count: changes.len(),
                }));
            }
        }
        let written = change_log
            .write_prepare(log.backend, changes)
            .map_err(|e| log.refused(e))?;
        let written = Arc::new(written);
        if log.capture.strict() {
            written.sync().map_err(|e| log.refused(e))?;
            return Ok(Some(Prepared::Logged {
                group: written.group,
                syncing: None,
            }));
        }
        // Synced on another thread while the store commits: a kill at any
        // moment finds the entry written, and the group is acknowledged
        // only once both are durable.
        let syncing = {
            let written = written.clone();
            tokio::task::spawn_blocking(move || written.sync())
        };
        Ok(Some(Prepared::Logged {
            group: written.group,
            syncing: Some(syncing),
        }))
    }

    /// Runs the store's sync of a prepared group (which answers what
    /// became of the staged outbox row) and the log's, then records the
    /// verdict.
    async fn commit(
        log: Option<&Self>,
        prepared: Option<Prepared>,
        sync: impl std::future::Future<Output = (Result<(), CallError>, Outcome)>,
    ) -> Result<(), CallError> {
        let (synced, outcome) = sync.await;
        let (Some(log), Some(prepared)) = (log, prepared) else {
            return synced;
        };
        let (group, syncing) = match prepared {
            Prepared::Logged { group, syncing } => (group, syncing),
            Prepared::Outboxed {
                group,
                encoded,
                count,
            } => {
                match (&synced, outcome) {
                    (Ok(()), outcome) => {
                        log.committed(group, &encoded, count, outcome == Outcome::Written)
                    }
                    (Err(error), Outcome::InDoubt) => log.in_doubt(group, error),
                    (Err(_), _) => {}
                }
                return synced;
            }
        };
        if let Some(syncing) = syncing {
            let logged = match syncing.await {
                Ok(result) => result,
                Err(error) => Err(std::io::Error::other(error)),
            };
            if let Err(error) = logged {
                // The store's commit stands; a power cut could still take
                // the log's record of it.
                tracing::error!(
                    backend = log.backend,
                    "{error}: the group is committed, but its changes may be missing from the change log after a power cut (`vsamr admin mirror verify` finds that)"
                );
            }
        }
        Self::verdict(Some(log), Some(group), synced.is_ok());
        synced
    }

    /// Writes a group the store committed to the log. Its outbox row
    /// keeps it until the log is durable; a store that committed without
    /// the row (its plugin ended the transaction another way) has the log
    /// synced now instead. A group the log cannot take (its disk full for
    /// so long that 64 MiB of entries wait) is taken back from the outbox
    /// before the backend writes again ([`Capture::not_logged`]).
    fn committed(&self, group: u64, encoded: &[u8], count: usize, outboxed: bool) {
        let change_log = self.capture.log();
        let written = change_log
            .write_committed(group, self.backend, encoded, count)
            .and_then(|_| match outboxed {
                true => Ok(()),
                false => change_log.make_durable(),
            });
        if !outboxed {
            tracing::warn!(
                backend = self.backend,
                "the plugin committed a group without the host's commit, so its outbox row was not written: the change log was synced after the commit instead (a stop in between loses the group's changes for mirrors and the stream)"
            );
        }
        match written {
            Ok(()) => {}
            Err(error) if outboxed => {
                tracing::error!(
                    backend = self.backend,
                    group,
                    "{error}: the group is committed, and the change log takes it back from the backend's outbox once it can write; the backend's writes wait until then"
                );
                self.capture.not_logged(
                    self.backend,
                    group,
                    format!(
                        "the change log could not take a committed group of backend {} ({error}), and takes it back from the backend's outbox once it can write: free the disk of the log",
                        self.backend
                    ),
                );
            }
            Err(error) => tracing::error!(
                backend = self.backend,
                "{error}: the group is committed without its outbox row, and mirrors and the change stream may miss it (`vsamr admin mirror verify` finds that, `resync` repairs it)"
            ),
        }
    }

    /// A group whose COMMIT went unanswered: the server may hold it. The
    /// backend's writes wait until the log has read its outbox back (see
    /// `changes::followers`), so that the group, if it was committed,
    /// takes its place in the log before any later one.
    fn in_doubt(&self, group: u64, error: &CallError) {
        tracing::warn!(
            backend = self.backend,
            group,
            "the commit of a group got no answer ({error}); the change log reads the backend's outbox back before its next writes"
        );
        self.capture.in_doubt(
            self.backend,
            group,
            format!(
                "a commit of backend {} got no answer ({error}), and the change log is finding out whether it was made",
                self.backend
            ),
        );
    }

    /// Records whether the store committed the prepared group.
    fn verdict(log: Option<&Self>, group: Option<u64>, committed: bool) {
        let (Some(log), Some(group)) = (log, group) else {
            return;
        };
        let result = if committed {
            log.capture.log().commit(group).map(drop)
        } else {
            log.capture.log().abort(group)
        };
        if let Err(error) = result {
            // The store's own state is settled; the log says so at the
            // next start, when the group in doubt is checked against it.
            tracing::error!(
                backend = log.backend,
                "{error}: mirrors and the change stream wait for this group until vsamrd starts again"
            );
        }
    }
}

/// Runs a unit of work's writes, then one sync that makes them all
/// durable. Everything before it was synced by the group before. On any
/// failure the instance is dropped, which discards every write of the
/// unit on a store that keeps units whole; a store that does not is
/// refused before anything runs.
async fn run_unit(
    store: &mut dyn RecordStore,
    calls: Vec<Call>,
    log: Option<&Log<'_>>,
) -> Vec<CallResult> {
    match store.call_async(Call::WholeUnits).await {
        Ok(Reply::Whole(true)) => {}
        _ => {
            return vec![Err(CallError::Store(vsam_plugin_sdk::StoreError::Invalid(
                "the plugin serving this backend now does not keep units of work whole (its units.whole is missing or false): the unit was not applied".into(),
            )))];
        }
    }
    let mut results = Vec::with_capacity(calls.len() + 1);
    let mut changes = Vec::new();
    for call in calls {
        let drafts = Log::draft(log, &call);
        let result = store.call_async(call).await;
        if let Ok(reply) = &result {
            changes.extend(complete(drafts, reply));
        }
        let failed = result.is_err();
        results.push(result);
        if failed {
            store.reset();
            return results;
        }
    }
    let prepared = match Log::prepare(log, store, &changes) {
        Ok(prepared) => prepared,
        Err(error) => {
            store.reset();
            results.push(Err(error));
            return results;
        }
    };
    let synced = Log::commit(log, prepared, async {
        let synced = store.call_async(Call::Sync).await.map(drop);
        (synced, store.outbox_outcome())
    })
    .await;
    if let Err(error) = synced {
        tracing::error!("sync of a unit of work failed, the unit is rolled back: {error}");
        store.reset();
        results.push(Err(error));
    }
    results
}

/// Runs queued calls, syncs once if any of them tried to write, then
/// answers them. A write is acknowledged only if the instance that ran it
/// is the one that synced: one a fault dropped mid-group took the write
/// with it, and the write is answered as failed.
async fn run_writes(store: &mut dyn RecordStore, batch: Vec<Job>, log: Option<&Log<'_>>) {
    let mut store = Tracked {
        store,
        faults: Vec::new(),
    };
    let mut done: Vec<(Answer, Vec<Ran>)> = Vec::with_capacity(batch.len());
    let mut wrote = false;
    let mut reset_after_sync = false;
    // The changes of followed datasets, by the instance that made them.
    let mut changes: Vec<(usize, Vec<Change>)> = Vec::new();
    for job in coalesce_lookups(batch) {
        let (calls, answer, recorded) = match job {
            Job::Run {
                calls,
                answer,
                recorded,
            } => (calls, answer, recorded),
            Job::Unit { calls, answer } => {
                // run_group runs units alone; one here runs the same way.
                answer.send(run_unit(store.store, calls, log).await);
                continue;
            }
            Job::Chore(chore) => {
                // run_group runs chores between groups; one here runs now.
                chore.await;
                continue;
            }
            Job::Reset if wrote => {
                // Writes of this group are in the instance until its sync.
                reset_after_sync = true;
                continue;
            }
            Job::Reset => {
                store.reset();
                continue;
            }
            // The serving task ends at a stop before a group forms.
            Job::Stop => continue,
            Job::Lookups {
                dataset,
                keys,
                answers,
            } => {
                let results = run_lookups(&mut store, dataset, keys).await;
                for (answer, result) in answers.into_iter().zip(results) {
                    done.push((answer, vec![(result, None)]));
                }
                continue;
            }
        };
        let mut results = Vec::with_capacity(calls.len());
        for call in calls {
            let write = call.is_write();
            let drafts = Log::draft(log.filter(|_| recorded), &call);
            let result = store.call(call).await;
            if let Ok(reply) = &result
                && !drafts.is_empty()
            {
                changes.push((store.instance(), complete(drafts, reply)));
            }
            let failed = result.is_err();
            // A group that tried to write ends with a sync even if every
            // write failed: the sync is where a plugin learns the group is
            // over (the SQL plugin refuses the rest of a group after a
            // failed statement, until its sync).
            wrote |= write;
            results.push((result, write.then(|| store.instance())));
            if failed {
                break;
            }
        }
        done.push((answer, results));
    }
    // Only the changes of the instance that syncs are committed: those of
    // an instance a fault replaced went with it.
    let survivor = store.instance();
    let changes: Vec<Change> = changes
        .into_iter()
        .filter(|(instance, _)| *instance == survivor)
        .flat_map(|(_, changes)| changes)
        .collect();
    let synced = match Log::prepare(log, store.store, &changes) {
        Err(error) => Err(error),
        Ok(prepared) => {
            Log::commit(log, prepared, async {
                if wrote {
                    let synced = store.call(Call::Sync).await.map(drop);
                    (synced, store.store.outbox_outcome())
                } else {
                    (Ok(()), Outcome::NotWritten)
                }
            })
            .await
        }
    };
    if let Err(error) = &synced {
        tracing::error!("sync failed, writes of this group are reported failed: {error}");
        store.reset();
    } else if reset_after_sync {
        store.reset();
    }
    // Why the writes each instance ran are not durable, if they are not.
    let lost = |instance: usize| -> Option<CallError> {
        match store.faults.get(instance) {
            Some(fault) => Some(CallError::Fault(format!(
                "not stored for certain: the plugin instance that ran this write was replaced before it was synced ({fault}); read the record before repeating the write"
            ))),
            None => synced.as_ref().err().cloned(),
        }
    };
    for (answer, results) in done {
        answer.send(acknowledged(results, &lost));
    }
}

/// A job's results as answered: up to its first write that was not made
/// durable, which fails with `lost`'s reason (the calls after it count as
/// not run, as after any failure).
fn acknowledged(results: Vec<Ran>, lost: &dyn Fn(usize) -> Option<CallError>) -> Vec<CallResult> {
    let mut answered = Vec::with_capacity(results.len());
    for (result, instance) in results {
        match (result, instance.and_then(lost)) {
            (Ok(_), Some(error)) => {
                answered.push(Err(error));
                break;
            }
            (result, _) => answered.push(result),
        }
    }
    answered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::ChangeLog;
    use crate::changes::capture::Unsettled;
    use crate::changes::change::Operation;
    use crate::changes::log::encode_group;

    fn insert(key: &str, record: Vec<u8>) -> Change {
        Change {
            record: Some(record),
            ..crate::changes::log::tests::change(key, Operation::Insert)
        }
    }

    #[tokio::test]
    async fn a_committed_group_the_log_cannot_take_holds_the_backends_writes_until_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let (change_log, _) = ChangeLog::open(&dir.path().join("log"), 1 << 30).unwrap();
        let capture = Capture::new(change_log.clone(), vec!["A.*".into()], false);
        let log = Log {
            capture: &capture,
            backend: "sql",
        };
        let commit = |change: Change| {
            let group = change_log.take_group().unwrap();
            let encoded = encode_group(group, "sql", std::slice::from_ref(&change));
            log.committed(group, &encoded, 1, true);
            group
        };
        commit(insert("K0", b"K0".to_vec()));
        // The log's disk fills up: a group waits in memory, and the
        // backend writes on.
        change_log.fail_writes(true);
        commit(insert("K1", b"K1".to_vec()));
        assert_eq!(capture.recovering("sql"), None);
        // A unit larger than what the log keeps waiting in memory.
        let lost = commit(insert("K2", vec![7; 65 << 20]));
        let why = capture
            .recovering("sql")
            .expect("the backend's writes go on");
        assert!(
            why.contains("could not take a committed group of backend sql")
                && why.contains("no space left")
                && why.contains("free the disk of the log"),
            "{why}"
        );
        let unsettled =
            tokio::time::timeout(std::time::Duration::from_secs(5), capture.next_doubts())
                .await
                .expect("the group is handed to the followers");
        assert_eq!(
            unsettled,
            [Unsettled {
                backend: "sql".into(),
                group: lost,
                committed: true,
            }]
        );
        // The log holds the group before it alone: the one it could not
        // take comes from the outbox, before any later group.
        change_log.fail_writes(false);
        let read = change_log.reader(0).next_batch(10).unwrap();
        assert_eq!(
            read.iter().map(|c| c.key.clone()).collect::<Vec<_>>(),
            [b"K0".to_vec(), b"K1".to_vec()]
        );
    }
}
