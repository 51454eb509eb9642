//! What a backend's serving tasks count for `/metrics`: plugin faults,
//! the time of each plugin call by function, the group commits (how many
//! syncs, how many writes each made durable, how long they took) and the
//! plugin instances' memory. A worker's store is wrapped in [`Counted`],
//! so the counting stays out of the group logic.

use super::super::call::{CALL_NAMES, Call, CallError, CallFuture, CallResult, RecordStore};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds of the call-time buckets, in seconds: 10 us to about 2.6 s.
const CALL_SECONDS: [f64; 19] = [
    0.000_01, 0.000_02, 0.000_04, 0.000_08, 0.000_16, 0.000_32, 0.000_64, 0.001_28, 0.002_56,
    0.005_12, 0.010_24, 0.020_48, 0.040_96, 0.081_92, 0.163_84, 0.327_68, 0.655_36, 1.310_72,
    2.621_44,
];
/// Upper bounds of the group-size buckets: writes made durable by one sync.
const GROUP_SIZES: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A histogram that threads observe into without a lock.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// One count per bound, then one above the last.
    counts: Box<[AtomicU64]>,
    /// The sum of the values, as f64 bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn observe(&self, value: f64) {
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

/// A histogram's values at one moment: Prometheus's sum, count and
/// buckets (each bucket's own count, the last one's bound `f64::MAX`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// The sum of the values observed.
    pub sum: f64,
    /// How many values were observed.
    pub count: u64,
    /// Each bucket's upper bound and the values in it.
    pub buckets: Vec<(f64, u64)>,
}

/// The causes of plugin faults, in the order `BackendCounters` counts
/// them.
pub const FAULT_CAUSES: [&str; 4] = ["trap", "timeout", "memory", "start"];

/// A backend's counts, shared by its generations' threads.
#[derive(Debug)]
pub struct BackendCounters {
    /// Faults by cause, in [`FAULT_CAUSES`] order.
    faults: [AtomicU64; 4],
    syncs: AtomicU64,
    synced_writes: AtomicU64,
    sync_nanos: AtomicU64,
    /// Time of each call, by [`Call::index`].
    calls: Vec<AtomicHistogram>,
    /// Writes per successful sync.
    groups: AtomicHistogram,
    /// Linear memory of the live instances of every thread.
    memory: AtomicI64,
}

impl Default for BackendCounters {
    fn default() -> Self {
        Self {
            faults: Default::default(),
            syncs: AtomicU64::new(0),
            synced_writes: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
            calls: CALL_NAMES
                .iter()
                .map(|_| AtomicHistogram::new(&CALL_SECONDS))
                .collect(),
            groups: AtomicHistogram::new(&GROUP_SIZES),
            memory: AtomicI64::new(0),
        }
    }
}

/// A snapshot of `BackendCounters`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendCounts {
    /// Calls the plugin failed by misbehaving (a trap, its time or memory
    /// limit, an instance that would not start), by cause in
    /// [`FAULT_CAUSES`] order: each replaced the instance.
    pub faults: [u64; 4],
    /// Successful syncs (group commits).
    pub syncs: u64,
    /// Writes those syncs made durable.
    pub synced_writes: u64,
    /// Time spent in syncs, in nanoseconds.
    pub sync_nanos: u64,
    /// Time of the calls that ran, by function (those that ran at least
    /// once).
    pub calls: Vec<(&'static str, HistogramSnapshot)>,
    /// Writes per successful sync.
    pub groups: Option<HistogramSnapshot>,
    /// Bytes of linear memory the plugin's live instances hold.
    pub memory_bytes: u64,
}

impl BackendCounters {
    /// The counts now.
    pub fn snapshot(&self) -> BackendCounts {
        BackendCounts {
            faults: std::array::from_fn(|i| self.faults[i].load(Ordering::Relaxed)),
            syncs: self.syncs.load(Ordering::Relaxed),
            synced_writes: self.synced_writes.load(Ordering::Relaxed),
            sync_nanos: self.sync_nanos.load(Ordering::Relaxed),
            calls: CALL_NAMES
                .iter()
                .zip(&self.calls)
                .map(|(name, histogram)| (*name, histogram.snapshot()))
                .filter(|(_, snapshot)| snapshot.count > 0)
                .collect(),
            groups: Some(self.groups.snapshot()),
            memory_bytes: self.memory.load(Ordering::Relaxed).max(0) as u64,
        }
    }
}

/// A store whose calls are counted into `counters`.
pub(super) struct Counted {
    store: Box<dyn RecordStore>,
    counters: std::sync::Arc<BackendCounters>,
    /// Writes run since the last sync.
    pending: u64,
    /// The memory of its instance last counted into the backend's.
    memory: u64,
    /// How long its last sync took.
    last_sync: Duration,
}

impl Counted {
    pub(super) fn new(
        store: Box<dyn RecordStore>,
        counters: std::sync::Arc<BackendCounters>,
    ) -> Self {
        Self {
            store,
            counters,
            pending: 0,
            memory: 0,
            last_sync: Duration::ZERO,
        }
    }

    /// How long its last sync took (zero before the first).
    pub(super) fn last_sync(&self) -> Duration {
        self.last_sync
    }

    /// Counts the instance's memory now into the backend's.
    fn recount_memory(&mut self) {
        let now = self.store.memory_bytes();
        if now != self.memory {
            let change = now as i64 - self.memory as i64;
            self.counters.memory.fetch_add(change, Ordering::Relaxed);
            self.memory = now;
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counters
            .memory
            .fetch_sub(self.memory as i64, Ordering::Relaxed);
    }
}

impl Counted {
    /// Counts a call that took `took` and ended in `result`.
    fn account(&mut self, call: (usize, bool, bool), took: Duration, result: &CallResult) {
        let (index, sync, write) = call;
        self.counters.calls[index].observe(took.as_secs_f64());
        self.recount_memory();
        if let Err(CallError::Fault(_)) = result {
            let cause = self.store.fault_cause();
            let at = FAULT_CAUSES.iter().position(|c| *c == cause).unwrap_or(0);
            self.counters.faults[at].fetch_add(1, Ordering::Relaxed);
        }
        if sync {
            self.last_sync = took;
            if result.is_ok() {
                let nanos = took.as_nanos() as u64;
                self.counters.groups.observe(self.pending as f64);
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
    }
}

/// What [`Counted::account`] needs to know of a call before it runs:
/// its index, whether it is a sync, whether it writes.
fn kind_of(call: &Call) -> (usize, bool, bool) {
    (call.index(), matches!(call, Call::Sync), call.is_write())
}

impl RecordStore for Counted {
    fn call(&mut self, call: Call) -> CallResult {
        let kind = kind_of(&call);
        let started = Instant::now();
        let result = self.store.call(call);
        self.account(kind, started.elapsed(), &result);
        result
    }

    fn call_async(&mut self, call: Call) -> CallFuture<'_> {
        Box::pin(async move {
            let kind = kind_of(&call);
            let started = Instant::now();
            let result = self.store.call_async(call).await;
            self.account(kind, started.elapsed(), &result);
            result
        })
    }

    fn writes_block(&self) -> bool {
        self.store.writes_block()
    }

    fn reset(&mut self) {
        // The writes since the last sync went with the instance.
        self.pending = 0;
        self.store.reset();
        self.recount_memory();
    }

    fn memory_bytes(&self) -> u64 {
        self.memory
    }

    fn fault_cause(&self) -> &'static str {
        self.store.fault_cause()
    }

    fn stage_outbox(&mut self, row: crate::runtime::sql::outbox::OutboxRow) -> bool {
        self.store.stage_outbox(row)
    }

    fn outbox_outcome(&mut self) -> crate::runtime::sql::outbox::Outcome {
        self.store.outbox_outcome()
    }
}
