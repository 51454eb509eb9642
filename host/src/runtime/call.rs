//! A plugin call as a value, so calls can queue for the thread that owns a
//! backend's instance, and the same calls can run against a native store.

use std::future::Future;
use std::pin::Pin;
use vsam_plugin_sdk::{Dataset, Direction, Entry, Start, StoreError};

/// One call of the store contract.
#[derive(Debug, Clone)]
pub enum Call {
    /// A new dataset and its COBOL copybook layout, if any.
    Create(Dataset, Option<String>),
    /// A dataset removed with every record.
    Destroy(Dataset),
    /// The record with this key, if any.
    Get(Dataset, Vec<u8>),
    /// GETs queued together, answered by one call.
    GetMany(Dataset, Vec<Vec<u8>>),
    /// Up to the count of records from a start, in a direction.
    Scan(Dataset, Start, Direction, u32),
    /// A record under a key no record has.
    Insert(Dataset, Vec<u8>, Vec<u8>),
    /// A unit of work's inserts into one dataset, sent together.
    InsertMany(Dataset, Vec<Entry>),
    /// The record under a key that has one, replaced.
    Replace(Dataset, Vec<u8>, Vec<u8>),
    /// The record under a key erased.
    Delete(Dataset, Vec<u8>),
    /// An ESDS record stored after the last one: the answer is its key,
    /// the RBA.
    Append(Dataset, Vec<u8>),
    /// A dataset's storage compacted or tidied (its last CLOSE, and at
    /// shutdown).
    Flush(Dataset),
    /// Every write before it made durable: a group's commit.
    Sync,
    /// Whether the store keeps the writes between two syncs whole (the
    /// optional `units` interface): a unit of work needs it.
    WholeUnits,
    /// A mirror's batch of changes to one dataset, as their net effect:
    /// records stored whatever the key holds, keys erased if present (the
    /// optional `mirror` interface).
    Apply(Dataset, Vec<Entry>, Vec<Vec<u8>>),
}

/// Every contract function's name, in [`Call::index`] order.
pub const CALL_NAMES: [&str; 14] = [
    "create",
    "destroy",
    "get",
    "get-many",
    "scan",
    "insert",
    "units.insert-many",
    "replace",
    "delete",
    "append",
    "flush",
    "sync",
    "units.whole",
    "mirror.apply",
];

impl Call {
    /// The call's place in [`CALL_NAMES`] (per-call counts keep an array).
    pub fn index(&self) -> usize {
        match self {
            Call::Create(..) => 0,
            Call::Destroy(_) => 1,
            Call::Get(..) => 2,
            Call::GetMany(..) => 3,
            Call::Scan(..) => 4,
            Call::Insert(..) => 5,
            Call::InsertMany(..) => 6,
            Call::Replace(..) => 7,
            Call::Delete(..) => 8,
            Call::Append(..) => 9,
            Call::Flush(_) => 10,
            Call::Sync => 11,
            Call::WholeUnits => 12,
            Call::Apply(..) => 13,
        }
    }

    /// The contract function's name, for messages.
    pub fn name(&self) -> &'static str {
        CALL_NAMES[self.index()]
    }

    /// True for calls that only read records (a reader instance may serve
    /// them, and they never wait for a sync).
    pub fn is_read(&self) -> bool {
        matches!(self, Call::Get(..) | Call::GetMany(..) | Call::Scan(..))
    }

    /// True for calls that change records (their acknowledgement waits for
    /// the next sync).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Call::Insert(..)
                | Call::InsertMany(..)
                | Call::Replace(..)
                | Call::Delete(..)
                | Call::Append(..)
                | Call::Apply(..)
        )
    }
}

/// What a successful call returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// create, destroy, insert, replace, delete, flush.
    Done,
    /// get.
    Record(Option<Vec<u8>>),
    /// get-many: one answer per key.
    Records(Vec<Option<Vec<u8>>>),
    /// scan.
    Entries(Vec<Entry>),
    /// append: the assigned key.
    Key(Vec<u8>),
    /// units.whole.
    Whole(bool),
}

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The store answered with an error of the contract.
    Store(StoreError),
    /// The plugin misbehaved (trap, time limit, memory cap) or could not be
    /// instantiated; the instance was dropped and the next call gets a new one.
    Fault(String),
    /// The backend's worker is gone (shutdown).
    Unavailable(String),
}

/// The result of a call.
pub type CallResult = Result<Reply, CallError>;

/// A call running on the task that serves its backend (see
/// [`RecordStore::call_async`]).
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = CallResult> + Send + 'a>>;

/// Something that runs calls one at a time: a WebAssembly instance or a
/// native store.
pub trait RecordStore: Send {
    /// Runs one call, blocking the thread until it is answered (a plain
    /// thread's way: the conformance kit, start-up checks).
    fn call(&mut self, call: Call) -> CallResult;

    /// Runs one call as a future, polled by the backend's task on the
    /// runtime's threads: a plugin waiting in a host function (a database
    /// query, an object GET) lets the thread serve others meanwhile. A
    /// store with nothing to wait for answers at once.
    fn call_async(&mut self, call: Call) -> CallFuture<'_> {
        Box::pin(std::future::ready(self.call(call)))
    }

    /// True if its writes may hold the thread on local storage (a file or
    /// SQLite database made durable with fsync): the backend's task runs
    /// its write groups where blocking does not stall the runtime.
    fn writes_block(&self) -> bool {
        false
    }

    /// Stages a group's recorded changes for the store's own database (see
    /// [`crate::runtime::sql::outbox`]): its sync's commit writes them in
    /// the same transaction. False when it cannot carry them (no database,
    /// no transaction open): the change log then syncs them itself.
    fn stage_outbox(&mut self, _row: crate::runtime::sql::outbox::OutboxRow) -> bool {
        false
    }

    /// What became of the row staged last at the sync since; the stage is
    /// cleared either way.
    fn outbox_outcome(&mut self) -> crate::runtime::sql::outbox::Outcome {
        crate::runtime::sql::outbox::Outcome::NotWritten
    }

    /// Forgets in-memory state after a failed sync (a WebAssembly store
    /// drops its instance, so the next call starts from storage).
    fn reset(&mut self) {}

    /// Bytes of linear memory its plugin instance holds now (0 for a
    /// native store).
    fn memory_bytes(&self) -> u64 {
        0
    }

    /// Why its last call failed with [`CallError::Fault`]: `trap`,
    /// `timeout`, `memory` (its memory limit) or `start` (the instance
    /// could not start).
    fn fault_cause(&self) -> &'static str {
        "trap"
    }
}

/// Runs a call against any [`vsam_plugin_sdk::Backend`] compiled natively:
/// the in-process baseline that measures what the sandbox costs.
pub fn call_native<B: vsam_plugin_sdk::Backend>(backend: &mut B, call: Call) -> CallResult {
    let result = match call {
        Call::Create(ds, layout) => backend.create(&ds, layout.as_deref()).map(|()| Reply::Done),
        Call::Destroy(ds) => backend.destroy(&ds).map(|()| Reply::Done),
        Call::Get(ds, key) => backend.get(&ds, &key).map(Reply::Record),
        Call::GetMany(ds, keys) => backend.get_many(&ds, &keys).map(Reply::Records),
        Call::Scan(ds, from, dir, limit) => backend.scan(&ds, from, dir, limit).map(Reply::Entries),
        Call::Insert(ds, key, value) => backend.insert(&ds, key, value).map(|()| Reply::Done),
        Call::InsertMany(ds, entries) => backend.insert_many(&ds, entries).map(|()| Reply::Done),
        Call::Replace(ds, key, value) => backend.replace(&ds, key, value).map(|()| Reply::Done),
        Call::Delete(ds, key) => backend.delete(&ds, &key).map(|()| Reply::Done),
        Call::Append(ds, value) => backend.append(&ds, value).map(Reply::Key),
        Call::Flush(ds) => backend.flush(&ds).map(|()| Reply::Done),
        Call::Sync => backend.sync().map(|()| Reply::Done),
        Call::WholeUnits => Ok(Reply::Whole(B::WHOLE_UNITS)),
        Call::Apply(ds, puts, erases) => backend.apply(&ds, puts, erases).map(|()| Reply::Done),
    };
    result.map_err(CallError::Store)
}

/// A native store behind the [`RecordStore`] interface.
pub struct NativeStore<B>(pub B);

impl<B: vsam_plugin_sdk::Backend + Send> RecordStore for NativeStore<B> {
    fn call(&mut self, call: Call) -> CallResult {
        call_native(&mut self.0, call)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Store(StoreError::DuplicateKey) => f.write_str("duplicate key"),
            CallError::Store(StoreError::NotFound) => f.write_str("not found"),
            CallError::Store(StoreError::NoSuchDataset) => {
                f.write_str("no storage for the dataset")
            }
            CallError::Store(StoreError::AlreadyExists) => f.write_str("storage already exists"),
            CallError::Store(StoreError::NoSpace(m)) => write!(f, "out of space: {m}"),
            CallError::Store(StoreError::Io(m)) => write!(f, "I/O error: {m}"),
            CallError::Store(StoreError::Invalid(m)) => write!(f, "invalid call: {m}"),
            CallError::Fault(m) | CallError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CallError {}
