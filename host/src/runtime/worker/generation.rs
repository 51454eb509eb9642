//! Generations: the tasks serving one plugin version of a backend, and
//! their retirement. A new generation's tasks wait until the old one's
//! have answered their last call and ended.

use super::super::call::RecordStore;
use super::counters::{BackendCounters, Counted};
use super::group::{MAX_GROUP, run_group};
use super::{CaptureSlot, Job};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{Notify, mpsc};

/// Opens once every task of a generation has ended: the tasks of the next
/// generation wait for it before their first job, so two versions of a
/// backend never run calls at the same time (a plugin may cache records
/// in its instance: the new one must start after the old one's last sync).
#[derive(Default)]
pub(super) struct Retired {
    done: AtomicBool,
    signal: Notify,
}

impl Retired {
    pub(super) async fn wait(&self) {
        loop {
            let signalled = self.signal.notified();
            tokio::pin!(signalled);
            signalled.as_mut().enable();
            if self.is_open() {
                return;
            }
            signalled.await;
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// Held by each task of a generation; the last one dropped opens the gate.
struct ExitSignal(Arc<Retired>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
        self.0.signal.notify_waiters();
    }
}

/// Where a job queue's sender puts jobs for one store's task.
pub(super) type Queue = mpsc::UnboundedSender<Job>;

/// Starts the task that owns `store` and runs the jobs sent to it, after
/// the previous generation (`after`) has retired.
///
/// The task runs on the runtime's threads, not a thread of its own: a
/// connection's request queues its job and waits on the answer, and the
/// task, woken on the same thread, runs the plugin call there and then
/// wakes the connection again on that thread. No request crosses threads
/// on its way through a backend, which costs two sleeps and wake-ups of
/// a thread per request (about half of a lookup's time on a loopback
/// connection). A plugin waiting in a host function (a query, an object
/// GET) awaits like any task; one computing for long yields at every
/// epoch tick (see `wasm::store::on_epoch_tick`); a group of writes waits in
/// fsync right here while the disk is quick, elsewhere once it is slow
/// ([`run_batch`]).
fn start_worker(
    runtime: &Handle,
    store: Box<dyn RecordStore>,
    after: Option<Arc<Retired>>,
    exit: Arc<ExitSignal>,
    counters: Arc<BackendCounters>,
    capture: Option<Arc<CaptureSlot>>,
    backend: String,
) -> Queue {
    let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
    let mut store = Counted::new(store, counters);
    runtime.spawn(async move {
        if let Some(previous) = after {
            previous.wait().await;
        }
        let mut stopping = false;
        while !stopping && let Some(first) = jobs.recv().await {
            let mut batch = match first {
                Job::Stop => break,
                first => vec![first],
            };
            while batch.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(Job::Stop) => {
                        stopping = true;
                        break;
                    }
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let reads_only = batch.iter().all(Job::reads_only);
            let batch = run_batch(&mut store, batch, reads_only, capture.as_deref());
            let ran = AssertUnwindSafe(batch).catch_unwind().await;
            if ran.is_err() {
                after_panic(&mut store, &backend, reads_only);
            }
        }
        // Jobs queued after a stop go unanswered: their callers learn that
        // the backend has stopped, and later sends fail at once.
        drop(jobs);
        // The store goes before the signal: its last words are written.
        drop(store);
        drop(exit);
    });
    queue
}

/// What a panic (a bug in vsamrd's own code, logged by the panic hook)
/// in a batch of `backend`'s jobs leaves: its jobs were answered that a bug
/// ended them as it unwound (`Answer`). A batch that only read dropped
/// nothing but the instance's state, which may be half-changed: the next
/// call starts a new instance from storage, and the backend serves on. A
/// batch that may write may have stopped between the store's commit and
/// the change log's, which must agree: vsamrd stops
/// ([`crate::after_panic::stop_after_panic`]) and starts again from what is
/// stored, as after a crash.
fn after_panic(store: &mut Counted, backend: &str, reads_only: bool) {
    if !reads_only {
        crate::after_panic::stop_after_panic(&format!(
            "a group of writes of backend {backend} panicked (the bug logged before this line), so its store and the change log may not agree on what it wrote"
        ));
    }
    store.reset();
    tracing::error!(
        backend,
        "a group of reads of backend {backend} panicked (the bug logged before this line): its calls were answered as failed and its plugin instance starts again from storage"
    );
}

/// How long a store's last sync may have taken for its next group of
/// writes to run right on the runtime thread.
const QUICK_SYNC: Duration = Duration::from_millis(5);

/// Runs a batch of jobs (`reads_only` if none may write) on the serving
/// task. A batch that only reads runs right here, and so does one that
/// writes while the store's syncs are
/// quick (an fsync of a healthy local disk, well under a millisecond
/// here: blocking for it costs less than handing the thread's other tasks
/// elsewhere, measured). On a store whose last sync took longer than
/// [`QUICK_SYNC`] (a slow or stalling disk), a batch that may write runs in
/// `block_in_place`, which first hands this thread's other tasks to
/// another runtime thread, so that the disk does not hold up the
/// connections that share the thread.
async fn run_batch(
    store: &mut Counted,
    batch: Vec<Job>,
    reads_only: bool,
    capture: Option<&CaptureSlot>,
) {
    if !reads_only
        && store.writes_block()
        && store.last_sync() > QUICK_SYNC
        && Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread
    {
        tokio::task::block_in_place(|| {
            Handle::current().block_on(run_group(store, batch, capture))
        });
    } else {
        run_group(store, batch, capture).await;
    }
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
    /// The store belongs to this server alone (local storage, or none):
    /// no other server writes it, so what this server wrote is all there
    /// is (see `BackendSettings::owns_its_store`).
    pub own_store: bool,
    /// The PostgreSQL database the store is in, which other servers may
    /// share: record locks are taken in it too (see `crate::fleet`).
    pub shared_database: Option<String>,
    /// The database granted to the store, if any: the host keeps its
    /// change outbox there (see `crate::runtime::sql::outbox`).
    pub database: Option<crate::runtime::sql::DatabaseUrl>,
    /// Where a mirror on the store records how far it applied a change
    /// log.
    pub applied_place: Option<crate::runtime::AppliedPlace>,
}

impl VersionInfo {
    /// This version serving a backend of `settings`: what it learns of
    /// the backend's store.
    pub fn serving(self, settings: &crate::runtime::BackendSettings) -> Self {
        Self {
            own_store: settings.owns_its_store(),
            shared_database: settings.shared_database(),
            database: settings.database.clone(),
            applied_place: settings.applied_place(),
            ..self
        }
    }

    /// A store compiled into the host rather than loaded (benchmarks).
    pub fn native(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_string(),
            content_hash: "native".into(),
            loaded_at: SystemTime::now(),
            own_store: false,
            shared_database: None,
            database: None,
            applied_place: None,
        }
    }
}

/// One generation of a backend's tasks: the writer and its readers, all
/// running one plugin version with one set of settings. Immutable; a swap
/// starts a new generation and points the backend at it.
pub(super) struct Generation {
    pub(super) version: VersionInfo,
    pub(super) started: SystemTime,
    pub(super) queue: Queue,
    pub(super) readers: Vec<Queue>,
    pub(super) next_reader: AtomicUsize,
    pub(super) in_flight: AtomicUsize,
    pub(super) retired: Arc<Retired>,
}

impl Generation {
    /// Starts the writer's and the readers' tasks on the runtime this is
    /// called in; fails outside one.
    pub(super) fn start(
        version: VersionInfo,
        store: Box<dyn RecordStore>,
        readers: Vec<Box<dyn RecordStore>>,
        after: Option<Arc<Retired>>,
        counters: &Arc<BackendCounters>,
        capture: &Arc<CaptureSlot>,
    ) -> std::io::Result<Self> {
        let runtime = Handle::try_current().map_err(std::io::Error::other)?;
        let retired = Arc::new(Retired::default());
        let exit = Arc::new(ExitSignal(retired.clone()));
        let queue = start_worker(
            &runtime,
            store,
            after.clone(),
            exit.clone(),
            counters.clone(),
            Some(capture.clone()),
            capture.backend.clone(),
        );
        let readers = readers
            .into_iter()
            .map(|reader| {
                start_worker(
                    &runtime,
                    reader,
                    after.clone(),
                    exit.clone(),
                    counters.clone(),
                    None,
                    capture.backend.clone(),
                )
            })
            .collect();
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

    pub(super) fn status(&self, serving: bool) -> GenerationStatus {
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
pub(super) struct InFlight(pub(super) Arc<Generation>);

impl InFlight {
    pub(super) fn enter(generation: Arc<Generation>) -> Self {
        generation.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(generation)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
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
