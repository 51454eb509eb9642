//! The shared state of an open dataset: where its records are, the record
//! locks of exclusive control, and a write counter that invalidates
//! read-ahead.

use super::alternate::index::AixIndex;
use super::placement::Placement;
use super::subject::Subject;
use crate::catalog::DatasetDef;
use crate::fleet::{FleetRecords, FleetRefusal, Hold};
use crate::runtime::BackendHandle;
use crate::runtime::call::{Call, CallError, Reply};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use vsam_plugin_sdk::{Direction, Entry, Start, StoreError};
use vsam_protocol::{Status, Verb, fdbk, open_error};

/// Who holds a record under exclusive control: one string of one open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Connection id.
    pub session: u64,
    /// Open handle.
    pub handle: u32,
    /// String number.
    pub string: u16,
}

/// Who holds a record against a request: a string's GET UPD, or the unit
/// of work of a connection that changed it and has not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A string holds it for update.
    String(Owner),
    /// A connection's unit of work changed it.
    Unit(u64),
}

impl Holder {
    /// The connection that holds the record.
    pub fn session(&self) -> u64 {
        match self {
            Holder::String(owner) => owner.session,
            Holder::Unit(session) => *session,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::String(owner) => write!(
                f,
                "held for update by connection {} (string {})",
                owner.session, owner.string
            ),
            Holder::Unit(session) => write!(
                f,
                "changed by the unit of work of connection {session}, which has not committed yet"
            ),
        }
    }
}

/// Why a record could not be taken: a holder on this server, or the
/// fleet's database (another server holds it, or it cannot be asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A string or unit of work of this server holds it.
    Here(Holder),
    /// The fleet's database refused or could not be asked.
    Fleet(FleetRefusal),
}

/// A record lock: who holds it, and the generation of the fleet's lock
/// session in which the database lock beside it was taken (None: there is
/// none, or it is being taken).
#[derive(Debug, Clone, Copy)]
struct Lock<T> {
    holder: T,
    fleet: Option<u64>,
}

/// Notes in `map` the database lock `taken` for `key`, which `holder` took
/// in memory a moment before and held without one: the lock's generation.
/// A lock granted for an entry released meanwhile is given back; a lock
/// refused removes the entry.
fn settle<T: Copy + PartialEq>(
    map: &Mutex<HashMap<Vec<u8>, Lock<T>>>,
    key: &[u8],
    holder: T,
    taken: Result<u64, FleetRefusal>,
    fleet: &FleetRecords,
    hold: Hold,
) -> Result<u64, Refused> {
    let mut map = map.lock().unwrap();
    let entry = map
        .get_mut(key)
        .filter(|lock| lock.holder == holder && lock.fleet.is_none());
    match (taken, entry) {
        (Ok(generation), Some(lock)) => {
            lock.fleet = Some(generation);
            Ok(generation)
        }
        (Ok(generation), None) => {
            fleet.give_back(&[key], generation, hold);
            Err(Refused::Fleet(FleetRefusal::Unavailable(
                "the record was released while its lock was taken".into(),
            )))
        }
        (Err(refusal), entry) => {
            if entry.is_some() {
                map.remove(key);
            }
            Err(Refused::Fleet(refusal))
        }
    }
}

/// A key at or below which every stored key lies, if known: a key above
/// it is not in the store, with no need to ask. Kept for a store this
/// server owns only (another server could store keys it never saw).
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyBound {
    /// Not looked up yet.
    Unknown,
    /// The store holds no record.
    Empty,
    /// No stored key is above this one.
    AtMost(Vec<u8>),
}

/// The right to write a dataset's alternate indexes alone (see
/// [`DatasetState::indexes_alone`]); given back when dropped.
pub(crate) struct IndexesAlone<'a> {
    _memory: tokio::sync::MutexGuard<'a, ()>,
    fleet: Option<(&'a FleetRecords, u64)>,
}

impl Drop for IndexesAlone<'_> {
    fn drop(&mut self) {
        if let Some((fleet, generation)) = self.fleet.take() {
            fleet.give_back_indexes(generation);
        }
    }
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
        let mut bound = self.key_bound.lock().unwrap();
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

    /// Takes exclusive control of `key` for `owner`, here and (on a
    /// shared store) in the fleet's database: the generation of the
    /// database lock, if one was taken. Refused with the holder if another
    /// string or another connection's unit of work has it.
    pub async fn take(&self, key: &[u8], owner: Owner) -> Result<Option<u64>, Refused> {
        {
            // Both maps, in the order hold_for_unit takes them.
            let holds = self.unit_holds.lock().unwrap();
            if let Some(hold) = holds.get(key)
                && hold.holder != owner.session
            {
                return Err(Refused::Here(Holder::Unit(hold.holder)));
            }
            let mut locks = self.locks.lock().unwrap();
            match locks.get(key) {
                Some(lock) if lock.holder != owner => {
                    return Err(Refused::Here(Holder::String(lock.holder)));
                }
                Some(lock) => return Ok(lock.fleet),
                None => {
                    locks.insert(
                        key.to_vec(),
                        Lock {
                            holder: owner,
                            fleet: None,
                        },
                    );
                }
            }
        }
        let Some(fleet) = &self.fleet else {
            return Ok(None);
        };
        let taken = fleet.take(&[key], Hold::Update).await;
        settle(&self.locks, key, owner, taken, fleet, Hold::Update).map(Some)
    }

    /// Holds the dataset's open lock in the fleet's database (shared with
    /// the other servers that have it open), if its store is shared:
    /// refused while a DELETE on another server holds it.
    pub async fn open_in_fleet(&self) -> Result<(), FleetRefusal> {
        match &self.fleet {
            Some(fleet) => fleet.open().await,
            None => Ok(()),
        }
    }

    /// True while a lock [`DatasetState::take`] took in `generation` is
    /// held (always without a database lock).
    pub fn intact(&self, generation: Option<u64>) -> bool {
        match (&self.fleet, generation) {
            (Some(fleet), Some(generation)) => fleet.intact(generation),
            _ => true,
        }
    }

    /// The unit of work of another connection than `session` that holds
    /// `key`, if any.
    pub fn unit_holder(&self, key: &[u8], session: u64) -> Option<Holder> {
        match self.unit_holds.lock().unwrap().get(key) {
            Some(hold) if hold.holder != session => Some(Holder::Unit(hold.holder)),
            _ => None,
        }
    }

    /// The connection whose unit of work holds `key`, if one does (its own
    /// included).
    pub fn unit_of(&self, key: &[u8]) -> Option<u64> {
        self.unit_holds
            .lock()
            .unwrap()
            .get(key)
            .map(|hold| hold.holder)
    }

    /// Holds `key` for the unit of work of `session` until it ends: no
    /// other connection may change it or take it for update, here or (on
    /// a shared store) on another server. Refused with the holder if
    /// another connection's string or unit has it.
    pub async fn hold_for_unit(&self, key: &[u8], session: u64) -> Result<(), Refused> {
        {
            let mut holds = self.unit_holds.lock().unwrap();
            match holds.get(key) {
                Some(hold) if hold.holder != session => {
                    return Err(Refused::Here(Holder::Unit(hold.holder)));
                }
                Some(_) => return Ok(()),
                None => {}
            }
            let locks = self.locks.lock().unwrap();
            if let Some(lock) = locks.get(key)
                && lock.holder.session != session
            {
                return Err(Refused::Here(Holder::String(lock.holder)));
            }
            holds.insert(
                key.to_vec(),
                Lock {
                    holder: session,
                    fleet: None,
                },
            );
        }
        let Some(fleet) = &self.fleet else {
            return Ok(());
        };
        let taken = fleet.take(&[key], Hold::Unit).await;
        let generation = settle(&self.unit_holds, key, session, taken, fleet, Hold::Unit)?;
        fleet.unit_took(session, generation);
        Ok(())
    }

    /// True if the database locks of the unit of work of `session` on
    /// this dataset are all still held (always on a store of this server
    /// alone).
    pub fn unit_intact(&self, session: u64) -> bool {
        self.fleet
            .as_ref()
            .is_none_or(|fleet| fleet.unit_intact(session))
    }

    /// Lets go of every record the unit of work of `session` held.
    pub fn release_unit(&self, session: u64) {
        let mut released = Vec::new();
        self.unit_holds.lock().unwrap().retain(|key, hold| {
            let keep = hold.holder != session;
            if !keep && let Some(generation) = hold.fleet {
                released.push((key.clone(), generation));
            }
            keep
        });
        if let Some(fleet) = &self.fleet {
            for (key, generation) in released {
                fleet.give_back(&[&key], generation, Hold::Unit);
            }
            fleet.unit_ended(session);
        }
    }

    /// Notes the keys `calls` insert, before they reach the store: the
    /// known bound of stored keys rises with them.
    pub(crate) fn note_inserts(&self, calls: &[Call]) {
        let mut bound = self.key_bound.lock().unwrap();
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
        let (bound, noted) = self.key_bound.lock().unwrap().clone();
        let bound = match bound {
            KeyBound::Unknown => {
                let last = self
                    .scan(request, Start::Edge, Direction::Backward, 1)
                    .await?;
                let found = match last.into_iter().next() {
                    Some(entry) => KeyBound::AtMost(entry.key),
                    None => KeyBound::Empty,
                };
                let mut stored = self.key_bound.lock().unwrap();
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

    /// Releases `key` if `owner` holds it.
    pub fn unlock(&self, key: &[u8], owner: Owner) {
        let mut locks = self.locks.lock().unwrap();
        if locks.get(key).is_some_and(|lock| lock.holder == owner)
            && let Some(lock) = locks.remove(key)
        {
            drop(locks);
            self.give_back(key, lock.fleet);
        }
    }

    /// Releases everything a session (or one of its handles) holds.
    pub fn unlock_all(&self, session: u64, handle: Option<u32>) {
        let mut released = Vec::new();
        self.locks.lock().unwrap().retain(|key, lock| {
            let owner = lock.holder;
            let keep = owner.session != session || handle.is_some_and(|h| h != owner.handle);
            if !keep {
                released.push((key.clone(), lock.fleet));
            }
            keep
        });
        for (key, generation) in released {
            self.give_back(&key, generation);
        }
    }

    /// Gives the database lock of a released record back.
    fn give_back(&self, key: &[u8], generation: Option<u64>) {
        if let (Some(fleet), Some(generation)) = (&self.fleet, generation) {
            fleet.give_back(&[key], generation, Hold::Update);
        }
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

    /// Makes this writer the only one of the dataset's alternate indexes:
    /// the base's index lock here, and on a shared store its indexes lock
    /// in the fleet (waited for while another server writes them). Held
    /// until the guard is dropped.
    pub(crate) async fn indexes_alone(&self, request: &str) -> Result<IndexesAlone<'_>, Status> {
        let memory = self.index_lock.lock().await;
        let fleet = match &self.fleet {
            None => None,
            Some(fleet) => match fleet.take_indexes().await {
                Ok(generation) => Some((fleet, generation)),
                Err(FleetRefusal::HeldElsewhere) => {
                    return Err(Status::logical(
                        fdbk::EXCLUSIVE_CONTROL,
                        format!(
                            "{} {request}: another server of the fleet has been writing the dataset's alternate indexes for {} s; retry",
                            self.def.name,
                            crate::fleet::INDEXES_WAIT.as_secs()
                        ),
                    ));
                }
                Err(FleetRefusal::Unavailable(why)) => {
                    return Err(self.fail(
                        request,
                        CallError::Unavailable(format!(
                            "the lock of the dataset's alternate indexes cannot be taken: {why}"
                        )),
                    ));
                }
            },
        };
        Ok(IndexesAlone {
            _memory: memory,
            fleet,
        })
    }

    /// Takes the insert locks of `keys` (outside a unit of work, on a
    /// shared store): refused, with the index of the first key, while
    /// another server's unit of work holds one (it inserted or erased it
    /// and has not committed). The generation to give them back with, if
    /// any were taken.
    pub async fn hold_for_inserts(&self, keys: &[&[u8]]) -> Result<Option<u64>, (usize, Refused)> {
        let Some(fleet) = &self.fleet else {
            return Ok(None);
        };
        if keys.is_empty() {
            return Ok(None);
        }
        match fleet.take(keys, Hold::Insert).await {
            Ok(generation) => Ok(Some(generation)),
            Err(FleetRefusal::HeldElsewhere) => {
                // Which one: the first that cannot be taken alone.
                for (n, key) in keys.iter().enumerate() {
                    match fleet.take(&[key], Hold::Insert).await {
                        Ok(generation) => fleet.give_back(&[key], generation, Hold::Insert),
                        Err(refusal) => return Err((n, Refused::Fleet(refusal))),
                    }
                }
                Err((0, Refused::Fleet(FleetRefusal::HeldElsewhere)))
            }
            Err(refusal) => Err((0, Refused::Fleet(refusal))),
        }
    }

    /// Gives back the insert locks [`DatasetState::hold_for_inserts`] took.
    pub fn release_inserts(&self, keys: &[&[u8]], generation: Option<u64>) {
        if let (Some(fleet), Some(generation)) = (&self.fleet, generation) {
            fleet.give_back(keys, generation, Hold::Insert);
        }
    }

    /// What a status of `request` on this dataset starts with.
    fn about<'a>(&'a self, request: &'a str) -> Subject<'a> {
        Subject {
            dataset: &self.def.name,
            request,
        }
    }

    /// The status of a failed backend call.
    pub(crate) fn fail(&self, request: &str, error: CallError) -> Status {
        let about = self.about(request);
        let backend = self.backend();
        let backend = backend.name();
        match error {
            CallError::Store(StoreError::DuplicateKey) => {
                about.logical(fdbk::DUPLICATE_KEY, "a record with this key exists")
            }
            CallError::Store(StoreError::NotFound) => {
                about.logical(fdbk::NOT_FOUND, "no record with this key")
            }
            CallError::Store(StoreError::NoSpace(m)) => about.logical(
                fdbk::NO_SPACE,
                format!("backend {backend} is out of space: {m}"),
            ),
            CallError::Store(StoreError::NoSuchDataset) => about.physical(format!(
                "backend {backend} has no storage for the dataset: check that the backend points at the storage the dataset was defined in (its directory, database or bucket in the configuration, the plugin version) and that nothing outside vsamrd removed it; the catalog entry is kept"
            )),
            CallError::Store(StoreError::AlreadyExists) => about.physical(format!(
                "backend {backend} reported that storage already exists"
            )),
            CallError::Store(StoreError::Io(m)) => {
                about.physical(format!("backend {backend} I/O error: {m}"))
            }
            CallError::Store(StoreError::Invalid(m)) => {
                about.physical(format!("backend {backend} refused the call: {m}"))
            }
            CallError::Fault(m) | CallError::Unavailable(m) => about.physical(m),
        }
    }

    async fn call(&self, request: &str, call: Call) -> Result<Reply, Status> {
        self.backend()
            .call(call)
            .await
            .map_err(|e| self.fail(request, e))
    }

    /// Runs writes on the backend, and on the mirror if a migration has
    /// one: the writes' results are the primary's.
    pub(crate) async fn write(&self, calls: Vec<Call>) -> Vec<crate::runtime::call::CallResult> {
        if let Some(refusal) = self.mirrors_refuse() {
            return vec![Err(refusal)];
        }
        let mut results = self.write_through(calls).await;
        if results.iter().any(Result::is_ok)
            && let Err(error) = self.mirrors_confirm().await
        {
            // Committed on the primary: the last write acknowledged says
            // its sync mirrors have not applied it.
            if let Some(last) = results.iter_mut().rev().find(|r| r.is_ok()) {
                *last = Err(error);
            }
        }
        results
    }

    /// Why the dataset's mirrors refuse writes now (a sync mirror that is
    /// down, an async one whose queue is full), if they do.
    pub(crate) fn mirrors_refuse(&self) -> Option<CallError> {
        self.changes
            .admit(&self.def.name, self.backend().name())
            .err()
            .map(|why| CallError::Store(vsam_plugin_sdk::StoreError::Io(why)))
    }

    /// Waits until the dataset's sync mirrors applied what was committed.
    pub(crate) async fn mirrors_confirm(&self) -> Result<(), CallError> {
        self.changes
            .confirm(&self.def.name, self.backend().name())
            .await
            .map_err(|why| CallError::Store(vsam_plugin_sdk::StoreError::Io(why)))
    }

    async fn write_through(&self, calls: Vec<Call>) -> Vec<crate::runtime::call::CallResult> {
        let shared = self.gate.clone().read_owned().await;
        self.note_inserts(&calls);
        let placement = self.placement.load_full();
        let Some(mirror) = placement.mirror.clone() else {
            return placement.primary.call_chain(calls).await;
        };
        // A task of its own: a request dropped half way (a connection cut
        // at shutdown) must not leave the mirror without the write.
        let name = self.def.name.clone();
        let both = tokio::spawn(async move {
            let _shared = shared;
            let results = placement.primary.call_chain(calls.clone()).await;
            mirror.follow(&name, &calls, &results).await;
            results
        });
        both.await.unwrap_or_else(|error| {
            vec![Err(CallError::Fault(format!(
                "the write to both backends of a migration failed: {error}"
            )))]
        })
    }

    /// The record under `key`.
    pub async fn get(&self, request: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Status> {
        match self
            .call(
                request,
                Call::Get(self.plugin_dataset.clone(), key.to_vec()),
            )
            .await?
        {
            Reply::Record(record) => {
                if let Some(record) = &record {
                    self.check_length(request, record)?;
                }
                Ok(record)
            }
            other => Err(self.protocol_violation(request, &other)),
        }
    }

    /// The records under `keys`, in order, asked with one `get-many`.
    pub async fn get_many(
        &self,
        request: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, Status> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let call = Call::GetMany(self.plugin_dataset.clone(), keys.to_vec());
        match self.call(request, call).await? {
            Reply::Records(records) if records.len() == keys.len() => {
                for record in records.iter().flatten() {
                    self.check_length(request, record)?;
                }
                Ok(records)
            }
            other => Err(self.protocol_violation(request, &other)),
        }
    }

    /// Up to `limit` records from `from` in `dir`.
    pub async fn scan(
        &self,
        request: &str,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> Result<Vec<Entry>, Status> {
        match self
            .call(
                request,
                Call::Scan(self.plugin_dataset.clone(), from.clone(), dir, limit),
            )
            .await?
        {
            Reply::Entries(entries) => {
                self.check_scan(request, &from, dir, limit, &entries)?;
                for entry in &entries {
                    self.check_length(request, &entry.value)?;
                }
                Ok(entries)
            }
            other => Err(self.protocol_violation(request, &other)),
        }
    }

    /// A plugin cannot hand a program a record longer than the dataset
    /// allows (the program's record area has that length).
    fn check_length(&self, request: &str, record: &[u8]) -> Result<(), Status> {
        if record.len() <= self.def.max_record as usize {
            return Ok(());
        }
        Err(self.about(request).physical(format!(
            "backend {} returned a record of {} bytes, and the dataset's records are at most {} (a plugin bug)",
            self.backend().name(),
            record.len(),
            self.def.max_record
        )))
    }

    /// A plugin must return keys in order, from the start, within the limit:
    /// the host's positioning depends on it.
    fn check_scan(
        &self,
        request: &str,
        from: &Start,
        dir: Direction,
        limit: u32,
        entries: &[Entry],
    ) -> Result<(), Status> {
        if scan_is_well_formed(from, dir, limit, entries) {
            Ok(())
        } else {
            Err(self.about(request).physical(format!(
                "backend {} returned a scan out of key order or past its limit (a plugin bug)",
                self.backend().name()
            )))
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

    /// Runs a call on an alternate index's storage (in the base's backend).
    pub(crate) async fn index_call(&self, request: &str, call: Call) -> Result<Reply, Status> {
        self.placement
            .load()
            .primary
            .call(call)
            .await
            .map_err(|e| self.fail(request, e))
    }

    /// Runs one write on the base alone (and its migration mirror).
    pub(crate) async fn write_base(&self, request: &str, call: Call) -> Result<Reply, Status> {
        let result = self
            .write(vec![call])
            .await
            .pop()
            .expect("one result per call");
        self.wrote();
        result.map_err(|e| self.fail(request, e))
    }

    /// Empties the dataset: its storage is dropped and created anew (an
    /// OPEN with RST). Refused while a migration copies it.
    pub async fn reset(&self) -> Result<(), Status> {
        let _alone = self.hold_writes().await;
        let placement = self.placement();
        if placement.mirror.is_some() {
            return Err(self.about(Verb::Open.name()).refused(
                open_error::NOT_AVAILABLE,
                "RST (reset to empty) is refused while the dataset is migrated; finalize or roll back the migration first",
            ));
        }
        let backend = &placement.primary;
        let storage = self.plugin_dataset.clone();
        match backend.call(Call::Destroy(storage.clone())).await {
            Ok(_) | Err(CallError::Store(StoreError::NoSuchDataset)) => {}
            Err(error) => return Err(self.fail("OPEN (reset)", error)),
        }
        let created = backend
            .call(Call::Create(storage, self.def.layout.clone()))
            .await;
        *self.key_bound.lock().unwrap() = (KeyBound::Empty, 0);
        // The alternate indexes empty with it.
        for index in &self.indexes {
            let storage = index.storage.clone();
            let _ = backend.call(Call::Destroy(storage.clone())).await;
            if let Err(error) = backend.call(Call::Create(storage, None)).await {
                return Err(self.fail("OPEN (reset of an alternate index)", error));
            }
        }
        self.wrote();
        created
            .map(drop)
            .map_err(|error| self.fail("OPEN (reset)", error))
    }

    /// Asks the backend (and a mirror) to compact and sync the dataset.
    pub async fn flush(&self) -> Result<(), Status> {
        if let Some(mirror) = &self.placement().mirror {
            let _ = mirror
                .backend
                .call(Call::Flush(self.plugin_dataset.clone()))
                .await;
        }
        self.call(Verb::Close.name(), Call::Flush(self.plugin_dataset.clone()))
            .await
            .map(drop)
    }

    pub(crate) fn protocol_violation(&self, request: &str, reply: &Reply) -> Status {
        self.about(request).physical(format!(
            "backend {} answered with the wrong kind of reply ({reply:?})",
            self.backend().name()
        ))
    }
}

/// True if `entries` is what a scan from `from` in `dir` with `limit` may
/// return: strictly ordered in the direction, on the right side of the
/// start, and no more than the limit.
fn scan_is_well_formed(from: &Start, dir: Direction, limit: u32, entries: &[Entry]) -> bool {
    let ordered = entries.windows(2).all(|w| match dir {
        Direction::Forward => w[0].key < w[1].key,
        Direction::Backward => w[0].key > w[1].key,
    });
    let after_start = entries.first().is_none_or(|first| match (from, dir) {
        (Start::Edge, _) => true,
        (Start::Inclusive(k), Direction::Forward) => first.key >= *k,
        (Start::Exclusive(k), Direction::Forward) => first.key > *k,
        (Start::Inclusive(k), Direction::Backward) => first.key <= *k,
        (Start::Exclusive(k), Direction::Backward) => first.key < *k,
    });
    ordered && after_start && entries.len() <= limit as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&[u8]]) -> Vec<Entry> {
        keys.iter()
            .map(|k| Entry {
                key: k.to_vec(),
                value: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn scans_from_plugins_are_checked() {
        let fwd = Direction::Forward;
        let bwd = Direction::Backward;
        assert!(scan_is_well_formed(
            &Start::Edge,
            fwd,
            3,
            &entries(&[b"a", b"b", b"c"])
        ));
        assert!(
            !scan_is_well_formed(&Start::Edge, fwd, 2, &entries(&[b"a", b"b", b"c"])),
            "past the limit"
        );
        assert!(
            !scan_is_well_formed(&Start::Edge, fwd, 9, &entries(&[b"b", b"a"])),
            "out of order"
        );
        assert!(
            !scan_is_well_formed(&Start::Edge, fwd, 9, &entries(&[b"a", b"a"])),
            "a key twice"
        );
        assert!(scan_is_well_formed(
            &Start::Edge,
            bwd,
            9,
            &entries(&[b"b", b"a"])
        ));
        assert!(
            !scan_is_well_formed(&Start::Exclusive(b"b".to_vec()), fwd, 9, &entries(&[b"b"])),
            "the excluded key"
        );
        assert!(scan_is_well_formed(
            &Start::Inclusive(b"b".to_vec()),
            fwd,
            9,
            &entries(&[b"b"])
        ));
        assert!(
            !scan_is_well_formed(&Start::Inclusive(b"b".to_vec()), bwd, 9, &entries(&[b"c"])),
            "wrong side"
        );
        assert!(scan_is_well_formed(
            &Start::Exclusive(b"b".to_vec()),
            bwd,
            9,
            &[]
        ));
    }
}
