//! What a unit of work did to each key of one dataset, and how the
//! connection that made the changes reads them over the committed records.

use super::super::dataset::DatasetState;
use crate::runtime::call::Call;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;
use vsam_plugin_sdk::{Direction, Entry, Start};

/// What a unit does to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The committed store holds the key (the unit replaces or erases it).
    pub stored: bool,
    /// The record after the unit; `None`: erased.
    pub image: Option<Vec<u8>>,
    /// When the unit last wrote the key (its count of writes then): the
    /// duplicates of a NONUNIQUEKEY alternate key it adds are indexed in
    /// the order they were written, as VSAM keeps them.
    pub written: u64,
}

impl Change {
    /// The call that makes the store hold what the unit did, if any.
    pub(super) fn call(&self, dataset: &vsam_plugin_sdk::Dataset, key: &[u8]) -> Option<Call> {
        match (self.stored, &self.image) {
            (true, Some(record)) => {
                Some(Call::Replace(dataset.clone(), key.to_vec(), record.clone()))
            }
            (false, Some(record)) => {
                Some(Call::Insert(dataset.clone(), key.to_vec(), record.clone()))
            }
            (true, None) => Some(Call::Delete(dataset.clone(), key.to_vec())),
            (false, None) => None,
        }
    }
}

/// One dataset's changes in a unit.
pub(crate) struct Pending {
    pub state: Arc<DatasetState>,
    pub changes: BTreeMap<Vec<u8>, Change>,
    /// The alternate keys the unit's records carry after it.
    pub carriers: Carriers,
}

impl Pending {
    /// No change yet to `state`.
    pub fn new(state: Arc<DatasetState>) -> Self {
        let carriers = Carriers {
            by_index: vec![BTreeMap::new(); state.upgrade_set().count()],
        };
        Self {
            state,
            changes: BTreeMap::new(),
            carriers,
        }
    }

    /// Records what the unit does to `key` now, over what it did before.
    pub fn set(&mut self, key: Vec<u8>, change: Change) {
        let before = self.changes.get(&key).and_then(|old| old.image.as_deref());
        self.carriers
            .carry(&self.state, &key, before, change.image.as_deref());
        self.changes.insert(key, change);
    }

    /// The calls that apply the changes, in key order.
    pub fn calls(&self) -> Vec<Call> {
        let dataset = &self.state.plugin_dataset;
        self.changes
            .iter()
            .filter_map(|(key, change)| change.call(dataset, key))
            .collect()
    }

    /// A batch scanned from the committed store (from `from` in `dir`,
    /// `exhausted` if it reached the end) with this unit's changes laid over
    /// it: the changed keys the batch's range covers, in the scan's order.
    pub fn merge(
        &self,
        batch: Vec<Entry>,
        from: &Start,
        dir: Direction,
        exhausted: bool,
    ) -> Vec<Entry> {
        merge_over(&self.changes, batch, from, dir, exhausted)
    }
}

/// Which records of a unit carry which alternate key after it, for each
/// index of the base's upgrade set (in its order). The committed indexes
/// learn these keys only at COMMIT; until then a write is checked against
/// them here.
#[derive(Debug, Default)]
pub(crate) struct Carriers {
    by_index: Vec<BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>>,
}

impl Carriers {
    /// The bytes a record `image` under `key` adds to the carriers of
    /// `base` (counted against the unit's limits).
    pub fn bytes(base: &DatasetState, key: &[u8], image: Option<&[u8]>) -> usize {
        image.map_or(0, |record| {
            base.upgrade_set()
                .filter_map(|index| index.alternate_key(record))
                .map(|alternate| alternate.len() + key.len())
                .sum()
        })
    }

    /// True if a record of the unit other than `key` carries `alternate`
    /// in the `n`-th index of the upgrade set.
    pub fn carried_by_other(&self, n: usize, alternate: &[u8], key: &[u8]) -> bool {
        self.by_index
            .get(n)
            .and_then(|carriers| carriers.get(alternate))
            .is_some_and(|keys| keys.iter().any(|other| other.as_slice() != key))
    }

    /// The record under `key` is `after` now instead of `before`.
    fn carry(
        &mut self,
        base: &DatasetState,
        key: &[u8],
        before: Option<&[u8]>,
        after: Option<&[u8]>,
    ) {
        for (index, carriers) in base.upgrade_set().zip(&mut self.by_index) {
            if let Some(alternate) = before.and_then(|record| index.alternate_key(record))
                && let Some(keys) = carriers.get_mut(alternate)
            {
                keys.remove(key);
                if keys.is_empty() {
                    carriers.remove(alternate);
                }
            }
            if let Some(alternate) = after.and_then(|record| index.alternate_key(record)) {
                carriers
                    .entry(alternate.to_vec())
                    .or_default()
                    .insert(key.to_vec());
            }
        }
    }
}

/// [`Pending::merge`] over a map of changes.
pub(super) fn merge_over(
    changes: &BTreeMap<Vec<u8>, Change>,
    batch: Vec<Entry>,
    from: &Start,
    dir: Direction,
    exhausted: bool,
) -> Vec<Entry> {
    let start = match from {
        Start::Edge => Bound::Unbounded,
        Start::Inclusive(key) => Bound::Included(key.clone()),
        Start::Exclusive(key) => Bound::Excluded(key.clone()),
    };
    let end = match (exhausted, batch.last()) {
        (false, Some(last)) => Bound::Included(last.key.clone()),
        _ => Bound::Unbounded,
    };
    let range = match dir {
        Direction::Forward => (start, end),
        Direction::Backward => (end, start),
    };
    let mut changed: Vec<(&Vec<u8>, &Change)> = changes.range(range).collect();
    if dir == Direction::Backward {
        changed.reverse();
    }
    let before = |a: &[u8], b: &[u8]| match dir {
        Direction::Forward => a < b,
        Direction::Backward => a > b,
    };
    let mut merged = Vec::with_capacity(batch.len() + changed.len());
    let mut changed = changed.into_iter().peekable();
    for entry in batch {
        while let Some((key, change)) = changed.next_if(|(key, _)| before(key, &entry.key)) {
            if let Some(image) = &change.image {
                merged.push(Entry {
                    key: key.clone(),
                    value: image.clone(),
                });
            }
        }
        match changed.next_if(|(key, _)| **key == entry.key) {
            Some((_, change)) => {
                if let Some(image) = &change.image {
                    merged.push(Entry {
                        key: entry.key,
                        value: image.clone(),
                    });
                }
            }
            None => merged.push(entry),
        }
    }
    for (key, change) in changed {
        if let Some(image) = &change.image {
            merged.push(Entry {
                key: key.clone(),
                value: image.clone(),
            });
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &[u8], value: &[u8]) -> Entry {
        Entry {
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    /// A change as a test writes it: key, stored, image.
    type Written<'a> = (&'a [u8], bool, Option<&'a [u8]>);

    fn pending(changes: &[Written]) -> BTreeMap<Vec<u8>, Change> {
        changes
            .iter()
            .map(|(key, stored, image)| {
                (
                    key.to_vec(),
                    Change {
                        stored: *stored,
                        image: image.map(<[u8]>::to_vec),
                        written: 0,
                    },
                )
            })
            .collect()
    }

    fn merge(
        changes: &BTreeMap<Vec<u8>, Change>,
        batch: Vec<Entry>,
        from: Start,
        dir: Direction,
        exhausted: bool,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        merge_over(changes, batch, &from, dir, exhausted)
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn pairs(list: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        list.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn a_unit_reads_its_own_changes_over_the_store() {
        let changes = pending(&[
            (b"a", false, Some(b"new-a")),
            (b"c", true, None),
            (b"d", true, Some(b"upd-d")),
            (b"z", false, Some(b"new-z")),
        ]);
        let batch = vec![entry(b"b", b"b"), entry(b"c", b"c"), entry(b"d", b"d")];
        assert_eq!(
            merge(
                &changes,
                batch.clone(),
                Start::Edge,
                Direction::Forward,
                false
            ),
            pairs(&[(b"a", b"new-a"), (b"b", b"b"), (b"d", b"upd-d")]),
            "an insert before the batch, an erase and an update inside it; z lies past what the batch covers"
        );
        assert_eq!(
            merge(&changes, batch, Start::Edge, Direction::Forward, true),
            pairs(&[
                (b"a", b"new-a"),
                (b"b", b"b"),
                (b"d", b"upd-d"),
                (b"z", b"new-z")
            ]),
            "at the end of the store, inserts past it come too"
        );
        let backward = vec![entry(b"d", b"d"), entry(b"c", b"c")];
        assert_eq!(
            merge(
                &changes,
                backward,
                Start::Exclusive(b"y".to_vec()),
                Direction::Backward,
                false
            ),
            pairs(&[(b"d", b"upd-d")]),
            "backward from y: z is behind the start, c is erased, a lies past the batch"
        );
        assert_eq!(
            merge(
                &changes,
                Vec::new(),
                Start::Inclusive(b"a".to_vec()),
                Direction::Forward,
                true
            ),
            pairs(&[(b"a", b"new-a"), (b"d", b"upd-d"), (b"z", b"new-z")]),
            "an empty store shows the unit's records alone"
        );
        assert_eq!(
            merge(
                &changes,
                Vec::new(),
                Start::Exclusive(b"a".to_vec()),
                Direction::Forward,
                true
            ),
            pairs(&[(b"d", b"upd-d"), (b"z", b"new-z")]),
            "an exclusive start leaves its key out"
        );
    }

    #[test]
    fn changes_become_the_calls_that_apply_them() {
        let ds = vsam_plugin_sdk::Dataset {
            name: "A".into(),
            organization: vsam_plugin_sdk::Organization::Ksds,
            key_offset: 0,
            key_length: 1,
            max_record_length: 9,
            min_record_length: 1,
            codepage: "cp037".into(),
        };
        let names = |changes: &[Written]| -> Vec<&'static str> {
            pending(changes)
                .iter()
                .filter_map(|(key, change)| change.call(&ds, key))
                .map(|call| call.name())
                .collect()
        };
        assert_eq!(
            names(&[
                (b"a", true, Some(b"x")),
                (b"b", false, Some(b"y")),
                (b"c", true, None),
                (b"d", false, None)
            ]),
            ["replace", "insert", "delete"],
            "a record inserted and erased in the same unit needs no call"
        );
    }
}
