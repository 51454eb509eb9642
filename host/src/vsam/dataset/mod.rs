//! The shared state of an open dataset: where its records are, the record
//! locks of exclusive control (`locks`), its calls to the backend
//! (`calls`), and a write counter that invalidates read-ahead.

mod calls;
mod locks;

pub use locks::{Holder, Owner, Refused};

use super::alternate::index::AixIndex;
use super::placement::Placement;
use crate::after_panic::LockOrStop;
use crate::catalog::DatasetDef;
use crate::fleet::FleetRecords;
use crate::runtime::BackendHandle;
use crate::runtime::call::Call;
use arc_swap::ArcSwap;
use locks::Lock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use vsam_plugin_sdk::{Direction, Start};
use vsam_protocol::Status;

/// A key at or below which every stored key lies, if known: a key above
/// it is not in the store, with no need to ask. Kept for a store this
/// server owns only (another server could store keys it never saw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeyBound {
    /// Not looked up yet.
    Unknown,
    /// The store holds no record.
    Empty,
    /// No stored key is above this one.
    AtMost(Vec<u8>),
}

/// One dataset while at least one connection has it open.
pub struct DatasetState {
    /// Catalog definition.
    pub def: DatasetDef,
    /// The definition as the plugin contract's record.
    pub plugin_dataset: vsam_plugin_sdk::Dataset,
    placement: ArcSwap<Placement>,
    /// Writes hold it shared; a migration's copy steps and cutover hold it
    /// alone, so the copy's cursor and the placement never move under a
    /// write.
    gate: Arc<tokio::sync::RwLock<()>>,
    locks: Mutex<HashMap<Vec<u8>, Lock<Owner>>>,
    /// Records changed by a unit of work not yet committed, and whose.
    unit_holds: Mutex<HashMap<Vec<u8>, Lock<u64>>>,
    /// The record locks in a database other servers share, if the
    /// dataset's store is in one.
    fleet: Option<FleetRecords>,
    /// The highest key the store may hold, and how many inserts were
    /// noted (a lookup that raced one is not trusted).
    key_bound: Mutex<(KeyBound, u64)>,
    version: AtomicU64,
    /// The alternate indexes over it (those with UPGRADE are kept in step
    /// with its writes).
    pub(crate) indexes: Vec<AixIndex>,
    /// Held by a write that keeps the indexes in step.
    pub(crate) index_lock: tokio::sync::Mutex<()>,
    /// Number of opens on it (guarded by the registry's lock).
    pub(super) users: Mutex<usize>,
    /// The mirrors that may hold its writes back or make them wait.
    changes: Arc<crate::changes::ChangeHub>,
}

impl DatasetState {
    /// State for a dataset about to be opened, with the alternate indexes
    /// over it, and its record locks in the fleet's database if its store
    /// is shared.
    pub fn new(
        def: DatasetDef,
        backend: BackendHandle,
        indexes: Vec<AixIndex>,
        fleet: Option<FleetRecords>,
        changes: Arc<crate::changes::ChangeHub>,
    ) -> Self {
        Self {
            changes,
            fleet,
            plugin_dataset: def.to_plugin(),
            def,
            placement: ArcSwap::from_pointee(Placement {
                primary: backend,
                mirror: None,
            }),
            gate: Arc::new(tokio::sync::RwLock::new(())),
            locks: Mutex::new(HashMap::new()),
            unit_holds: Mutex::new(HashMap::new()),
            key_bound: Mutex::new((KeyBound::Unknown, 0)),
            version: AtomicU64::new(0),
            indexes,
            index_lock: tokio::sync::Mutex::new(()),
            users: Mutex::new(0),
        }
    }

    /// The backend answering requests now.
    pub fn backend(&self) -> BackendHandle {
        self.placement.load().primary.clone()
    }

    /// The backend and mirror now.
    pub fn placement(&self) -> Arc<Placement> {
        self.placement.load_full()
    }

    /// Holds off every write until the guard is dropped (a migration's
    /// copy step, verification or cutover).
    pub async fn hold_writes(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().await
    }

    /// Moves the dataset (call with writes held off). The bound of stored
    /// keys is looked up again on the new backend.
    pub fn set_placement(&self, placement: Placement) {
        self.placement.store(Arc::new(placement));
        let mut bound = self.key_bound.lock_or_stop();
        *bound = (KeyBound::Unknown, bound.1 + 1);
    }

    /// The write counter: changes whenever any record changes.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Moves the write counter: records changed (also in a unit of work,
    /// whose own strings must not serve what they read ahead before).
    pub(crate) fn wrote(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Notes the keys `calls` insert, before they reach the store: the
    /// known bound of stored keys rises with them.
    pub(crate) fn note_inserts(&self, calls: &[Call]) {
        let mut bound = self.key_bound.lock_or_stop();
        for call in calls {
            if let Call::Insert(_, key, _) = call {
                bound.1 += 1;
                match &bound.0 {
                    KeyBound::Empty => bound.0 = KeyBound::AtMost(key.clone()),
                    KeyBound::AtMost(top) if key > top => bound.0 = KeyBound::AtMost(key.clone()),
                    _ => {}
                }
            }
        }
    }

    /// True if the store cannot hold `key`: it is above every key the
    /// store holds (looked up once with a backward scan, then kept). False
    /// when that is not known for certain, and always for a store other
    /// servers may write.
    pub(crate) async fn above_stored(&self, request: &str, key: &[u8]) -> Result<bool, Status> {
        if !self.backend().owns_its_store() {
            return Ok(false);
        }
        let (bound, noted) = self.key_bound.lock_or_stop().clone();
        let bound = match bound {
            KeyBound::Unknown => {
                let last = self
                    .scan(request, Start::Edge, Direction::Backward, 1)
                    .await?;
                let found = match last.into_iter().next() {
                    Some(entry) => KeyBound::AtMost(entry.key),
                    None => KeyBound::Empty,
                };
                let mut stored = self.key_bound.lock_or_stop();
                if stored.1 != noted {
                    // An insert went by while the store was asked.
                    return Ok(false);
                }
                stored.0 = found.clone();
                found
            }
            known => known,
        };
        Ok(match bound {
            KeyBound::Empty => true,
            KeyBound::AtMost(top) => key > top.as_slice(),
            KeyBound::Unknown => false,
        })
    }

    /// Holds off a migration's copy and cutover while a unit of work is
    /// committed (writes hold it shared).
    pub(crate) async fn writing(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.gate.clone().read_owned().await
    }

    /// True if the dataset's store is in a database other servers may
    /// share: its record locks are taken there too.
    pub fn in_fleet(&self) -> bool {
        self.fleet.is_some()
    }

    /// What a browse's read-ahead of this dataset is valid for: `Some(0)`
    /// on storage of this server alone, the lock session's generation while
    /// this server holds a shared database alone, `None` (no read-ahead)
    /// while other servers may change its records.
    pub fn read_ahead_scope(&self) -> Option<u64> {
        match &self.fleet {
            None => Some(0),
            Some(fleet) => fleet.solo(),
        }
    }

    /// True if writes must keep alternate indexes in step.
    pub(crate) fn upgrades(&self) -> bool {
        self.indexes.iter().any(|index| index.upgrade)
    }

    /// The alternate indexes its writes keep in step (UPGRADE), in
    /// catalog order.
    pub(crate) fn upgrade_set(&self) -> impl Iterator<Item = &AixIndex> {
        self.indexes.iter().filter(|index| index.upgrade)
    }
}
