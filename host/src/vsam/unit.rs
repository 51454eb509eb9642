//! A connection's unit of work: the changes it made in `commit`
//! durability and has not committed, kept in the session until the commit
//! point.
//!
//! A change is the record a key will hold after the unit (or none: erased),
//! and whether the committed store holds the key now. The connection reads
//! its own changes over the committed records ([`Pending::merge`]); every
//! other connection reads only what is committed, and may not change or
//! take for update a record the unit changed (the dataset holds it for the
//! unit, see `DatasetState::hold_for_unit`). At COMMIT the changes of the
//! datasets of one backend go to it as one job between two syncs, on a
//! store that keeps such a group whole; ROLLBACK forgets them.

use super::dataset::DatasetState;
use crate::runtime::call::{Call, Reply};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vsam_plugin_sdk::{Direction, Entry, Start};
use vsam_protocol::{Status, Verb};

/// What a unit does to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The committed store holds the key (the unit replaces or erases it).
    pub stored: bool,
    /// The record after the unit; `None`: erased.
    pub image: Option<Vec<u8>>,
}

impl Change {
    /// The call that makes the store hold what the unit did, if any.
    fn call(&self, dataset: &vsam_plugin_sdk::Dataset, key: &[u8]) -> Option<Call> {
        match (self.stored, &self.image) {
            (true, Some(record)) => {
                Some(Call::Replace(dataset.clone(), key.to_vec(), record.clone()))
            }
            (false, Some(record)) => {
                Some(Call::Insert(dataset.clone(), key.to_vec(), record.clone()))
            }
            (true, None) => Some(Call::Delete(dataset.clone(), key.to_vec())),
            (false, None) => None,
        }
    }
}

/// One dataset's changes in a unit.
pub(crate) struct Pending {
    pub state: Arc<DatasetState>,
    pub changes: BTreeMap<Vec<u8>, Change>,
}

impl Pending {
    /// The calls that apply the changes, in key order.
    pub fn calls(&self) -> Vec<Call> {
        let dataset = &self.state.plugin_dataset;
        self.changes
            .iter()
            .filter_map(|(key, change)| change.call(dataset, key))
            .collect()
    }

    /// A batch scanned from the committed store (from `from` in `dir`,
    /// `exhausted` if it reached the end) with this unit's changes laid over
    /// it: the changed keys the batch's range covers, in the scan's order.
    pub fn merge(
        &self,
        batch: Vec<Entry>,
        from: &Start,
        dir: Direction,
        exhausted: bool,
    ) -> Vec<Entry> {
        merge_over(&self.changes, batch, from, dir, exhausted)
    }
}

/// [`Pending::merge`] over a map of changes.
fn merge_over(
    changes: &BTreeMap<Vec<u8>, Change>,
    batch: Vec<Entry>,
    from: &Start,
    dir: Direction,
    exhausted: bool,
) -> Vec<Entry> {
    let start = match from {
        Start::Edge => Bound::Unbounded,
        Start::Inclusive(key) => Bound::Included(key.clone()),
        Start::Exclusive(key) => Bound::Excluded(key.clone()),
    };
    let end = match (exhausted, batch.last()) {
        (false, Some(last)) => Bound::Included(last.key.clone()),
        _ => Bound::Unbounded,
    };
    let range = match dir {
        Direction::Forward => (start, end),
        Direction::Backward => (end, start),
    };
    let mut changed: Vec<(&Vec<u8>, &Change)> = changes.range(range).collect();
    if dir == Direction::Backward {
        changed.reverse();
    }
    let before = |a: &[u8], b: &[u8]| match dir {
        Direction::Forward => a < b,
        Direction::Backward => a > b,
    };
    let mut merged = Vec::with_capacity(batch.len() + changed.len());
    let mut changed = changed.into_iter().peekable();
    for entry in batch {
        while let Some((key, change)) = changed.next_if(|(key, _)| before(key, &entry.key)) {
            if let Some(image) = &change.image {
                merged.push(Entry {
                    key: key.clone(),
                    value: image.clone(),
                });
            }
        }
        match changed.next_if(|(key, _)| **key == entry.key) {
            Some((_, change)) => {
                if let Some(image) = &change.image {
                    merged.push(Entry {
                        key: entry.key,
                        value: image.clone(),
                    });
                }
            }
            None => merged.push(entry),
        }
    }
    for (key, change) in changed {
        if let Some(image) = &change.image {
            merged.push(Entry {
                key: key.clone(),
                value: image.clone(),
            });
        }
    }
    merged
}

/// How large a unit may grow before its commit.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UnitLimits {
    pub records: usize,
    pub bytes: usize,
}

/// What the operator sees of a connection's unit of work (`vsamr admin
/// status`), shared between the session and the server's registry; and the
/// order to roll the unit back, given by the operator or by the time limit,
/// which frees the unit's records at once and is carried out by the
/// session at its next request.
pub struct UnitWatch {
    /// The connection.
    pub session: u64,
    /// Who is on it.
    pub identity: String,
    state: Mutex<Watched>,
}

#[derive(Default)]
struct Watched {
    began: Option<Instant>,
    records: usize,
    bytes: usize,
    datasets: Vec<Arc<DatasetState>>,
    doomed: Option<String>,
}

/// A unit as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSnapshot {
    /// The connection.
    pub session: u64,
    /// Who is on it.
    pub identity: String,
    /// Since its first change.
    pub age: Duration,
    /// Records it changed.
    pub records: usize,
    /// Bytes of changed records it holds in memory.
    pub bytes: usize,
    /// The datasets it changed.
    pub datasets: Vec<String>,
}

impl UnitWatch {
    /// The watch of a new connection's (empty) unit.
    pub fn new(session: u64, identity: String) -> Self {
        Self {
            session,
            identity,
            state: Mutex::default(),
        }
    }

    /// The unit now, if it holds changes (and was not ordered rolled back).
    pub fn snapshot(&self) -> Option<UnitSnapshot> {
        let state = self.state.lock().unwrap();
        let began = state.began.filter(|_| state.doomed.is_none())?;
        Some(UnitSnapshot {
            session: self.session,
            identity: self.identity.clone(),
            age: began.elapsed(),
            records: state.records,
            bytes: state.bytes,
            datasets: state.datasets.iter().map(|s| s.def.name.clone()).collect(),
        })
    }

    /// Orders the unit rolled back for `reason`: its records are free for
    /// other connections from now on, and the session forgets its changes
    /// at its next request, which is answered with the reason. False if
    /// the unit held nothing.
    pub fn doom(&self, reason: String) -> bool {
        let mut state = self.state.lock().unwrap();
        if state.began.is_none() || state.doomed.is_some() {
            return false;
        }
        for dataset in &state.datasets {
            dataset.release_unit(self.session);
            dataset.wrote();
        }
        state.doomed = Some(reason);
        true
    }

    fn staged(&self, state: &Arc<DatasetState>, records: usize, bytes: usize) {
        let mut watched = self.state.lock().unwrap();
        watched.began.get_or_insert_with(Instant::now);
        watched.records = records;
        watched.bytes = bytes;
        if !watched.datasets.iter().any(|d| Arc::ptr_eq(d, state)) {
            watched.datasets.push(state.clone());
        }
    }

    fn ended(&self) {
        let mut watched = self.state.lock().unwrap();
        let doomed = watched.doomed.take();
        *watched = Watched {
            doomed,
            ..Watched::default()
        };
    }

    /// Takes the order to roll back, if one was given.
    fn take_doom(&self) -> Option<String> {
        self.state.lock().unwrap().doomed.take()
    }
}

/// A connection's changes since its last commit point.
pub(crate) struct Unit {
    watch: Arc<UnitWatch>,
    limits: UnitLimits,
    datasets: BTreeMap<String, Pending>,
    records: usize,
    bytes: usize,
    began: Option<Instant>,
}

impl Unit {
    /// An empty unit that may grow up to `limits`, seen by the operator
    /// through `watch`.
    pub fn new(limits: UnitLimits, watch: Arc<UnitWatch>) -> Self {
        Self {
            watch,
            limits,
            datasets: BTreeMap::new(),
            records: 0,
            bytes: 0,
            began: None,
        }
    }

    /// Records it changed.
    pub fn records(&self) -> usize {
        self.records
    }

    /// How long since its first change (zero while it holds none).
    pub fn age(&self) -> Duration {
        self.began.map_or(Duration::ZERO, |began| began.elapsed())
    }

    /// Forgets every change (their records are released by the caller).
    fn clear(&mut self) {
        self.watch.ended();
        *self = Unit::new(self.limits, self.watch.clone());
    }

    /// The reason the unit was ordered rolled back (by the operator or the
    /// time limit) since the last request, if it was: the caller rolls it
    /// back and tells the client.
    pub fn doomed(&self) -> Option<String> {
        self.watch.take_doom()
    }

    /// True when the unit holds no change.
    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty()
    }

    /// The unit's changes to one dataset, if any.
    pub fn pending(&self, dataset: &str) -> Option<&Pending> {
        self.datasets.get(dataset)
    }

    /// What the unit did to `key` of `dataset`, if anything.
    pub fn change(&self, dataset: &str, key: &[u8]) -> Option<&Change> {
        self.datasets.get(dataset)?.changes.get(key)
    }

    /// Records that `key` of `state` will hold `image` (`None`: erased)
    /// after the unit; `stored` says whether the committed store holds the
    /// key, for a key the unit has not changed yet. Refused if the unit
    /// would outgrow its limits (the caller rolls it back).
    pub fn stage(
        &mut self,
        state: &Arc<DatasetState>,
        key: Vec<u8>,
        stored: bool,
        image: Option<Vec<u8>>,
    ) -> Result<(), String> {
        let limits = self.limits;
        // The dataset's entry, made by its first change (no name copied
        // for every change after).
        if !self.datasets.contains_key(&state.def.name) {
            self.datasets.insert(
                state.def.name.clone(),
                Pending {
                    state: state.clone(),
                    changes: BTreeMap::new(),
                },
            );
        }
        let pending = self
            .datasets
            .get_mut(&state.def.name)
            .expect("inserted above");
        let added = image.as_ref().map_or(0, Vec::len) + key.len();
        let (records, freed) = match pending.changes.get(&key) {
            Some(old) => (
                self.records,
                old.image.as_ref().map_or(0, Vec::len) + key.len(),
            ),
            None => (self.records + 1, 0),
        };
        let bytes = self.bytes - freed + added;
        if records > limits.records || bytes > limits.bytes {
            if pending.changes.is_empty() {
                self.datasets.remove(&state.def.name);
            }
            return Err(format!(
                "the unit of work would hold {records} changed records ({} MiB), more than this server's limit of {} records ({} MiB, server.max_unit_records and server.max_unit_mb); the unit was rolled back: COMMIT more often (a checkpoint every few thousand records)",
                bytes >> 20,
                limits.records,
                limits.bytes >> 20
            ));
        }
        let stored = pending.changes.get(&key).map_or(stored, |old| old.stored);
        pending.changes.insert(key, Change { stored, image });
        self.records = records;
        self.bytes = bytes;
        self.began.get_or_insert_with(Instant::now);
        self.watch.staged(state, records, bytes);
        state.wrote();
        Ok(())
    }

    /// Ends the unit without applying it: its changes are forgotten and
    /// the records it held are free again. Returns how many it changed.
    pub fn rollback(&mut self, session: u64) -> usize {
        let records = self.records;
        for pending in std::mem::take(&mut self.datasets).into_values() {
            pending.state.release_unit(session);
            pending.state.wrote();
        }
        self.clear();
        records
    }

    /// Applies the unit and ends it: the changes to the datasets of one
    /// backend go to it as one job made durable by one sync, backend after
    /// backend in name order. On a failure the unit is rolled back where
    /// it was not yet committed, and the error says which backends had
    /// committed their part. Returns how many records it changed.
    pub async fn commit(&mut self, session: u64) -> Result<usize, Status> {
        let records = self.records;
        let datasets: Vec<Pending> = std::mem::take(&mut self.datasets).into_values().collect();
        self.clear();
        let mut by_backend: BTreeMap<String, Vec<&Pending>> = BTreeMap::new();
        for pending in &datasets {
            by_backend
                .entry(pending.state.backend().name().to_string())
                .or_default()
                .push(pending);
        }
        let mut committed: Vec<String> = Vec::new();
        let mut failure = None;
        for (backend, group) in &by_backend {
            if failure.is_some() {
                break;
            }
            if let Err(status) = commit_group(group).await {
                failure = Some((backend.clone(), status));
            } else {
                committed.push(backend.clone());
            }
        }
        for pending in &datasets {
            pending.state.release_unit(session);
            pending.state.wrote();
        }
        match failure {
            None => Ok(records),
            Some((backend, mut status)) => {
                status.message = if committed.is_empty() {
                    format!(
                        "{}; the unit of work was rolled back, nothing of it is stored",
                        status.message
                    )
                } else {
                    format!(
                        "{}; the unit's changes in backend {backend} and after it were rolled back, and its changes in backend(s) {} were committed before (a unit spanning backends commits one backend after another)",
                        status.message,
                        committed.join(", ")
                    )
                };
                Err(status)
            }
        }
    }
}

/// Commits the changes of datasets that share one backend, as one job,
/// with a migration's mirror following them; writes to the datasets are
/// held off from a migration's copy and cutover meanwhile.
async fn commit_group(group: &[&Pending]) -> Result<(), Status> {
    let mut gates = Vec::with_capacity(group.len());
    for pending in group {
        gates.push(pending.state.writing().await);
    }
    let first = &group[0].state;
    let calls_of: Vec<Vec<Call>> = group.iter().map(|pending| pending.calls()).collect();
    for (pending, calls) in group.iter().zip(&calls_of) {
        pending.state.note_inserts(calls);
    }
    if calls_of.iter().all(Vec::is_empty) {
        return Ok(());
    }
    // Inserts go many at a time (what a unit's load is made of).
    let sent_of: Vec<Vec<Call>> = calls_of.iter().map(|calls| batched(calls)).collect();
    let sent: Vec<Call> = sent_of.iter().flatten().cloned().collect();
    let results = first.backend().commit_unit(sent).await;
    if let Some(error) = results.iter().find_map(|result| result.as_ref().err()) {
        let failed_on = group
            .iter()
            .zip(&sent_of)
            .scan(0usize, |ran, (pending, calls)| {
                *ran += calls.len();
                Some((pending, *ran))
            })
            .find(|(_, ran)| results.len() <= *ran)
            .map_or(first, |(pending, _)| &pending.state);
        return Err(failed_on.fail(Verb::Commit.name(), error.clone()));
    }
    for (pending, calls) in group.iter().zip(&calls_of) {
        if let Some(mirror) = &pending.state.placement().mirror {
            let done: Vec<crate::runtime::call::CallResult> =
                calls.iter().map(|_| Ok(Reply::Done)).collect();
            mirror.follow(&pending.state.def.name, calls, &done).await;
        }
    }
    drop(gates);
    Ok(())
}

/// Inserts sent to a store at once, at most.
const INSERTS_AT_ONCE: usize = 1_000;
/// Bytes of records sent to a store at once, at most.
const INSERT_BYTES_AT_ONCE: usize = 1 << 20;

/// `calls` with each run of inserts into one dataset sent as
/// `insert-many` calls of up to [`INSERTS_AT_ONCE`] records.
fn batched(calls: &[Call]) -> Vec<Call> {
    let mut out: Vec<Call> = Vec::new();
    // Bytes of the last insert-many so far.
    let mut bytes = 0;
    for call in calls {
        let Call::Insert(ds, key, value) = call else {
            out.push(call.clone());
            continue;
        };
        let entry = Entry {
            key: key.clone(),
            value: value.clone(),
        };
        if let Some(Call::InsertMany(into, entries)) = out.last_mut()
            && into == ds
            && entries.len() < INSERTS_AT_ONCE
            && bytes < INSERT_BYTES_AT_ONCE
        {
            bytes += entry.value.len();
            entries.push(entry);
            continue;
        }
        bytes = entry.value.len();
        out.push(Call::InsertMany(ds.clone(), vec![entry]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &[u8], value: &[u8]) -> Entry {
        Entry {
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    /// A change as a test writes it: key, stored, image.
    type Written<'a> = (&'a [u8], bool, Option<&'a [u8]>);

    fn pending(changes: &[Written]) -> BTreeMap<Vec<u8>, Change> {
        changes
            .iter()
            .map(|(key, stored, image)| {
                (
                    key.to_vec(),
                    Change {
                        stored: *stored,
                        image: image.map(<[u8]>::to_vec),
                    },
                )
            })
            .collect()
    }

    fn merge(
        changes: &BTreeMap<Vec<u8>, Change>,
        batch: Vec<Entry>,
        from: Start,
        dir: Direction,
        exhausted: bool,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        merge_over(changes, batch, &from, dir, exhausted)
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn pairs(list: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        list.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn a_unit_reads_its_own_changes_over_the_store() {
        let changes = pending(&[
            (b"a", false, Some(b"new-a")),
            (b"c", true, None),
            (b"d", true, Some(b"upd-d")),
            (b"z", false, Some(b"new-z")),
        ]);
        let batch = vec![entry(b"b", b"b"), entry(b"c", b"c"), entry(b"d", b"d")];
        assert_eq!(
            merge(
                &changes,
                batch.clone(),
                Start::Edge,
                Direction::Forward,
                false
            ),
            pairs(&[(b"a", b"new-a"), (b"b", b"b"), (b"d", b"upd-d")]),
            "an insert before the batch, an erase and an update inside it; z lies past what the batch covers"
        );
        assert_eq!(
            merge(&changes, batch, Start::Edge, Direction::Forward, true),
            pairs(&[
                (b"a", b"new-a"),
                (b"b", b"b"),
                (b"d", b"upd-d"),
                (b"z", b"new-z")
            ]),
            "at the end of the store, inserts past it come too"
        );
        let backward = vec![entry(b"d", b"d"), entry(b"c", b"c")];
        assert_eq!(
            merge(
                &changes,
                backward,
                Start::Exclusive(b"y".to_vec()),
                Direction::Backward,
                false
            ),
            pairs(&[(b"d", b"upd-d")]),
            "backward from y: z is behind the start, c is erased, a lies past the batch"
        );
        assert_eq!(
            merge(
                &changes,
                Vec::new(),
                Start::Inclusive(b"a".to_vec()),
                Direction::Forward,
                true
            ),
            pairs(&[(b"a", b"new-a"), (b"d", b"upd-d"), (b"z", b"new-z")]),
            "an empty store shows the unit's records alone"
        );
        assert_eq!(
            merge(
                &changes,
                Vec::new(),
                Start::Exclusive(b"a".to_vec()),
                Direction::Forward,
                true
            ),
            pairs(&[(b"d", b"upd-d"), (b"z", b"new-z")]),
            "an exclusive start leaves its key out"
        );
    }

    #[test]
    fn a_units_inserts_go_many_at_a_time() {
        let ds = |name: &str| vsam_plugin_sdk::Dataset {
            name: name.into(),
            organization: vsam_plugin_sdk::Organization::Ksds,
            key_offset: 0,
            key_length: 2,
            max_record_length: 9,
            min_record_length: 1,
            codepage: "cp037".into(),
        };
        let insert = |d: &str, n: usize| Call::Insert(ds(d), vec![n as u8], vec![0; 4]);
        let mut calls: Vec<Call> = (0..INSERTS_AT_ONCE + 2).map(|n| insert("A", n)).collect();
        calls.push(Call::Delete(ds("A"), vec![9]));
        calls.push(insert("A", 7));
        calls.push(insert("B", 8));
        let sent = batched(&calls);
        let shape: Vec<(&str, usize)> = sent
            .iter()
            .map(|call| match call {
                Call::InsertMany(d, entries) => (d.name.as_str(), entries.len()),
                other => (other.name(), 1),
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("A", INSERTS_AT_ONCE),
                ("A", 2),
                ("delete", 1),
                ("A", 1),
                ("B", 1)
            ],
            "in order, cut at the limit, by dataset, around other calls"
        );
    }

    #[test]
    fn changes_become_the_calls_that_apply_them() {
        let ds = vsam_plugin_sdk::Dataset {
            name: "A".into(),
            organization: vsam_plugin_sdk::Organization::Ksds,
            key_offset: 0,
            key_length: 1,
            max_record_length: 9,
            min_record_length: 1,
            codepage: "cp037".into(),
        };
        let names = |changes: &[Written]| -> Vec<&'static str> {
            pending(changes)
                .iter()
                .filter_map(|(key, change)| change.call(&ds, key))
                .map(|call| call.name())
                .collect()
        };
        assert_eq!(
            names(&[
                (b"a", true, Some(b"x")),
                (b"b", false, Some(b"y")),
                (b"c", true, None),
                (b"d", false, None)
            ]),
            ["replace", "insert", "delete"],
            "a record inserted and erased in the same unit needs no call"
        );
    }
}
