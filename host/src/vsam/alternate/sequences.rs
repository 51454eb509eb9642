//! The next sequence number of each alternate key while BLDINDEX builds a
//! NONUNIQUEKEY index (duplicates keep the base's key order): remembered
//! for the keys met, within a bound of memory, and read back from the
//! index for keys forgotten. A base of a hundred million records with as
//! many alternate keys is indexed in the memory of the bound, not in
//! gigabytes of the server's.

use std::collections::HashMap;
use std::future::Future;

/// Bytes of alternate keys BLDINDEX remembers at most (a key's own bytes
/// and about 48 of bookkeeping each): 64 MB, about 800,000 keys of 32
/// bytes. Past it, each key met again after it was forgotten costs a
/// read of the index.
pub(super) const REMEMBERED_BYTES: usize = 64 << 20;

/// Bookkeeping bytes counted beside each remembered key's own.
const PER_KEY: usize = 48;

/// The sequence numbers handed out so far, by alternate key.
pub(super) struct Sequences {
    next: HashMap<Vec<u8>, u64>,
    bytes: usize,
    limit: usize,
    /// Keys were forgotten: a key not remembered may be in the index
    /// already.
    forgot: bool,
    /// Distinct alternate keys met (each first handed sequence 0).
    pub(super) distinct: u64,
}

impl Sequences {
    /// Remembering up to about `limit` bytes of keys.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            next: HashMap::new(),
            bytes: 0,
            limit,
            forgot: false,
            distinct: 0,
        }
    }

    /// Forgets every key once over the bound. Called between two batches
    /// only: a batch's entries are stored before the next batch begins, so
    /// a key forgotten then is read back from the index, never missed.
    pub(super) fn between_batches(&mut self) {
        if self.bytes > self.limit {
            self.next = HashMap::new();
            self.bytes = 0;
            self.forgot = true;
        }
    }

    /// The sequence number of the next entry of `alternate`. `stored`
    /// reads one past the last in the index; it is asked only for a key
    /// not remembered once keys were forgotten.
    pub(super) async fn take<E, F>(
        &mut self,
        alternate: &[u8],
        stored: impl FnOnce() -> F,
    ) -> Result<u64, E>
    where
        F: Future<Output = Result<u64, E>>,
    {
        let next = match self.next.get_mut(alternate) {
            Some(next) => next,
            None => {
                let first = match self.forgot {
                    true => stored().await?,
                    false => 0,
                };
                self.bytes += alternate.len() + PER_KEY;
                self.next.entry(alternate.to_vec()).or_insert(first)
            }
        };
        let sequence = *next;
        *next += 1;
        if sequence == 0 {
            self.distinct += 1;
        }
        Ok(sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Hands out the sequences of `keys` in batches of `batch`, storing
    /// each batch in a stand-in for the index after it, as BLDINDEX does.
    fn build(keys: &[&str], batch: usize, limit: usize) -> (Vec<u64>, u64, usize) {
        let mut sequences = Sequences::new(limit);
        let mut index: BTreeMap<String, u64> = BTreeMap::new();
        let mut handed = Vec::new();
        let mut lookups = 0;
        for chunk in keys.chunks(batch) {
            sequences.between_batches();
            let mut stored_now = Vec::new();
            for key in chunk {
                let sequence = tokio_test_block_on(sequences.take(key.as_bytes(), || {
                    lookups += 1;
                    let next = index.get(*key).map_or(0, |last| last + 1);
                    async move { Ok::<_, ()>(next) }
                }))
                .unwrap();
                handed.push(sequence);
                stored_now.push((key.to_string(), sequence));
            }
            for (key, sequence) in stored_now {
                index.insert(key, sequence);
            }
        }
        (handed, sequences.distinct, lookups)
    }

    fn tokio_test_block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn duplicates_are_numbered_in_order_within_the_bound_and_past_it() {
        let keys = ["A", "B", "A", "C", "A", "B", "D", "A", "C", "E", "B", "A"];
        let expected = [0, 0, 1, 0, 2, 1, 0, 3, 1, 0, 2, 4];
        // Everything remembered: no lookup.
        let (handed, distinct, lookups) = build(&keys, 2, usize::MAX);
        assert_eq!(handed, expected);
        assert_eq!((distinct, lookups), (5, 0));
        // Keys forgotten after every batch: the same numbers, read back.
        let (handed, distinct, lookups) = build(&keys, 2, 1);
        assert_eq!(handed, expected);
        assert_eq!(distinct, 5);
        assert!(lookups > 0);
        // Never forgotten inside a batch, where the index lacks the
        // batch's own entries.
        let (handed, _, _) = build(&keys, 5, 1);
        assert_eq!(handed, expected);
    }
}
