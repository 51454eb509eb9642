//! One task per backend owns its store and runs calls in arrival order.
//!
//! A plugin instance is single-threaded and stateful (it may cache), so all
//! of a backend's calls go through one queue, and sessions wait on a
//! oneshot answer. The task runs on the runtime's threads, so that a
//! request's call runs on the thread that read the request (see
//! `generation::start_worker` for why, and for what may block).
//!
//! Readers: a backend whose records live in a database may have extra
//! instances, each on its own task and database connection, that serve
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
//! Units of work: a unit's writes are one job that runs between two syncs
//! of its own, on a store that keeps such a group whole (`units.whole`):
//! its sync commits all of it, and a failure drops the instance, which
//! discards all of it.
//!
//! Chores: the host's own work on the backend's database (emptying the
//! change outbox) is a job of the writer's too, run between two groups,
//! so that it never competes with the writer for SQLite's one write lock.
//!
//! Swaps: the tasks and stores serving a backend form a generation, and
//! the backend points at its current one through an atomic pointer. A swap
//! starts a new generation and moves the pointer: a call runs whole on the
//! generation it was queued on, and the new generation's tasks wait until
//! the old one has answered its last call and dropped its stores, so two
//! versions of a plugin never work on the same storage at once.
//!
//! Stops: a stopping server queues a stop behind every task's jobs and
//! waits until the tasks have dropped their stores, so that its databases
//! are closed before it gives back the locks on its storage.

mod counters;
mod generation;
mod group;
mod handle;
#[cfg(test)]
mod tests;

pub use counters::{BackendCounts, FAULT_CAUSES, HistogramSnapshot};
pub use generation::{GenerationStatus, VersionInfo};
pub use handle::{BackendHandle, Pending};

use super::call::{Call, CallError, CallResult};
use crate::changes::Capture;
use arc_swap::ArcSwapOption;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::oneshot;
use vsam_plugin_sdk::Dataset;

/// Where a backend's writer finds the change capture: empty until the
/// server follows changes of some dataset (mirrors, the change stream),
/// kept across the backend's generations.
pub(crate) struct CaptureSlot {
    backend: String,
    capture: ArcSwapOption<Capture>,
}

impl CaptureSlot {
    fn new(backend: &str) -> Self {
        Self {
            backend: backend.to_string(),
            capture: ArcSwapOption::empty(),
        }
    }

    fn current(&self) -> Option<Arc<Capture>> {
        self.capture.load_full()
    }
}

/// What a backend's serving task takes from its queue.
enum Job {
    /// Calls to run in order, and where their results go; `recorded`:
    /// their changes go to the change log (false for a replica's writes,
    /// which repeat changes recorded where they were made).
    Run {
        calls: Vec<Call>,
        answer: Answer,
        recorded: bool,
    },
    /// A unit of work's writes: run alone between two syncs, all made
    /// durable by one sync, or all discarded with the instance.
    Unit { calls: Vec<Call>, answer: Answer },
    /// Drop the instance: datasets were created or destroyed by the writer
    /// (or by another server of a fleet).
    Reset,
    /// GETs of one dataset queued one after the other, run as one
    /// `get-many` call (made by `group::coalesce_lookups`, never sent; one key
    /// runs as a plain `get`).
    Lookups {
        dataset: Dataset,
        keys: Vec<Vec<u8>>,
        answers: Vec<Answer>,
    },
    /// The host's own work on the backend's database, run by the writer
    /// between two groups (see [`BackendHandle::between_groups`]).
    Chore(Chore),
    /// End the task once the jobs queued before this one have run: its
    /// store is dropped, which closes its files and database connections,
    /// and the jobs queued after it are answered that the backend has
    /// stopped (see [`BackendHandle::stop`]). Never reaches a group.
    Stop,
}

/// A [`Job::Chore`]'s work.
type Chore = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Job {
    /// True for a job that only reads: lookups, scans, dropping the
    /// instance. Anything else may write, and on local disk wait in fsync.
    fn reads_only(&self) -> bool {
        match self {
            Job::Run { calls, .. } => calls.iter().all(Call::is_read),
            Job::Lookups { .. } | Job::Reset => true,
            Job::Unit { .. } | Job::Chore(_) | Job::Stop => false,
        }
    }
}

/// Where a job's results go. One dropped unanswered while its task
/// unwinds from a panic (a bug in vsamrd's own code, see
/// [`crate::after_panic`]) answers so, instead of leaving its caller to read
/// that the backend has stopped.
struct Answer(Option<oneshot::Sender<Vec<CallResult>>>);

impl Answer {
    /// An answer, and where its results arrive.
    fn channel() -> (Self, oneshot::Receiver<Vec<CallResult>>) {
        let (sender, receiver) = oneshot::channel();
        (Self(Some(sender)), receiver)
    }

    /// Sends the results (to no one if the caller has gone).
    fn send(mut self, results: Vec<CallResult>) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(results);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(sender) = self.0.take()
        {
            let _ = sender.send(vec![Err(CallError::Unavailable(
                "not run to its end: a bug in vsamrd's own code ended it (the log has its place); nothing of it was acknowledged, repeat it".into(),
            ))]);
        }
    }
}
