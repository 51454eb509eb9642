//! What a backend's worker threads count for `/metrics`: plugin faults,
//! and the group commits (how many syncs, how many writes they made
//! durable, how long they took). A worker's store is wrapped in
//! [`Counted`], so the counting stays out of the group logic.

use super::super::call::{Call, CallError, CallResult, RecordStore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A backend's counts, shared by its generations' threads.
#[derive(Debug, Default)]
pub struct BackendCounters {
    faults: AtomicU64,
    syncs: AtomicU64,
    synced_writes: AtomicU64,
    sync_nanos: AtomicU64,
}

/// A snapshot of [`BackendCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendCounts {
    /// Calls the plugin failed by misbehaving (a trap, its time or memory
    /// limit): each replaced the instance.
    pub faults: u64,
    /// Successful syncs (group commits).
    pub syncs: u64,
    /// Writes those syncs made durable.
    pub synced_writes: u64,
    /// Time spent in syncs, in nanoseconds.
    pub sync_nanos: u64,
}

impl BackendCounters {
    /// The counts now.
    pub fn snapshot(&self) -> BackendCounts {
        BackendCounts {
            faults: self.faults.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            synced_writes: self.synced_writes.load(Ordering::Relaxed),
            sync_nanos: self.sync_nanos.load(Ordering::Relaxed),
        }
    }
}

/// A store whose calls are counted into `counters`.
pub(super) struct Counted {
    pub(super) store: Box<dyn RecordStore>,
    pub(super) counters: std::sync::Arc<BackendCounters>,
    /// Writes run since the last sync.
    pub(super) pending: u64,
}

impl RecordStore for Counted {
    fn call(&mut self, call: Call) -> CallResult {
        let sync = matches!(call, Call::Sync);
        let write = call.is_write();
        let started = Instant::now();
        let result = self.store.call(call);
        if let Err(CallError::Fault(_)) = &result {
            self.counters.faults.fetch_add(1, Ordering::Relaxed);
        }
        if sync {
            if result.is_ok() {
                let nanos = started.elapsed().as_nanos() as u64;
                self.counters.syncs.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .synced_writes
                    .fetch_add(self.pending, Ordering::Relaxed);
                self.counters.sync_nanos.fetch_add(nanos, Ordering::Relaxed);
            }
            self.pending = 0;
        } else if write && result.is_ok() {
            self.pending += 1;
        }
        result
    }

    fn reset(&mut self) {
        // The writes since the last sync went with the instance.
        self.pending = 0;
        self.store.reset();
    }
}
