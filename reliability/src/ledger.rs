//! What one writer was told: every acknowledged write, the writes whose
//! answer never came (in doubt) and the writes that were refused, checked
//! against what the dataset holds afterwards.

use crate::records::{self, KEY_LENGTH};
use std::collections::BTreeMap;
use std::ops::AddAssign;
use vsam_client::ChainedRecord;

/// What a key holds after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The record of this version.
    Present(u32),
    /// No record (never written, or erased).
    Absent,
}

/// Records read back from a dataset, by key.
pub type Records = BTreeMap<Vec<u8>, Vec<u8>>;

/// A write whose outcome the writer does not know or was told failed.
#[derive(Debug, Clone)]
enum Pending {
    /// No answer came (vsamrd died, the store went away): either outcome
    /// is allowed.
    InDoubt(Vec<u8>, State),
    /// A PUT CHAIN of new records without an answer: any prefix of it may
    /// be stored.
    Chain(Vec<(Vec<u8>, u32)>),
    /// Refused with an error that promises nothing was written.
    Refused(Vec<u8>, State),
}

/// One key's history since it was last checked: the state found then
/// (if checked), then each write acknowledged since, in order.
#[derive(Debug, Clone, Default)]
struct History {
    checked: Option<State>,
    acknowledged: Vec<State>,
}

/// What a check of the dataset against the ledger found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Check {
    /// Writes acknowledged since the previous check.
    pub acknowledged: u64,
    /// Of those, the writes whose effect is in the dataset (or was
    /// overwritten by a later acknowledged write).
    pub found: u64,
    /// Acknowledged writes whose effect is missing.
    pub lost: u64,
    /// Records that are not exactly a record a writer wrote for their key,
    /// and records nobody wrote.
    pub corrupted: u64,
    /// Writes without an answer that turned out stored.
    pub in_doubt_stored: u64,
    /// Writes without an answer that turned out not stored.
    pub in_doubt_absent: u64,
    /// Refused writes that were stored anyway (must be 0).
    pub refused_stored: u64,
}

impl AddAssign for Check {
    fn add_assign(&mut self, other: Self) {
        self.acknowledged += other.acknowledged;
        self.found += other.found;
        self.lost += other.lost;
        self.corrupted += other.corrupted;
        self.in_doubt_stored += other.in_doubt_stored;
        self.in_doubt_absent += other.in_doubt_absent;
        self.refused_stored += other.refused_stored;
    }
}

impl Check {
    /// Nothing acknowledged is lost, nothing is corrupted, nothing refused
    /// was stored.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.corrupted == 0 && self.refused_stored == 0
    }
}

/// The ledger of writer `writer`, whose keys are [`records::key`]`(writer, n)`.
#[derive(Debug, Clone)]
pub struct Ledger {
    writer: usize,
    keys: BTreeMap<Vec<u8>, History>,
    pending: Vec<Pending>,
    next_key: u64,
    next_version: u32,
    /// Record length of the dataset written.
    pub record_length: usize,
    /// The first losses the checks found, described (key, the write
    /// expected, what the dataset showed), to say which writes went.
    pub losses: Vec<String>,
}

/// Most losses a ledger describes.
const LOSSES_DESCRIBED: usize = 10;

impl Ledger {
    /// An empty ledger for writer `writer` writing records of `record_length` bytes.
    pub fn new(writer: usize, record_length: usize) -> Self {
        Self {
            writer,
            keys: BTreeMap::new(),
            pending: Vec::new(),
            next_key: 0,
            next_version: 1,
            record_length,
            losses: Vec::new(),
        }
    }

    /// A key this writer never used.
    pub fn new_key(&mut self) -> Vec<u8> {
        self.next_key += 1;
        records::key(self.writer, self.next_key)
    }

    /// A version number this writer never used.
    pub fn new_version(&mut self) -> u32 {
        self.next_version += 1;
        self.next_version
    }

    /// A PUT CHAIN of `length` new records: their keys and versions, and
    /// the records to send.
    pub fn new_chain(&mut self, length: usize) -> (Vec<(Vec<u8>, u32)>, Vec<ChainedRecord>) {
        let chain: Vec<(Vec<u8>, u32)> = (0..length)
            .map(|_| (self.new_key(), self.new_version()))
            .collect();
        let records = chain
            .iter()
            .map(|(key, version)| ChainedRecord {
                address: 0,
                record: self.record(key, *version),
            })
            .collect();
        (chain, records)
    }

    /// The record of version `version` of `key`.
    pub fn record(&self, key: &[u8], version: u32) -> Vec<u8> {
        records::record(key, version, self.record_length)
    }

    /// What `key` holds as far as the writer knows.
    pub fn state(&self, key: &[u8]) -> State {
        self.keys.get(key).map_or(State::Absent, |history| {
            history
                .acknowledged
                .last()
                .or(history.checked.as_ref())
                .copied()
                .unwrap_or(State::Absent)
        })
    }

    /// The `pick`th (modulo their number) key that holds a record.
    pub fn present_key(&self, pick: u64) -> Option<Vec<u8>> {
        let present: Vec<&Vec<u8>> = self
            .keys
            .keys()
            .filter(|key| matches!(self.state(key), State::Present(_)))
            .collect();
        (!present.is_empty()).then(|| present[(pick % present.len() as u64) as usize].clone())
    }

    /// The server acknowledged that `key` now holds `state`.
    pub fn acknowledge(&mut self, key: Vec<u8>, state: State) {
        self.keys.entry(key).or_default().acknowledged.push(state);
    }

    /// A write to `key` got no answer.
    pub fn in_doubt(&mut self, key: Vec<u8>, state: State) {
        self.pending.push(Pending::InDoubt(key, state));
    }

    /// A PUT CHAIN of new records got no answer.
    pub fn chain_in_doubt(&mut self, chain: Vec<(Vec<u8>, u32)>) {
        self.pending.push(Pending::Chain(chain));
    }

    /// A write to `key` was refused with an error that says nothing was
    /// written.
    pub fn refused(&mut self, key: Vec<u8>, state: State) {
        self.pending.push(Pending::Refused(key, state));
    }

    /// Checks `found` (this writer's keys and records as read back from the
    /// dataset) against the ledger, then takes what was found as the
    /// starting point of the next check.
    pub fn check(&mut self, found: &Records) -> Check {
        let mut check = Check::default();
        let actual = |key: &[u8]| match found.get(key) {
            None => Some(State::Absent),
            Some(record) => records::version_of(key, record).map(State::Present),
        };
        // Settle the pending writes first: each is either visible or not.
        for pending in std::mem::take(&mut self.pending) {
            match pending {
                Pending::InDoubt(key, state) => {
                    if actual(&key) == Some(state) && self.state(&key) != state {
                        check.in_doubt_stored += 1;
                        self.settle(key, state);
                    } else {
                        check.in_doubt_absent += 1;
                    }
                }
                Pending::Chain(chain) => {
                    let mut stored = true;
                    for (key, version) in chain {
                        stored &= actual(&key) == Some(State::Present(version));
                        if stored {
                            check.in_doubt_stored += 1;
                            self.settle(key, State::Present(version));
                        } else {
                            check.in_doubt_absent += 1;
                        }
                    }
                }
                Pending::Refused(key, state) => {
                    if actual(&key) == Some(state) && self.state(&key) != state {
                        check.refused_stored += 1;
                        self.settle(key, state);
                    }
                }
            }
        }
        let mut keys: Vec<Vec<u8>> = self.keys.keys().cloned().collect();
        keys.extend(
            found
                .keys()
                .filter(|k| !self.keys.contains_key(*k))
                .cloned(),
        );
        for key in keys {
            let history = self.keys.entry(key.clone()).or_default();
            let acknowledged = history.acknowledged.len() as u64;
            check.acknowledged += acknowledged;
            let Some(state) = actual(&key) else {
                // Not a record anyone wrote: every write since is lost too.
                check.corrupted += 1;
                check.lost += acknowledged;
                if self.losses.len() < LOSSES_DESCRIBED {
                    self.losses.push(format!(
                        "key {}: a record no writer wrote",
                        String::from_utf8_lossy(&key)
                    ));
                }
                history.acknowledged.clear();
                history.checked = None;
                continue;
            };
            // The latest acknowledged write the dataset shows; the writes
            // after it are lost.
            let shown = history.acknowledged.iter().rposition(|s| *s == state);
            let lost = match shown {
                Some(index) => acknowledged - 1 - index as u64,
                None if history.checked.unwrap_or(State::Absent) == state => acknowledged,
                None => {
                    // A version nobody was acknowledged (or told in doubt).
                    check.corrupted += 1;
                    acknowledged
                }
            };
            if lost > 0 && self.losses.len() < LOSSES_DESCRIBED {
                self.losses.push(format!(
                    "key {}: acknowledged {:?}, found {state:?} ({lost} acknowledged write(s) missing)",
                    String::from_utf8_lossy(&key),
                    history.acknowledged.last().copied().unwrap_or(State::Absent),
                ));
            }
            check.lost += lost;
            check.found += acknowledged - lost;
            history.acknowledged.clear();
            history.checked = Some(state);
        }
        // Settled writes were counted as acknowledged and found above.
        check.acknowledged -= check.in_doubt_stored + check.refused_stored;
        check.found -= check.in_doubt_stored + check.refused_stored;
        check
    }

    /// Records a write found stored though unacknowledged as if it had
    /// been (it is then the state later writes build on).
    fn settle(&mut self, key: Vec<u8>, state: State) {
        self.keys.entry(key).or_default().acknowledged.push(state);
    }
}

/// Splits records read back from a dataset by the writer whose key they
/// carry; records of no writer are counted as corrupted.
pub fn by_writer(records: Records, writers: usize) -> (Vec<Records>, u64) {
    let mut split = vec![BTreeMap::new(); writers];
    let mut foreign = 0;
    for (key, record) in records {
        match records::writer_of(&key) {
            Some(writer) if writer < writers && key.len() == KEY_LENGTH => {
                split[writer].insert(key, record);
            }
            _ => foreign += 1,
        }
    }
    (split, foreign)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(ledger: &Ledger, states: &[(&Vec<u8>, State)]) -> Records {
        states
            .iter()
            .filter_map(|(key, state)| match state {
                State::Present(v) => Some(((*key).clone(), ledger.record(key, *v))),
                State::Absent => None,
            })
            .collect()
    }

    #[test]
    fn every_acknowledged_write_found_is_counted_once() {
        let mut ledger = Ledger::new(0, 40);
        let a = ledger.new_key();
        let b = ledger.new_key();
        ledger.acknowledge(a.clone(), State::Present(1));
        ledger.acknowledge(a.clone(), State::Present(2));
        ledger.acknowledge(b.clone(), State::Present(3));
        ledger.acknowledge(b.clone(), State::Absent);
        let found = stored(&ledger, &[(&a, State::Present(2))]);
        let check = ledger.check(&found);
        assert_eq!((check.acknowledged, check.found, check.lost), (4, 4, 0));
        assert!(check.clean());
        assert_eq!(ledger.check(&found), Check::default(), "nothing new");
    }

    #[test]
    fn a_missing_write_is_lost_and_a_damaged_record_corrupted() {
        let mut ledger = Ledger::new(1, 40);
        let a = ledger.new_key();
        let b = ledger.new_key();
        ledger.acknowledge(a.clone(), State::Present(1));
        ledger.acknowledge(a.clone(), State::Present(2));
        ledger.acknowledge(b.clone(), State::Present(3));
        let mut found = stored(&ledger, &[(&a, State::Present(1)), (&b, State::Present(3))]);
        found.get_mut(&b).unwrap()[20] ^= 1;
        let check = ledger.check(&found);
        assert_eq!((check.found, check.lost, check.corrupted), (1, 2, 1));
        assert!(!check.clean());
        assert_eq!(
            ledger.losses,
            [
                "key 01000001: acknowledged Present(2), found Present(1) (1 acknowledged write(s) missing)",
                "key 01000002: a record no writer wrote",
            ],
            "the losses say which writes went"
        );
    }

    #[test]
    fn writes_in_doubt_may_go_either_way_and_refused_ones_must_not_appear() {
        let mut ledger = Ledger::new(2, 40);
        let a = ledger.new_key();
        let b = ledger.new_key();
        let c = ledger.new_key();
        let d = ledger.new_key();
        ledger.acknowledge(a.clone(), State::Present(1));
        ledger.in_doubt(a.clone(), State::Present(2));
        ledger.chain_in_doubt(vec![(b.clone(), 3), (c.clone(), 4)]);
        ledger.refused(d.clone(), State::Present(5));
        let found = stored(
            &ledger,
            &[
                (&a, State::Present(2)),
                (&b, State::Present(3)),
                (&d, State::Present(5)),
            ],
        );
        let check = ledger.check(&found);
        assert_eq!((check.in_doubt_stored, check.in_doubt_absent), (2, 1));
        assert_eq!((check.acknowledged, check.found, check.lost), (1, 1, 0));
        assert_eq!((check.refused_stored, check.corrupted), (1, 0));
        assert!(!check.clean());
        assert_eq!(ledger.state(&a), State::Present(2));
    }
}
