//! A dataset's record locks in the fleet's database: the lock a server
//! takes there for each record one of its strings holds for update or one
//! of its units of work changed, beside the lock it keeps in memory.

use super::session::{FleetRefusal, Lock, LockSession, Mode, Space};
use crate::after_panic::LockOrStop;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Why a record is held, which decides what it excludes on other servers,
/// as one server decides it: a record held for update excludes other
/// holds for update and other units' changes, not inserts (which find the
/// record stored: X'08'); a unit of work's change excludes everything; an
/// insert excludes nothing and is refused only by another unit's change.
/// Each record has two locks: its string lock (held alone for update) and
/// its unit lock (held alone by a unit's change, shared by a hold for
/// update and by an insert while it is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// A string holds it for update (GET UPD).
    Update,
    /// A unit of work changed it.
    Unit,
    /// A new record is being inserted under it (outside a unit).
    Insert,
}

/// The database locks of one dataset's records on one server.
pub struct FleetRecords {
    session: Arc<LockSession>,
    dataset: String,
    /// The generation in which each connection's unit of work took its
    /// first lock on the dataset: the unit may commit only while it lasts.
    units: Mutex<HashMap<u64, u64>>,
    /// This dataset counts among the holders of its open lock (see
    /// [`LockSession::hold_open`]).
    opened: tokio::sync::Mutex<bool>,
}

/// Longest a writer of a dataset's alternate indexes waits while another
/// server of the fleet writes them.
pub const INDEXES_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The name of the lock every server holds shared while it has `dataset`
/// open, and a DELETE holds alone.
pub fn open_lock(dataset: &str) -> String {
    dataset.to_string()
}

impl FleetRecords {
    /// The record locks of `dataset` through `session`.
    pub fn new(session: Arc<LockSession>, dataset: &str) -> Self {
        Self {
            session,
            dataset: dataset.to_string(),
            units: Mutex::new(HashMap::new()),
            opened: tokio::sync::Mutex::new(false),
        }
    }

    /// Holds the dataset's open lock (shared with the other servers that
    /// have it open) until the dataset is closed on this server: refused
    /// while a DELETE on another server holds it.
    pub async fn open(&self) -> Result<(), FleetRefusal> {
        let mut opened = self.opened.lock().await;
        let name = open_lock(&self.dataset);
        match *opened {
            true => self.session.keep_open(&name).await,
            false => {
                self.session.hold_open(&name).await?;
                *opened = true;
                Ok(())
            }
        }
    }

    /// The lock's name: the dataset and the key, which PostgreSQL hashes.
    fn name(&self, key: &[u8], separator: char) -> String {
        let mut name = String::with_capacity(self.dataset.len() + 1 + 2 * key.len());
        name.push_str(&self.dataset);
        name.push(separator);
        for byte in key {
            name.push_str(&format!("{byte:02x}"));
        }
        name
    }

    /// The database locks a hold of `key` takes (see [`Hold`]).
    fn locks(&self, key: &[u8], hold: Hold) -> Vec<Lock> {
        let lock = |separator, mode| Lock {
            name: self.name(key, separator),
            mode,
            space: Space::Record,
        };
        let (string, unit) = ('\u{1f}', '\u{1e}');
        match hold {
            Hold::Update => vec![lock(string, Mode::Exclusive), lock(unit, Mode::Shared)],
            Hold::Unit => vec![lock(unit, Mode::Exclusive)],
            Hold::Insert => vec![lock(unit, Mode::Shared)],
        }
    }

    /// Takes the locks of `hold` on every key of `keys` without waiting,
    /// all or none: the generation they were taken in. If the caller stops
    /// waiting, locks the database granted meanwhile are given back.
    pub async fn take(&self, keys: &[&[u8]], hold: Hold) -> Result<u64, FleetRefusal> {
        let locks: Vec<Lock> = keys.iter().flat_map(|key| self.locks(key, hold)).collect();
        self.take_locks(locks).await
    }

    /// The lock a writer of the dataset's alternate indexes holds alone
    /// in the fleet, as it holds the base's index lock in memory: a unique
    /// key's check and the write it allows do not interleave with another
    /// server's.
    fn indexes_lock(&self) -> Lock {
        Lock {
            name: format!("{}\u{1d}indexes", self.dataset),
            mode: Mode::Exclusive,
            space: Space::Record,
        }
    }

    /// Takes the dataset's indexes lock, waiting while another server
    /// holds it (at most [`INDEXES_WAIT`]): the generation to give it back
    /// with.
    pub async fn take_indexes(&self) -> Result<u64, FleetRefusal> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match self.take_locks(vec![self.indexes_lock()]).await {
                Err(FleetRefusal::HeldElsewhere) if started.elapsed() < INDEXES_WAIT => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Gives back the indexes lock taken in `generation`.
    pub fn give_back_indexes(&self, generation: u64) {
        self.session
            .unlock_all(vec![self.indexes_lock()], generation);
    }

    /// Takes `locks` without waiting, all or none; if the caller stops
    /// waiting, locks granted meanwhile are given back.
    async fn take_locks(&self, locks: Vec<Lock>) -> Result<u64, FleetRefusal> {
        let session = self.session.clone();
        let mut claim = Claim {
            task: Some(tokio::spawn({
                let locks = locks.clone();
                async move { session.try_locks(&locks).await }
            })),
            session: self.session.clone(),
            locks,
        };
        let task = claim.task.as_mut().expect("just spawned");
        let answer = task.await;
        claim.task = None;
        answer.unwrap_or_else(|e| Err(FleetRefusal::Unavailable(e.to_string())))
    }

    /// Gives back the locks [`FleetRecords::take`] took in `generation`.
    pub fn give_back(&self, keys: &[&[u8]], generation: u64, hold: Hold) {
        let locks = keys.iter().flat_map(|key| self.locks(key, hold)).collect();
        self.session.unlock_all(locks, generation);
    }

    /// The lock session's generation while this server holds the database
    /// alone (a browse may read ahead), else `None`.
    pub fn solo(&self) -> Option<u64> {
        self.session.solo()
    }

    /// True while locks taken in `generation` are held.
    pub fn intact(&self, generation: u64) -> bool {
        self.session.intact(generation)
    }

    /// Notes that the unit of work of `connection` took a lock in
    /// `generation` (its first one counts).
    pub fn unit_took(&self, connection: u64, generation: u64) {
        self.units
            .lock_or_stop()
            .entry(connection)
            .or_insert(generation);
    }

    /// True if every lock the unit of work of `connection` took here is
    /// still held.
    pub fn unit_intact(&self, connection: u64) -> bool {
        let first = self.units.lock_or_stop().get(&connection).copied();
        first.is_none_or(|generation| self.intact(generation))
    }

    /// The unit of work of `connection` ended.
    pub fn unit_ended(&self, connection: u64) {
        self.units.lock_or_stop().remove(&connection);
    }
}

/// Locks asked for and not yet answered: if the asker stops waiting, the
/// answer is awaited elsewhere and granted locks given back.
struct Claim {
    task: Option<JoinHandle<Result<u64, FleetRefusal>>>,
    session: Arc<LockSession>,
    locks: Vec<Lock>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        let session = self.session.clone();
        let locks = std::mem::take(&mut self.locks);
        tokio::spawn(async move {
            if let Ok(Ok(generation)) = task.await {
                session.unlock_all(locks, generation);
            }
        });
    }
}

impl Drop for FleetRecords {
    fn drop(&mut self) {
        if *self.opened.get_mut() {
            self.session.let_go_open(&open_lock(&self.dataset));
        }
    }
}
