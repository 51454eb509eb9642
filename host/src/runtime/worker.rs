//! One thread per backend owns its store and runs calls in arrival order.
//!
//! A plugin instance is single-threaded and stateful (it may cache), so all
//! of a backend's calls go through one queue; async sessions wait on a
//! oneshot answer and never block a runtime thread on plugin code.
//!
//! Readers: a backend whose records live in a database may have extra
//! instances, each on its own thread and database connection, that serve
//! only GET and scan calls, so lookups run in parallel. Writes, creates and
//! destroys stay on the one writer; after a create or destroy every reader
//! drops its instance (and whatever it cached about datasets). A reader
//! sees what is committed, which is everything acknowledged.
//!
//! Group commit: the worker takes every job already queued, runs them,
//! then asks the store to `sync` once, and only then answers. Writes are
//! acknowledged after they are durable, and many clients share one sync.
//! A job is one call or a chain of calls (a PUT CHAIN's inserts), run in
//! order until the first that fails.
//!
//! Swaps: the threads and stores serving a backend form a generation, and
//! the backend points at its current one through an atomic pointer. A swap
//! starts a new generation and moves the pointer: a call runs whole on the
//! generation it was queued on, and the new generation's threads wait until
//! the old one has answered its last call and dropped its stores, so two
//! versions of a plugin never work on the same storage at once.

use super::call::{Call, CallError, CallResult, RecordStore, Reply};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak, mpsc};
use std::time::SystemTime;
use tokio::sync::oneshot;
use vsam_plugin_sdk::Dataset;

enum Job {
    /// Calls to run in order, and where their results go.
    Run { calls: Vec<Call>, answer: Answer },
    /// Drop the instance: datasets were created or destroyed by the writer.
    Reset,
    /// GETs of one dataset queued one after the other, run as one
    /// `get-many` call (made by [`coalesce_lookups`], never sent; one key
    /// runs as a plain `get`).
    Lookups {
        dataset: Dataset,
        keys: Vec<Vec<u8>>,
        answers: Vec<Answer>,
    },
}

/// Merges each run of consecutive single GETs on one dataset into one
/// lookup job: a store that can answer many keys with one database round
/// trip does so. Nothing is reordered, so every GET still sees exactly the
/// writes queued before it.
fn coalesce_lookups(batch: Vec<Job>) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::with_capacity(batch.len());
    for job in batch {
        let job = match job {
            Job::Run { mut calls, answer } if matches!(calls.as_slice(), [Call::Get(..)]) => {
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
    fn call(&mut self, call: Call) -> CallResult {
        let result = self.store.call(call);
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
fn run_lookups(store: &mut Tracked, dataset: Dataset, keys: Vec<Vec<u8>>) -> Vec<CallResult> {
    let count = keys.len();
    if count == 1 {
        let key = keys.into_iter().next().expect("one key");
        return vec![store.call(Call::Get(dataset, key))];
    }
    match store.call(Call::GetMany(dataset.clone(), keys.clone())) {
        Ok(Reply::Records(records)) if records.len() == count => {
            records.into_iter().map(|r| Ok(Reply::Record(r))).collect()
        }
        Ok(other) => {
            let wrong = CallError::Fault(format!(
                "the plugin answered {count} lookups with {other:?}"
            ));
            vec![Err(wrong); count]
        }
        Err(CallError::Fault(_)) => keys
            .into_iter()
            .map(|key| store.call(Call::Get(dataset.clone(), key)))
            .collect(),
        Err(error) => vec![Err(error); count],
    }
}

/// Where a job's results go.
type Answer = oneshot::Sender<Vec<CallResult>>;

/// Most jobs answered after one sync.
const MAX_GROUP: usize = 256;

/// A call's result, and for a write the instance that ran it.
type Ran = (CallResult, Option<usize>);

/// Runs queued calls, syncs once if any of them tried to write, then
/// answers them. A write is acknowledged only if the instance that ran it
/// is the one that synced: one a fault dropped mid-group took the write
/// with it, and the write is answered as failed.
fn run_group(store: &mut dyn RecordStore, batch: Vec<Job>) {
    let mut store = Tracked {
        store,
        faults: Vec::new(),
    };
    let mut done: Vec<(Answer, Vec<Ran>)> = Vec::with_capacity(batch.len());
    let mut wrote = false;
    for job in coalesce_lookups(batch) {
        let (calls, answer) = match job {
            Job::Run { calls, answer } => (calls, answer),
            Job::Reset => {
                store.reset();
                continue;
            }
            Job::Lookups {
                dataset,
                keys,
                answers,
            } => {
                let results = run_lookups(&mut store, dataset, keys);
                for (answer, result) in answers.into_iter().zip(results) {
                    done.push((answer, vec![(result, None)]));
                }
                continue;
            }
        };
        let mut results = Vec::with_capacity(calls.len());
        for call in calls {
            let write = call.is_write();
            let result = store.call(call);
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
    let synced = if wrote {
        store.call(Call::Sync).map(drop)
    } else {
        Ok(())
    };
    if let Err(error) = &synced {
        tracing::error!("sync failed, writes of this group are reported failed: {error}");
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
        let _ = answer.send(acknowledged(results, &lost));
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

/// Opens once every thread of a generation has exited: the threads of the
/// next generation wait for it before their first job, so two versions of
/// a backend never run calls at the same time (a plugin may cache records
/// in its instance: the new one must start after the old one's last sync).
#[derive(Default)]
struct Retired {
    done: Mutex<bool>,
    signal: Condvar,
}

impl Retired {
    fn wait(&self) {
        let mut done = self.done.lock().unwrap();
        while !*done {
            done = self.signal.wait(done).unwrap();
        }
    }

    fn is_open(&self) -> bool {
        *self.done.lock().unwrap()
    }
}

/// Held by each thread of a generation; the last one dropped opens the gate.
struct ExitSignal(Arc<Retired>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        *self.0.done.lock().unwrap() = true;
        self.0.signal.notify_all();
    }
}

/// Starts a thread that owns `store` and runs the jobs sent to it, after
/// the previous generation (`after`) has retired.
fn start_worker(
    thread_name: String,
    mut store: Box<dyn RecordStore>,
    after: Option<Arc<Retired>>,
    exit: Arc<ExitSignal>,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (queue, jobs) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            if let Some(previous) = after {
                previous.wait();
            }
            while let Ok(first) = jobs.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_GROUP {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                run_group(store.as_mut(), batch);
            }
            // The store goes before the signal: its last words are written.
            drop(store);
            drop(exit);
        })?;
    Ok(queue)
}

/// Which plugin version a generation of workers runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The plugin's name in the configuration.
    pub plugin: String,
    /// SHA-256 of its component bytes, hex (`native` for a store in Rust).
    pub content_hash: String,
    /// When the version was loaded.
    pub loaded_at: SystemTime,
}

impl VersionInfo {
    /// A store compiled into the host rather than loaded (benchmarks).
    pub fn native(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_string(),
            content_hash: "native".into(),
            loaded_at: SystemTime::now(),
        }
    }
}

/// One generation of a backend's threads: the writer and its readers, all
/// running one plugin version with one set of settings. Immutable; a swap
/// starts a new generation and points the backend at it.
struct Generation {
    version: VersionInfo,
    started: SystemTime,
    queue: mpsc::Sender<Job>,
    readers: Vec<mpsc::Sender<Job>>,
    next_reader: AtomicUsize,
    in_flight: AtomicUsize,
    retired: Arc<Retired>,
}

impl Generation {
    fn start(
        name: &str,
        version: VersionInfo,
        store: Box<dyn RecordStore>,
        readers: Vec<Box<dyn RecordStore>>,
        after: Option<Arc<Retired>>,
    ) -> std::io::Result<Self> {
        let retired = Arc::new(Retired::default());
        let exit = Arc::new(ExitSignal(retired.clone()));
        let queue = start_worker(
            format!("backend-{name}"),
            store,
            after.clone(),
            exit.clone(),
        )?;
        let readers = readers
            .into_iter()
            .enumerate()
            .map(|(i, reader)| {
                start_worker(
                    format!("backend-{name}-r{i}"),
                    reader,
                    after.clone(),
                    exit.clone(),
                )
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            version,
            started: SystemTime::now(),
            queue,
            readers,
            next_reader: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            retired,
        })
    }

    fn status(&self, serving: bool) -> GenerationStatus {
        GenerationStatus {
            version: self.version.clone(),
            started: self.started,
            serving,
            readers: self.readers.len(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Counts a call in flight on a generation while it lives (and keeps the
/// generation, with its queues, alive until the call has its answer).
struct InFlight(Arc<Generation>);

impl InFlight {
    fn enter(generation: Arc<Generation>) -> Self {
        generation.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(generation)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Calls queued on a backend, not yet answered: what
/// [`BackendHandle::submit`] returns.
pub struct Pending {
    flight: Option<InFlight>,
    results: Option<oneshot::Receiver<Vec<CallResult>>>,
    changes_datasets: bool,
    backend: String,
}

impl Pending {
    /// Waits for the answers: the results of the calls that ran, in order,
    /// the failure last.
    pub async fn answers(mut self) -> Vec<CallResult> {
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

/// What `vsamr admin plugins` shows of one generation of a backend.
#[derive(Debug, Clone)]
pub struct GenerationStatus {
    /// The plugin version it runs.
    pub version: VersionInfo,
    /// When it started taking calls (or waiting to).
    pub started: SystemTime,
    /// True for the generation new calls go to; false while an old one
    /// finishes the calls it had.
    pub serving: bool,
    /// Its reader instances.
    pub readers: usize,
    /// Calls queued or running on it now.
    pub in_flight: usize,
}

/// The backend's name, the generation serving it, and the ones retiring.
struct Slot {
    name: String,
    current: ArcSwap<Generation>,
    retiring: Mutex<Vec<Weak<Generation>>>,
}

/// A handle to a backend: cheap to clone, usable from any task. Its plugin
/// version can be replaced while calls run ([`BackendHandle::replace`]):
/// each call runs whole on the version it started on.
#[derive(Clone)]
pub struct BackendHandle {
    slot: Arc<Slot>,
}

impl BackendHandle {
    /// Starts the worker thread that owns `store`, and one thread per
    /// reader store (see the module documentation).
    pub fn spawn(
        name: &str,
        version: VersionInfo,
        store: Box<dyn RecordStore>,
        readers: Vec<Box<dyn RecordStore>>,
    ) -> std::io::Result<Self> {
        let generation = Generation::start(name, version, store, readers, None)?;
        Ok(Self {
            slot: Arc::new(Slot {
                name: name.to_string(),
                current: ArcSwap::from_pointee(generation),
                retiring: Mutex::new(Vec::new()),
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
        let mut retiring = self.slot.retiring.lock().unwrap();
        let old = self.slot.current.load_full();
        let next = Generation::start(
            &self.slot.name,
            version,
            store,
            readers,
            Some(old.retired.clone()),
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
        let retiring = self.slot.retiring.lock().unwrap();
        out.extend(
            retiring
                .iter()
                .filter_map(Weak::upgrade)
                .filter(|generation| !generation.retired.is_open())
                .map(|generation| generation.status(false)),
        );
        out
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The plugin serving it now.
    pub fn plugin(&self) -> String {
        self.slot.current.load().version.plugin.clone()
    }

    /// Runs one call on the backend's thread.
    pub async fn call(&self, call: Call) -> CallResult {
        let mut results = self.call_chain(vec![call]).await;
        results.pop().unwrap_or_else(|| Err(self.stopped()))
    }

    /// Runs calls in order on the backend's thread, as one job sharing one
    /// sync, until the first that fails: the results of those that ran,
    /// the failure last.
    pub async fn call_chain(&self, calls: Vec<Call>) -> Vec<CallResult> {
        self.submit(calls).answers().await
    }

    /// Queues calls as one job now and returns without waiting: calls
    /// queued later on this backend run after them (a migration's copy
    /// relies on that order).
    pub fn submit(&self, calls: Vec<Call>) -> Pending {
        let generation = self.slot.current.load_full();
        let reads_only = calls
            .iter()
            .all(|call| matches!(call, Call::Get(..) | Call::Scan(..)));
        let changes_datasets = calls
            .iter()
            .any(|call| matches!(call, Call::Create(..) | Call::Destroy(..)));
        let readers = &generation.readers;
        let queue = match readers.len() {
            0 => &generation.queue,
            _ if !reads_only => &generation.queue,
            n => &readers[generation.next_reader.fetch_add(1, Ordering::Relaxed) % n],
        };
        let (answer, results) = oneshot::channel();
        let sent = queue.send(Job::Run { calls, answer }).is_ok();
        Pending {
            flight: Some(InFlight::enter(generation)),
            results: sent.then_some(results),
            changes_datasets,
            backend: self.slot.name.clone(),
        }
    }

    /// How many reader instances serve lookups besides the writer.
    pub fn readers(&self) -> usize {
        self.slot.current.load().readers.len()
    }

    fn stopped(&self) -> CallError {
        CallError::Unavailable(format!("backend {} has stopped", self.slot.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsam_plugin_sdk::{Direction, Organization, Start, StoreError};

    #[derive(Default)]
    struct Fake {
        calls: Vec<&'static str>,
        fail_sync: bool,
        fail_replace: bool,
        resets: u32,
    }

    impl RecordStore for Fake {
        fn call(&mut self, call: Call) -> CallResult {
            self.calls.push(call.name());
            match call {
                Call::Sync if self.fail_sync => {
                    Err(CallError::Store(StoreError::NoSpace("disk full".into())))
                }
                Call::Replace(..) if self.fail_replace => {
                    Err(CallError::Store(StoreError::NotFound))
                }
                Call::Get(..) => Ok(Reply::Record(None)),
                _ => Ok(Reply::Done),
            }
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
    }

    fn ds() -> Dataset {
        Dataset {
            name: "A".into(),
            organization: Organization::Esds,
            key_offset: 0,
            key_length: 0,
            max_record_length: 9,
            min_record_length: 1,
            codepage: "ascii".into(),
        }
    }

    fn chain(calls: Vec<Call>) -> (Job, oneshot::Receiver<Vec<CallResult>>) {
        let (answer, receiver) = oneshot::channel();
        (Job::Run { calls, answer }, receiver)
    }

    fn job(call: Call) -> (Job, oneshot::Receiver<Vec<CallResult>>) {
        chain(vec![call])
    }

    fn only(mut answer: oneshot::Receiver<Vec<CallResult>>) -> CallResult {
        let mut results = answer.try_recv().unwrap();
        assert_eq!(results.len(), 1);
        results.pop().unwrap()
    }

    #[test]
    fn one_sync_serves_a_group_of_writes() {
        let mut store = Fake::default();
        let (insert, inserted) = job(Call::Insert(ds(), vec![1], vec![1]));
        let (get, got) = job(Call::Get(ds(), vec![1]));
        let (replace, replaced) = job(Call::Replace(ds(), vec![1], vec![2]));
        run_group(&mut store, vec![insert, get, replace]);
        assert_eq!(store.calls, ["insert", "get", "replace", "sync"]);
        for answer in [inserted, got, replaced] {
            assert!(only(answer).is_ok());
        }
        let mut reads = Fake::default();
        let (get, _) = job(Call::Get(ds(), vec![1]));
        run_group(&mut reads, vec![get]);
        assert_eq!(reads.calls, ["get"], "no sync without a write");
    }

    #[test]
    fn a_group_whose_writes_all_failed_still_ends_with_a_sync() {
        let mut store = Fake {
            fail_replace: true,
            ..Fake::default()
        };
        let (replace, replaced) = job(Call::Replace(ds(), vec![1], vec![2]));
        run_group(&mut store, vec![replace]);
        assert_eq!(store.calls, ["replace", "sync"]);
        assert!(matches!(
            only(replaced),
            Err(CallError::Store(StoreError::NotFound))
        ));
    }

    #[test]
    fn a_failed_sync_fails_the_writes_and_resets_the_store() {
        let mut store = Fake {
            fail_sync: true,
            ..Fake::default()
        };
        let (insert, inserted) = job(Call::Insert(ds(), vec![1], vec![1]));
        let (get, got) = job(Call::Get(ds(), vec![1]));
        run_group(&mut store, vec![insert, get]);
        assert!(matches!(
            only(inserted),
            Err(CallError::Store(StoreError::NoSpace(_)))
        ));
        assert!(only(got).is_ok(), "reads are unaffected");
        assert_eq!(store.resets, 1);
    }

    #[test]
    fn a_chain_stops_at_its_first_failure_and_shares_the_sync() {
        let mut store = Fake {
            fail_replace: true,
            ..Fake::default()
        };
        let (job, mut answer) = chain(vec![
            Call::Insert(ds(), vec![1], vec![1]),
            Call::Replace(ds(), vec![1], vec![2]),
            Call::Insert(ds(), vec![2], vec![2]),
        ]);
        let (other, other_answer) = job_insert(3);
        run_group(&mut store, vec![job, other]);
        assert_eq!(store.calls, ["insert", "replace", "insert", "sync"]);
        let results = answer.try_recv().unwrap();
        assert_eq!(results.len(), 2, "the third call never ran");
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(CallError::Store(StoreError::NotFound))
        ));
        assert!(only(other_answer).is_ok());
    }

    fn job_insert(key: u8) -> (Job, oneshot::Receiver<Vec<CallResult>>) {
        job(Call::Insert(ds(), vec![key], vec![key]))
    }

    /// A store that logs which instance ran what, for routing tests.
    struct Logged {
        who: &'static str,
        log: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl RecordStore for Logged {
        fn call(&mut self, call: Call) -> CallResult {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {}", self.who, call.name()));
            Ok(match call {
                Call::Get(..) => Reply::Record(None),
                _ => Reply::Done,
            })
        }
        fn reset(&mut self) {
            self.log.lock().unwrap().push(format!("{} reset", self.who));
        }
    }

    #[tokio::test]
    async fn readers_serve_lookups_and_forget_datasets_the_writer_changed() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = |who| -> Box<dyn RecordStore> {
            Box::new(Logged {
                who,
                log: log.clone(),
            })
        };
        let backend = BackendHandle::spawn(
            "b",
            VersionInfo::native("p"),
            store("writer"),
            vec![store("r0"), store("r1")],
        )
        .unwrap();
        assert_eq!(backend.readers(), 2);
        for _ in 0..2 {
            backend.call(Call::Get(ds(), vec![1])).await.unwrap();
        }
        backend
            .call(Call::Scan(ds(), Start::Edge, Direction::Forward, 5))
            .await
            .unwrap();
        backend
            .call(Call::Insert(ds(), vec![1], vec![1]))
            .await
            .unwrap();
        backend.call(Call::Create(ds(), None)).await.unwrap();
        // The resets are queued before the next lookup on each reader.
        backend.call(Call::Get(ds(), vec![1])).await.unwrap();
        backend.call(Call::Get(ds(), vec![1])).await.unwrap();
        let log = log.lock().unwrap().clone();
        let of = |who: &str| -> Vec<String> {
            log.iter()
                .filter(|line| line.starts_with(who))
                .cloned()
                .collect()
        };
        assert_eq!(
            of("writer"),
            ["writer insert", "writer sync", "writer create"]
        );
        assert_eq!(of("r0"), ["r0 get", "r0 scan", "r0 reset", "r0 get"]);
        assert_eq!(of("r1"), ["r1 get", "r1 reset", "r1 get"]);
    }

    /// A store that answers GET and get-many with the key itself.
    #[derive(Default)]
    struct Echo {
        calls: Vec<String>,
    }

    impl RecordStore for Echo {
        fn call(&mut self, call: Call) -> CallResult {
            Ok(match call {
                Call::Get(ds, key) => {
                    self.calls.push(format!("get {}", ds.name));
                    Reply::Record(Some(key))
                }
                Call::GetMany(ds, keys) => {
                    self.calls
                        .push(format!("get-many {} {}", ds.name, keys.len()));
                    Reply::Records(keys.into_iter().map(Some).collect())
                }
                other => {
                    self.calls.push(other.name().to_string());
                    Reply::Done
                }
            })
        }
    }

    #[test]
    fn consecutive_gets_of_a_dataset_become_one_lookup() {
        let other = Dataset {
            name: "B".into(),
            ..ds()
        };
        let mut store = Echo::default();
        let jobs = vec![
            job(Call::Get(ds(), vec![1])),
            job(Call::Get(ds(), vec![2])),
            job(Call::Insert(ds(), vec![9], vec![9])),
            job(Call::Get(ds(), vec![3])),
            job(Call::Get(other.clone(), vec![4])),
            job(Call::Get(other.clone(), vec![5])),
            job(Call::Get(other, vec![6])),
        ];
        let (jobs, answers): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        run_group(&mut store, jobs);
        assert_eq!(
            store.calls,
            ["get-many A 2", "insert", "get A", "get-many B 3", "sync"],
            "nothing moves across the write"
        );
        let keys: Vec<u8> = answers
            .into_iter()
            .filter_map(|answer| match only(answer) {
                Ok(Reply::Record(Some(key))) => Some(key[0]),
                _ => None,
            })
            .collect();
        assert_eq!(keys, [1, 2, 3, 4, 5, 6], "each GET gets its own record");
    }

    /// A store whose lookups and inserts of key 7 trap (the instance is
    /// replaced).
    struct Poisoned;

    impl RecordStore for Poisoned {
        fn call(&mut self, call: Call) -> CallResult {
            let trap = || Err(CallError::Fault("trapped".into()));
            match call {
                Call::Get(_, key) | Call::Insert(_, key, _) if key == [7] => trap(),
                Call::Get(_, key) => Ok(Reply::Record(Some(key))),
                Call::GetMany(_, keys) if keys.contains(&vec![7]) => trap(),
                Call::GetMany(_, keys) => Ok(Reply::Records(keys.into_iter().map(Some).collect())),
                _ => Ok(Reply::Done),
            }
        }
    }

    #[test]
    fn a_lookup_that_traps_fails_only_the_get_that_caused_it() {
        let (jobs, answers): (Vec<_>, Vec<_>) = [1u8, 7, 3]
            .into_iter()
            .map(|key| job(Call::Get(ds(), vec![key])))
            .unzip();
        run_group(&mut Poisoned, jobs);
        let results: Vec<CallResult> = answers.into_iter().map(only).collect();
        assert!(matches!(results[0], Ok(Reply::Record(Some(ref k))) if k == &[1]));
        assert!(matches!(results[1], Err(CallError::Fault(_))));
        assert!(matches!(results[2], Ok(Reply::Record(Some(ref k))) if k == &[3]));
    }

    #[test]
    fn writes_whose_instance_a_fault_dropped_are_not_acknowledged() {
        let (before, before_answer) = job_insert(1);
        let (chain_before, mut chain_answer) = chain(vec![
            Call::Insert(ds(), vec![4], vec![4]),
            Call::Insert(ds(), vec![5], vec![5]),
        ]);
        let (read, read_answer) = job(Call::Get(ds(), vec![2]));
        let (faulting, fault_answer) = job_insert(7);
        let (after, after_answer) = job_insert(3);
        run_group(
            &mut Poisoned,
            vec![before, chain_before, read, faulting, after],
        );
        let lost = |result: &CallResult| matches!(result, Err(CallError::Fault(m)) if m.contains("replaced before it was synced (trapped)"));
        assert!(
            lost(&only(before_answer)),
            "held only by the dropped instance"
        );
        let chain_results = chain_answer.try_recv().unwrap();
        assert_eq!(chain_results.len(), 1, "the chain fails at its first write");
        assert!(lost(&chain_results[0]));
        assert!(only(read_answer).is_ok(), "a read is not undone");
        assert!(matches!(only(fault_answer), Err(CallError::Fault(m)) if m == "trapped"));
        assert!(
            only(after_answer).is_ok(),
            "run and synced by the new instance"
        );
    }
}
