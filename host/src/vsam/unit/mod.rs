//! A connection's unit of work: the changes it made in `commit`
//! durability and has not committed, kept in the session until the commit
//! point.
//!
//! A change is the record a key will hold after the unit (or none: erased),
//! and whether the committed store holds the key now. The connection reads
//! its own changes over the committed records (`Pending::merge`); every
//! other connection reads only what is committed, and may not change or
//! take for update a record the unit changed (the dataset holds it for the
//! unit, see `DatasetState::hold_for_unit`). At COMMIT the changes of the
//! datasets of one backend go to it as one job between two syncs, on a
//! store that keeps such a group whole; ROLLBACK forgets them.

mod changes;
mod commit;
pub(crate) mod indexes;

pub(crate) use changes::{Change, Pending};

use crate::after_panic::LockOrStop;
use changes::Carriers;

use super::dataset::DatasetState;
use super::unit_memory::UnitMemory;
use commit::commit_group;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vsam_protocol::Status;

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
        let state = self.state.lock_or_stop();
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
        let mut state = self.state.lock_or_stop();
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
        let mut watched = self.state.lock_or_stop();
        watched.began.get_or_insert_with(Instant::now);
        watched.records = records;
        watched.bytes = bytes;
        if !watched.datasets.iter().any(|d| Arc::ptr_eq(d, state)) {
            watched.datasets.push(state.clone());
        }
    }

    fn ended(&self) {
        let mut watched = self.state.lock_or_stop();
        let doomed = watched.doomed.take();
        *watched = Watched {
            doomed,
            ..Watched::default()
        };
    }

    /// Takes the order to roll back, if one was given.
    fn take_doom(&self) -> Option<String> {
        self.state.lock_or_stop().doomed.take()
    }
}

/// A connection's changes since its last commit point.
pub(crate) struct Unit {
    watch: Arc<UnitWatch>,
    limits: UnitLimits,
    /// What every unit holds together (its `bytes` are counted there).
    memory: Arc<UnitMemory>,
    datasets: BTreeMap<String, Pending>,
    records: usize,
    bytes: usize,
    /// Writes staged so far (the order of changes).
    writes: u64,
    began: Option<Instant>,
}

impl Unit {
    /// An empty unit that may grow up to `limits`, seen by the operator
    /// through `watch`.
    pub fn new(limits: UnitLimits, memory: Arc<UnitMemory>, watch: Arc<UnitWatch>) -> Self {
        Self {
            watch,
            limits,
            memory,
            datasets: BTreeMap::new(),
            records: 0,
            bytes: 0,
            writes: 0,
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
        // The old value's drop gives its bytes back.
        *self = Unit::new(self.limits, self.memory.clone(), self.watch.clone());
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
            self.datasets
                .insert(state.def.name.clone(), Pending::new(state.clone()));
        }
        let pending = self
            .datasets
            .get_mut(&state.def.name)
            .expect("inserted above");
        // A record's bytes, its key's and its alternate keys'.
        let size = |image: Option<&[u8]>| {
            image.map_or(0, <[u8]>::len) + key.len() + Carriers::bytes(state, &key, image)
        };
        let added = size(image.as_deref());
        let (records, freed) = match pending.changes.get(&key) {
            Some(old) => (self.records, size(old.image.as_deref())),
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
        if added > freed && !self.memory.take(added - freed) {
            if pending.changes.is_empty() {
                self.datasets.remove(&state.def.name);
            }
            return Err(format!(
                "the units of work of all connections would hold more than this server's limit of {} MiB (server.units_memory_mb); this unit was rolled back: COMMIT more often, or raise the limit",
                self.memory.limit_mib()
            ));
        }
        if freed > added {
            self.memory.give_back(freed - added);
        }
        let stored = pending.changes.get(&key).map_or(stored, |old| old.stored);
        self.writes += 1;
        let written = self.writes;
        pending.set(
            key,
            Change {
                stored,
                image,
                written,
            },
        );
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
            let lost = group
                .iter()
                .find(|pending| !pending.state.unit_intact(session));
            if let Some(lost) = lost {
                let why = "the unit's record locks in the fleet's database were lost with their connection, so another server may have changed its records";
                let error = crate::runtime::call::CallError::Unavailable(why.into());
                let status = lost.state.fail(vsam_protocol::Verb::Commit.name(), error);
                failure = Some((backend.clone(), status));
            } else if let Err(status) = commit_group(group).await {
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

impl Drop for Unit {
    fn drop(&mut self) {
        self.memory.give_back(self.bytes);
    }
}
