//! The handle sessions use: calls queued on a backend's current
//! generation, answered on a oneshot; swaps that start a new generation.

use super::super::call::{Call, CallError, CallResult, RecordStore};
use super::counters::{BackendCounters, BackendCounts};
use super::generation::{Generation, GenerationStatus, InFlight, VersionInfo};
use super::{Answer, CaptureSlot, Job};
use crate::after_panic::LockOrStop;
use crate::changes::Capture;
use arc_swap::ArcSwap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::oneshot;

/// Calls queued on a backend, not yet answered: what
/// [`BackendHandle::submit`] returns.
pub struct Pending {
    flight: Option<InFlight>,
    results: Option<oneshot::Receiver<Vec<CallResult>>>,
    changes_datasets: bool,
    backend: String,
    /// Why the backend refuses every call (see [`BackendHandle::refuse`]).
    refused: Option<Arc<String>>,
}

impl Pending {
    /// Waits for the answers: the results of the calls that ran, in order,
    /// the failure last.
    pub async fn answers(mut self) -> Vec<CallResult> {
        if let Some(why) = &self.refused {
            return vec![Err(CallError::Unavailable(why.to_string()))];
        }
        let stopped = || {
            vec![Err(CallError::Unavailable(format!(
                "backend {} has stopped",
                self.backend
            )))]
        };
        let Some(results) = self.results.take() else {
            return stopped();
        };
        let results = results.await.unwrap_or_else(|_| stopped());
        if self.changes_datasets
            && let Some(InFlight(generation)) = &self.flight
        {
            for reader in &generation.readers {
                let _ = reader.send(Job::Reset);
            }
        }
        self.flight.take();
        results
    }
}

/// The backend's name, the generation serving it, and the ones retiring.
struct Slot {
    name: String,
    current: ArcSwap<Generation>,
    retiring: Mutex<Vec<Weak<Generation>>>,
    /// What its serving tasks count, across generations.
    counters: Arc<BackendCounters>,
    /// The change capture its writer records followed datasets' changes
    /// with, across generations.
    capture: Arc<CaptureSlot>,
    /// Why it refuses every call from now on, across generations (its
    /// storage was removed while the server ran).
    refused: arc_swap::ArcSwapOption<String>,
}

/// A handle to a backend: cheap to clone, usable from any task. Its plugin
/// version can be replaced while calls run ([`BackendHandle::replace`]):
/// each call runs whole on the version it started on.
#[derive(Clone)]
pub struct BackendHandle {
    slot: Arc<Slot>,
}

impl BackendHandle {
    /// Starts the task that owns `store`, and one task per reader store
    /// (see the module documentation), on the tokio runtime this is called
    /// in (an error outside one).
    pub fn spawn(
        name: &str,
        version: VersionInfo,
        store: Box<dyn RecordStore>,
        readers: Vec<Box<dyn RecordStore>>,
    ) -> std::io::Result<Self> {
        let counters = Arc::new(BackendCounters::default());
        let capture = Arc::new(CaptureSlot::new(name));
        let generation = Generation::start(version, store, readers, None, &counters, &capture)?;
        Ok(Self {
            slot: Arc::new(Slot {
                name: name.to_string(),
                current: ArcSwap::from_pointee(generation),
                retiring: Mutex::new(Vec::new()),
                counters,
                capture,
                refused: arc_swap::ArcSwapOption::empty(),
            }),
        })
    }

    /// Points the backend at new stores (a new plugin version, or new
    /// settings). Calls already queued finish on the old stores; new calls
    /// queue for the new ones, which start as soon as the old ones have
    /// answered their last call and exited.
    pub fn replace(
        &self,
        version: VersionInfo,
        store: Box<dyn RecordStore>,
        readers: Vec<Box<dyn RecordStore>>,
    ) -> std::io::Result<()> {
        let mut retiring = self.slot.retiring.lock_or_stop();
        let old = self.slot.current.load_full();
        let next = Generation::start(
            version,
            store,
            readers,
            Some(old.retired.clone()),
            &self.slot.counters,
            &self.slot.capture,
        )?;
        self.slot.current.store(Arc::new(next));
        retiring.retain(|generation| {
            generation
                .upgrade()
                .is_some_and(|generation| !generation.retired.is_open())
        });
        retiring.push(Arc::downgrade(&old));
        Ok(())
    }

    /// The generation serving now, then any still finishing calls.
    pub fn generations(&self) -> Vec<GenerationStatus> {
        let mut out = vec![self.slot.current.load().status(true)];
        let retiring = self.slot.retiring.lock_or_stop();
        out.extend(
            retiring
                .iter()
                .filter_map(Weak::upgrade)
                .filter(|generation| !generation.retired.is_open())
                .map(|generation| generation.status(false)),
        );
        out
    }

    /// Records the changes of followed datasets that this backend's writes
    /// make in `capture`'s log, from its next group of writes on (none:
    /// records nothing).
    pub fn set_capture(&self, capture: Option<Arc<Capture>>) {
        self.slot.capture.capture.store(capture);
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// True if the store serving now belongs to this server alone (see
    /// [`super::VersionInfo::own_store`]).
    pub fn owns_its_store(&self) -> bool {
        self.slot.current.load().version.own_store
    }

    /// The PostgreSQL database the store serving now is in, which other
    /// servers may share (see [`super::VersionInfo::shared_database`]).
    pub fn shared_database(&self) -> Option<String> {
        self.slot.current.load().version.shared_database.clone()
    }

    /// The database granted to the store serving now, if any.
    pub fn database(&self) -> Option<crate::runtime::sql::DatabaseUrl> {
        self.slot.current.load().version.database.clone()
    }

    /// Where a mirror on the store serving now records how far it applied
    /// a change log.
    pub fn applied_place(&self) -> Option<crate::runtime::AppliedPlace> {
        self.slot.current.load().version.applied_place.clone()
    }

    /// The plugin serving it now.
    pub fn plugin(&self) -> String {
        self.slot.current.load().version.plugin.clone()
    }

    /// Runs one call on the backend's task.
    pub async fn call(&self, call: Call) -> CallResult {
        let mut results = self.call_chain(vec![call]).await;
        results.pop().unwrap_or_else(|| Err(self.stopped()))
    }

    /// Flushes `dataset` as its last CLOSE would, after `work` the host did
    /// on it without an open (a copy, BLDINDEX, a mirror's writes): the
    /// plugin lets go of what it kept for it, and a CSV file is rewritten
    /// with its records. A failure is only logged: the records are stored,
    /// and the next close settles them.
    pub async fn close_after(&self, work: &str, dataset: vsam_plugin_sdk::Dataset) {
        let name = dataset.name.clone();
        if let Err(error) = self.call(Call::Flush(dataset)).await {
            tracing::warn!(
                backend = %self.name(),
                dataset = %name,
                "closing the dataset after {work} failed: {error}; its records are stored, and its next close settles them"
            );
        }
    }

    /// Runs calls in order on the backend's task, as one job sharing one
    /// sync, until the first that fails: the results of those that ran,
    /// the failure last.
    pub async fn call_chain(&self, calls: Vec<Call>) -> Vec<CallResult> {
        self.submit(calls).answers().await
    }

    /// Runs a unit of work's writes as one job of their own, made durable
    /// by one sync: the results of the calls, all `Ok` if the unit is
    /// durable; otherwise ending in the failure, and none of the unit is
    /// stored (the instance that ran it was dropped).
    pub async fn commit_unit(&self, calls: Vec<Call>) -> Vec<CallResult> {
        if let Some(refused) = self.refused_pending() {
            return refused.answers().await;
        }
        let generation = self.slot.current.load_full();
        let (answer, results) = Answer::channel();
        let sent = generation.queue.send(Job::Unit { calls, answer }).is_ok();
        Pending {
            flight: Some(InFlight::enter(generation)),
            results: sent.then_some(results),
            changes_datasets: false,
            backend: self.slot.name.clone(),
            refused: None,
        }
        .answers()
        .await
    }

    /// Refuses every call from now on, answering `why` (R15=12 to the
    /// program): the backend's storage was removed or replaced under the
    /// running server, so what it would write now is lost at the next
    /// start. Calls already queued run. A restart ends it.
    pub fn refuse(&self, why: String) {
        self.slot.refused.store(Some(Arc::new(why)));
    }

    /// Why the backend refuses every call, if it does (see
    /// [`BackendHandle::refuse`]).
    pub fn refusal(&self) -> Option<Arc<String>> {
        self.slot.refused.load_full()
    }

    /// An answer of the refusal, if the backend refuses.
    fn refused_pending(&self) -> Option<Pending> {
        let refused = self.slot.refused.load_full()?;
        Some(Pending {
            flight: None,
            results: None,
            changes_datasets: false,
            backend: self.slot.name.clone(),
            refused: Some(refused),
        })
    }

    /// Whether the plugin serving now keeps units of work whole (its
    /// `units.whole`); false for a plugin without it, or one that cannot
    /// start.
    pub async fn keeps_units_whole(&self) -> bool {
        matches!(
            self.call(Call::WholeUnits).await,
            Ok(super::super::call::Reply::Whole(true))
        )
    }

    /// Queues calls as one job now and returns without waiting: calls
    /// queued later on this backend run after them (a migration's copy
    /// relies on that order).
    pub fn submit(&self, calls: Vec<Call>) -> Pending {
        self.submit_job(calls, true)
    }

    /// [`BackendHandle::submit`] for the writes of a replica (a mirror, a
    /// migration's copy): they repeat changes recorded in the change log
    /// where they were made, and are not recorded again.
    pub fn replica_submit(&self, calls: Vec<Call>) -> Pending {
        self.submit_job(calls, false)
    }

    /// [`BackendHandle::call_chain`] for a replica's writes (see
    /// [`BackendHandle::replica_submit`]).
    pub async fn replica_chain(&self, calls: Vec<Call>) -> Vec<CallResult> {
        self.replica_submit(calls).answers().await
    }

    /// [`BackendHandle::call`] for a replica's write (see
    /// [`BackendHandle::replica_submit`]).
    pub async fn replica_call(&self, call: Call) -> CallResult {
        let mut results = self.replica_chain(vec![call]).await;
        results.pop().unwrap_or_else(|| Err(self.stopped()))
    }

    fn submit_job(&self, calls: Vec<Call>, recorded: bool) -> Pending {
        if let Some(refused) = self.refused_pending() {
            return refused;
        }
        let generation = self.slot.current.load_full();
        let reads_only = calls.iter().all(Call::is_read);
        let changes_datasets = calls
            .iter()
            .any(|call| matches!(call, Call::Create(..) | Call::Destroy(..)));
        let readers = &generation.readers;
        let queue = match readers.len() {
            0 => &generation.queue,
            _ if !reads_only => &generation.queue,
            n => &readers[generation.next_reader.fetch_add(1, Ordering::Relaxed) % n],
        };
        let (answer, results) = Answer::channel();
        let sent = queue
            .send(Job::Run {
                calls,
                answer,
                recorded,
            })
            .is_ok();
        Pending {
            flight: Some(InFlight::enter(generation)),
            results: sent.then_some(results),
            changes_datasets,
            backend: self.slot.name.clone(),
            refused: None,
        }
    }

    /// Queues `work` for the backend's writer task, which runs it between
    /// two groups of writes (once the group before it is committed); the
    /// future answers its result, `None` if the backend has stopped. Why:
    /// SQLite lets one connection write at a time, so host work on a
    /// backend's SQLite database from a connection of its own (emptying
    /// the change outbox) would keep the writer in SQLite's busy wait,
    /// asleep on a runtime thread, while it holds a second runtime thread
    /// itself; run by the writer, it waits for nothing and delays only the
    /// writer's next group.
    pub fn between_groups<T, F>(&self, work: F) -> impl Future<Output = Option<T>> + use<T, F>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let generation = self.slot.current.load_full();
        let (done, result) = oneshot::channel();
        let chore = Box::pin(async move {
            let _ = done.send(work.await);
        });
        let sent = generation.queue.send(Job::Chore(chore)).is_ok();
        let flight = InFlight::enter(generation);
        async move {
            let _flight = flight;
            match sent {
                true => result.await.ok(),
                false => None,
            }
        }
    }

    /// Makes every instance of the backend start again from storage at its
    /// next call: what they cached of a dataset that another server of a
    /// fleet deleted or defined again is gone (the SQL plugin keeps each
    /// dataset's table and column mapping). The writer drops its instance
    /// only after the writes it runs meanwhile are synced.
    pub fn forget_caches(&self) {
        let generation = self.slot.current.load();
        let _ = generation.queue.send(Job::Reset);
        for reader in &generation.readers {
            let _ = reader.send(Job::Reset);
        }
    }

    /// Ends the backend's serving tasks, every generation's, once the calls
    /// queued before have run, and waits until they have ended, at most
    /// `within`: their stores are dropped, which closes their files and
    /// database connections. Why: a server that stops leaves its storage
    /// as the next process finds it (an SQLite database's log checkpointed
    /// and removed, nothing of it open) before it gives its locks back.
    /// The stop is queued when this is called; calls queued after it are
    /// answered that the backend has stopped. The future is false if a
    /// task had not ended in time (a call still running).
    pub fn stop(&self, within: std::time::Duration) -> impl Future<Output = bool> + use<> {
        let mut generations = vec![self.slot.current.load_full()];
        generations.extend(
            self.slot
                .retiring
                .lock_or_stop()
                .iter()
                .filter_map(Weak::upgrade),
        );
        for generation in &generations {
            let _ = generation.queue.send(Job::Stop);
            for reader in &generation.readers {
                let _ = reader.send(Job::Stop);
            }
        }
        let retired: Vec<_> = generations
            .drain(..)
            .map(|generation| generation.retired.clone())
            .collect();
        async move {
            tokio::time::timeout(within, async {
                for generation in retired {
                    generation.wait().await;
                }
            })
            .await
            .is_ok()
        }
    }

    /// What its serving tasks counted since the backend started: plugin
    /// faults and group commits.
    pub fn counts(&self) -> BackendCounts {
        self.slot.counters.snapshot()
    }

    /// How many reader instances serve lookups besides the writer.
    pub fn readers(&self) -> usize {
        self.slot.current.load().readers.len()
    }

    fn stopped(&self) -> CallError {
        CallError::Unavailable(format!("backend {} has stopped", self.slot.name))
    }
}
