//! Exclusive control of an open dataset's records: record locks by string,
//! records held by units of work until their commit, and beside each the
//! lock in a fleet's shared database when the store is shared.

use super::DatasetState;
use crate::after_panic::LockOrStop;
use crate::fleet::{FleetRecords, FleetRefusal, Hold};
use crate::runtime::call::CallError;
use std::collections::HashMap;
use std::sync::Mutex;
use vsam_protocol::{Status, fdbk};

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
pub(super) struct Lock<T> {
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
    let mut map = map.lock_or_stop();
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

impl DatasetState {
    /// Takes exclusive control of `key` for `owner`, here and (on a
    /// shared store) in the fleet's database: the generation of the
    /// database lock, if one was taken. Refused with the holder if another
    /// string or another connection's unit of work has it.
    pub async fn take(&self, key: &[u8], owner: Owner) -> Result<Option<u64>, Refused> {
        {
            // Both maps, in the order hold_for_unit takes them.
            let holds = self.unit_holds.lock_or_stop();
            if let Some(hold) = holds.get(key)
                && hold.holder != owner.session
            {
                return Err(Refused::Here(Holder::Unit(hold.holder)));
            }
            let mut locks = self.locks.lock_or_stop();
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
        match self.unit_holds.lock_or_stop().get(key) {
            Some(hold) if hold.holder != session => Some(Holder::Unit(hold.holder)),
            _ => None,
        }
    }

    /// The connection whose unit of work holds `key`, if one does (its own
    /// included).
    pub fn unit_of(&self, key: &[u8]) -> Option<u64> {
        self.unit_holds
            .lock_or_stop()
            .get(key)
            .map(|hold| hold.holder)
    }

    /// Holds `key` for the unit of work of `session` until it ends: no
    /// other connection may change it or take it for update, here or (on
    /// a shared store) on another server. Refused with the holder if
    /// another connection's string or unit has it.
    pub async fn hold_for_unit(&self, key: &[u8], session: u64) -> Result<(), Refused> {
        {
            let mut holds = self.unit_holds.lock_or_stop();
            match holds.get(key) {
                Some(hold) if hold.holder != session => {
                    return Err(Refused::Here(Holder::Unit(hold.holder)));
                }
                Some(_) => return Ok(()),
                None => {}
            }
            let locks = self.locks.lock_or_stop();
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
        self.unit_holds.lock_or_stop().retain(|key, hold| {
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

    /// Releases `key` if `owner` holds it.
    pub fn unlock(&self, key: &[u8], owner: Owner) {
        let mut locks = self.locks.lock_or_stop();
        if locks.get(key).is_some_and(|lock| lock.holder == owner)
            && let Some(lock) = locks.remove(key)
        {
            drop(locks);
            self.give_back(key, lock.fleet);
        }
    }

    /// Records held for update by strings, counted by connection.
    pub fn held_for_update(&self) -> HashMap<u64, u64> {
        let mut held = HashMap::new();
        for lock in self.locks.lock_or_stop().values() {
            *held.entry(lock.holder.session).or_default() += 1;
        }
        held
    }

    /// Releases everything a session (or one of its handles) holds.
    pub fn unlock_all(&self, session: u64, handle: Option<u32>) {
        let mut released = Vec::new();
        self.locks.lock_or_stop().retain(|key, lock| {
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
}
