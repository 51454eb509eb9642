//! Generations: the threads serving one plugin version of a backend, and
//! their retirement. A new generation's threads wait until the old one's
//! have answered their last call and exited.

use super::super::call::RecordStore;
use super::Job;
use super::counters::{BackendCounters, Counted};
use super::group::{MAX_GROUP, run_group};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::SystemTime;

/// Opens once every thread of a generation has exited: the threads of the
/// next generation wait for it before their first job, so two versions of
/// a backend never run calls at the same time (a plugin may cache records
/// in its instance: the new one must start after the old one's last sync).
#[derive(Default)]
pub(super) struct Retired {
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

    pub(super) fn is_open(&self) -> bool {
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
    store: Box<dyn RecordStore>,
    after: Option<Arc<Retired>>,
    exit: Arc<ExitSignal>,
    counters: Arc<BackendCounters>,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (queue, jobs) = mpsc::channel::<Job>();
    let mut store = Counted::new(store, counters);
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
                run_group(&mut store, batch);
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
    /// The store belongs to this server alone (local storage, or none):
    /// no other server writes it, so what this server wrote is all there
    /// is (see `BackendSettings::owns_its_store`).
    pub own_store: bool,
    /// The PostgreSQL database the store is in, which other servers may
    /// share: record locks are taken in it too (see `crate::fleet`).
    pub shared_database: Option<String>,
}

impl VersionInfo {
    /// A store compiled into the host rather than loaded (benchmarks).
    pub fn native(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_string(),
            content_hash: "native".into(),
            loaded_at: SystemTime::now(),
            own_store: false,
            shared_database: None,
        }
    }
}

/// One generation of a backend's threads: the writer and its readers, all
/// running one plugin version with one set of settings. Immutable; a swap
/// starts a new generation and points the backend at it.
pub(super) struct Generation {
    pub(super) version: VersionInfo,
    pub(super) started: SystemTime,
    pub(super) queue: mpsc::Sender<Job>,
    pub(super) readers: Vec<mpsc::Sender<Job>>,
    pub(super) next_reader: AtomicUsize,
    pub(super) in_flight: AtomicUsize,
    pub(super) retired: Arc<Retired>,
}

impl Generation {
    pub(super) fn start(
        name: &str,
        version: VersionInfo,
        store: Box<dyn RecordStore>,
        readers: Vec<Box<dyn RecordStore>>,
        after: Option<Arc<Retired>>,
        counters: &Arc<BackendCounters>,
    ) -> std::io::Result<Self> {
        let retired = Arc::new(Retired::default());
        let exit = Arc::new(ExitSignal(retired.clone()));
        let queue = start_worker(
            format!("backend-{name}"),
            store,
            after.clone(),
            exit.clone(),
            counters.clone(),
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
                    counters.clone(),
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
