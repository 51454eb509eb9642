//! Helpers for plugins that keep records in a `BTreeMap` (in memory, or as
//! an index over their storage): scanning in either direction from a
//! [`Start`], and the next ESDS RBA.

use crate::keys::{key_number, next_rba, number_key};
use crate::{Direction, Entry, Start};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Up to `limit` entries of `map` in key order from `from`, in `dir`.
pub fn scan(
    map: &BTreeMap<Vec<u8>, Vec<u8>>,
    from: &Start,
    dir: Direction,
    limit: u32,
) -> Vec<Entry> {
    let limit = limit as usize;
    let entry = |(k, v): (&Vec<u8>, &Vec<u8>)| Entry {
        key: k.clone(),
        value: v.clone(),
    };
    match dir {
        Direction::Forward => {
            let lower = match from {
                Start::Edge => Bound::Unbounded,
                Start::Inclusive(k) => Bound::Included(k.as_slice()),
                Start::Exclusive(k) => Bound::Excluded(k.as_slice()),
            };
            map.range::<[u8], _>((lower, Bound::Unbounded))
                .take(limit)
                .map(entry)
                .collect()
        }
        Direction::Backward => {
            let upper = match from {
                Start::Edge => Bound::Unbounded,
                Start::Inclusive(k) => Bound::Included(k.as_slice()),
                Start::Exclusive(k) => Bound::Excluded(k.as_slice()),
            };
            map.range::<[u8], _>((Bound::Unbounded, upper))
                .rev()
                .take(limit)
                .map(entry)
                .collect()
        }
    }
}

/// The RBA key the next appended record gets: the last record's RBA plus its
/// length, or 0 for an empty dataset.
pub fn next_append_key(map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let next = map
        .last_key_value()
        .and_then(|(k, v)| key_number(k).map(|rba| next_rba(rba, v.len())))
        .unwrap_or(0);
    number_key(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<Vec<u8>, Vec<u8>> {
        [b"b", b"d", b"f"]
            .map(|k| (k.to_vec(), k.to_vec()))
            .into_iter()
            .collect()
    }

    fn keys(entries: Vec<Entry>) -> Vec<u8> {
        entries.into_iter().map(|e| e.key[0]).collect()
    }

    #[test]
    fn scans_both_ways_from_every_kind_of_start() {
        let map = sample();
        assert_eq!(
            keys(scan(&map, &Start::Edge, Direction::Forward, 9)),
            b"bdf"
        );
        assert_eq!(
            keys(scan(&map, &Start::Edge, Direction::Backward, 2)),
            b"fd"
        );
        assert_eq!(
            keys(scan(
                &map,
                &Start::Inclusive(b"d".to_vec()),
                Direction::Forward,
                9
            )),
            b"df"
        );
        assert_eq!(
            keys(scan(
                &map,
                &Start::Exclusive(b"d".to_vec()),
                Direction::Forward,
                9
            )),
            b"f"
        );
        assert_eq!(
            keys(scan(
                &map,
                &Start::Inclusive(b"c".to_vec()),
                Direction::Backward,
                9
            )),
            b"b"
        );
        assert_eq!(
            keys(scan(
                &map,
                &Start::Exclusive(b"d".to_vec()),
                Direction::Backward,
                9
            )),
            b"b"
        );
        assert!(
            scan(
                &map,
                &Start::Exclusive(b"f".to_vec()),
                Direction::Forward,
                9
            )
            .is_empty()
        );
    }

    #[test]
    fn append_key_follows_the_last_record() {
        let mut map = BTreeMap::new();
        assert_eq!(next_append_key(&map), number_key(0));
        map.insert(number_key(0), vec![0; 80]);
        map.insert(number_key(80), vec![0; 20]);
        assert_eq!(next_append_key(&map), number_key(100));
    }
}
