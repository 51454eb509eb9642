//! What a backend's serving task records of the writes it runs: the
//! changes of the datasets that mirrors or the change stream follow, taken
//! from the calls themselves, and written to the change log before the
//! group that made them is committed (see `runtime::worker::group`).

use super::change::{Change, Operation};
use super::log::ChangeLog;
use crate::after_panic::LockOrStop;
use crate::runtime::call::{Call, Reply};
use arc_swap::{ArcSwap, ArcSwapOption};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A group the followers settle from its backend's outbox, after which
/// the backend writes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// The backend whose group it is.
    pub backend: String,
    /// Its number in the log.
    pub group: u64,
    /// True when the backend committed it for certain and the log could
    /// not take it; false when its COMMIT went unanswered, so that the
    /// transaction may still be running and is waited for first.
    pub committed: bool,
}

/// The server's change log and the dataset patterns it follows; shared by
/// every backend's tasks, its patterns replaced by a reload.
pub struct Capture {
    log: Arc<ChangeLog>,
    patterns: ArcSwap<Vec<String>>,
    strict: std::sync::atomic::AtomicBool,
    /// Backends whose outbox is still being read back into the log, and
    /// why: their groups wait, so that the log keeps each dataset's order.
    recovering: ArcSwap<BTreeMap<String, String>>,
    /// Groups the followers must settle from their backend's outbox
    /// (see [`Capture::in_doubt`] and [`Capture::not_logged`]).
    doubts: std::sync::Mutex<Vec<Unsettled>>,
    doubted: tokio::sync::Notify,
    /// Why no change may be recorded any more (see [`Capture::lose`]).
    lost: ArcSwapOption<String>,
}

impl Capture {
    /// Records the changes of datasets matching `patterns` in `log`.
    pub fn new(log: Arc<ChangeLog>, patterns: Vec<String>, strict: bool) -> Self {
        Self {
            log,
            patterns: ArcSwap::from_pointee(patterns),
            strict: strict.into(),
            recovering: ArcSwap::from_pointee(BTreeMap::new()),
            doubts: Default::default(),
            doubted: tokio::sync::Notify::new(),
            lost: ArcSwapOption::empty(),
        }
    }

    /// The log's directory was taken from under the running server (see
    /// `reload::storage`): what it records now would reach no mirror and
    /// no stream, which read it there, and be gone at the next start. So
    /// from now on every write to a followed dataset is refused with
    /// `why`, and the groups that would record changes are rolled back.
    /// False if it was lost already.
    pub fn lose(&self, why: String) -> bool {
        let before = self
            .lost
            .compare_and_swap(&None::<Arc<String>>, Some(Arc::new(why)));
        before.is_none()
    }

    /// Why no change may be recorded any more, if the log was lost.
    pub fn lost(&self) -> Option<Arc<String>> {
        self.lost.load_full()
    }

    /// A group of `backend` whose COMMIT went unanswered: the backend is
    /// recovering (its writes are refused with `why`) until the followers
    /// have learned from its outbox whether the group was committed, and
    /// logged it if it was ([`Capture::next_doubts`]).
    pub fn in_doubt(&self, backend: &str, group: u64, why: String) {
        self.unsettled(backend, group, false, why);
    }

    /// A group `backend` committed, with its outbox row, that the log
    /// could not take (its disk full or failing): the backend is
    /// recovering (its writes are refused with `why`) until the followers
    /// have taken the group back from its outbox. Later groups would
    /// otherwise reach the log before it, and its row would be emptied
    /// with theirs: lost for every mirror and the stream.
    pub fn not_logged(&self, backend: &str, group: u64, why: String) {
        self.unsettled(backend, group, true, why);
    }

    fn unsettled(&self, backend: &str, group: u64, committed: bool, why: String) {
        self.set_recovering(backend, Some(why));
        self.doubts.lock_or_stop().push(Unsettled {
            backend: backend.to_string(),
            group,
            committed,
        });
        self.doubted.notify_one();
    }

    /// The groups to settle noted since the last call, waiting for one.
    pub async fn next_doubts(&self) -> Vec<Unsettled> {
        loop {
            let doubts = std::mem::take(&mut *self.doubts.lock_or_stop());
            if !doubts.is_empty() {
                return doubts;
            }
            self.doubted.notified().await;
        }
    }

    /// Why `backend`'s groups cannot be recorded yet: its outbox was not
    /// read back into the log (see `Followers::start`).
    pub fn recovering(&self, backend: &str) -> Option<String> {
        self.recovering.load().get(backend).cloned()
    }

    /// True while some backend is recovering: the log may still lack
    /// groups its outbox holds.
    pub fn any_recovering(&self) -> bool {
        !self.recovering.load().is_empty()
    }

    /// Marks `backend` recovering (with the reason its writes are given)
    /// or, with `None`, done.
    pub fn set_recovering(&self, backend: &str, why: Option<String>) {
        self.recovering.rcu(|current| {
            let mut next = BTreeMap::clone(current);
            match &why {
                Some(why) => next.insert(backend.to_string(), why.clone()),
                None => next.remove(backend),
            };
            next
        });
    }

    /// `[changes] durability = "strict"`: a group's changes are synced to
    /// the log before its backend commits it, rather than alongside.
    pub fn strict(&self) -> bool {
        self.strict.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Follows a reloaded `durability` setting.
    pub fn set_strict(&self, strict: bool) {
        self.strict
            .store(strict, std::sync::atomic::Ordering::Relaxed);
    }

    /// The log the changes go to.
    pub fn log(&self) -> &Arc<ChangeLog> {
        &self.log
    }

    /// Follows the datasets matching `patterns` from the next group on.
    pub fn set_patterns(&self, patterns: Vec<String>) {
        self.patterns.store(Arc::new(patterns));
    }

    /// True if changes to `dataset` are recorded.
    pub fn wants(&self, dataset: &str) -> bool {
        self.patterns
            .load()
            .iter()
            .any(|pattern| crate::catalog::matches(pattern, dataset))
    }

    /// The changes `call` will make if it succeeds, taken before it runs
    /// (the call is moved into the store); empty for a call that changes
    /// nothing or a dataset that is not followed.
    pub fn draft(&self, call: &Call) -> Vec<Change> {
        let dataset = match call {
            Call::Insert(ds, ..)
            | Call::InsertMany(ds, _)
            | Call::Replace(ds, ..)
            | Call::Delete(ds, _)
            | Call::Append(ds, _)
            | Call::Create(ds, _)
            | Call::Destroy(ds)
            | Call::Apply(ds, ..) => ds,
            _ => return Vec::new(),
        };
        if !self.wants(&dataset.name) {
            return Vec::new();
        }
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let change = |operation, key: &[u8], record: Option<&Vec<u8>>| Change {
            sequence: 0,
            time_ms,
            dataset: dataset.clone(),
            operation,
            key: key.to_vec(),
            record: record.cloned(),
        };
        match call {
            Call::Insert(_, key, record) => vec![change(Operation::Insert, key, Some(record))],
            Call::InsertMany(_, entries) => entries
                .iter()
                .map(|e| change(Operation::Insert, &e.key, Some(&e.value)))
                .collect(),
            Call::Replace(_, key, record) => vec![change(Operation::Replace, key, Some(record))],
            Call::Delete(_, key) => vec![change(Operation::Erase, key, None)],
            // The key is the RBA the store gives it (see `complete`).
            Call::Append(_, record) => vec![change(Operation::Insert, &[], Some(record))],
            Call::Create(_, layout) => vec![change(Operation::Define(layout.clone()), &[], None)],
            Call::Destroy(_) => vec![change(Operation::Delete, &[], None)],
            // A mirror's net changes (sent unrecorded today): a put may
            // insert, which every follower's replace does too.
            Call::Apply(_, puts, erases) => puts
                .iter()
                .map(|e| change(Operation::Replace, &e.key, Some(&e.value)))
                .chain(erases.iter().map(|key| change(Operation::Erase, key, None)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Completes drafted changes with what the store answered: an append's
/// key is the RBA it was given.
pub fn complete(mut drafts: Vec<Change>, reply: &Reply) -> Vec<Change> {
    if let (Reply::Key(key), [only]) = (reply, drafts.as_mut_slice())
        && only.key.is_empty()
        && only.operation == Operation::Insert
    {
        only.key = key.clone();
    }
    drafts
}
