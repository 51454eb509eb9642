//! What an instance keeps per dataset, bounded: [`DatasetCache`].
//!
//! An instance serves every dataset of its backend, one after another, for
//! as long as it lives: a batch that reads 100,000 datasets in a row passes
//! them all through the same instance. What a plugin keeps per dataset (a
//! table's description, an open file, the bounds of its objects) must
//! therefore go at [`Backend::flush`](crate::Backend::flush) or stay
//! bounded, or the instance grows until its memory limit fails a call.
//! [`DatasetCache`] is the bound: at most so many datasets, the one used
//! longest ago let go first, and never one the plugin says it still needs.

use std::collections::HashMap;

/// A map from dataset name to what the plugin keeps for it, holding at most
/// [`DatasetCache::capacity`] datasets: opening one more lets go of the
/// dataset used longest ago, which the plugin opens again (from its store)
/// at its next use.
///
/// What must not be let go (writes not stored yet) is named with
/// [`DatasetCache::letting_go_only`]; while every dataset kept holds such
/// writes, the cache holds more than its capacity rather than lose them.
///
/// ```
/// use vsam_plugin_sdk::cache::DatasetCache;
///
/// struct Table { unsynced: usize }
///
/// let mut tables = DatasetCache::new(2).letting_go_only(|t: &Table| t.unsynced == 0);
/// tables.get_or_open("A", || Ok::<_, String>(Table { unsynced: 1 })).unwrap();
/// tables.get_or_open("B", || Ok::<_, String>(Table { unsynced: 0 })).unwrap();
/// tables.get_or_open("C", || Ok::<_, String>(Table { unsynced: 0 })).unwrap();
/// // A was used longest ago but holds a write: B went instead.
/// assert!(tables.get_mut("A").is_some());
/// assert!(tables.get_mut("B").is_none());
/// ```
pub struct DatasetCache<T> {
    capacity: usize,
    may_let_go: fn(&T) -> bool,
    entries: HashMap<String, Kept<T>>,
    /// Counts uses: each use stamps its entry with the next number, so the
    /// smallest stamp is the dataset used longest ago.
    uses: u64,
}

/// One dataset's value and when it was last used.
struct Kept<T> {
    value: T,
    last_use: u64,
}

impl<T> DatasetCache<T> {
    /// An empty cache that keeps at most `capacity` datasets (at least one),
    /// any of which may be let go.
    pub fn new(capacity: usize) -> Self {
        DatasetCache {
            capacity: capacity.max(1),
            may_let_go: |_| true,
            entries: HashMap::new(),
            uses: 0,
        }
    }

    /// Lets a dataset go only while `may_let_go` says so of its value (for
    /// example: nothing of it waits for a sync).
    pub fn letting_go_only(mut self, may_let_go: fn(&T) -> bool) -> Self {
        self.may_let_go = may_let_go;
        self
    }

    /// The most datasets kept while some may be let go.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many datasets are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no dataset is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if something is kept for `name` (not counted as a use).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// What is kept for `name`, counted as a use.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        let stamp = self.stamp();
        let kept = self.entries.get_mut(name)?;
        kept.last_use = stamp;
        Some(&mut kept.value)
    }

    /// What is kept for `name`, or what `open` makes for it, kept from now
    /// on (letting another dataset go if the cache is full). An error of
    /// `open` keeps nothing.
    pub fn get_or_open<E>(
        &mut self,
        name: &str,
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<&mut T, E> {
        if !self.contains(name) {
            let value = open()?;
            self.insert(name, value);
        }
        Ok(self.get_mut(name).expect("kept above"))
    }

    /// Keeps `value` for `name` (replacing what was kept for it), letting
    /// another dataset go if the cache is full.
    pub fn insert(&mut self, name: &str, value: T) {
        if !self.contains(name) && self.entries.len() >= self.capacity {
            self.let_one_go();
        }
        let last_use = self.stamp();
        self.entries
            .insert(name.to_string(), Kept { value, last_use });
    }

    /// Lets `name` go now (its dataset was deleted, or closed for good),
    /// answering what was kept.
    pub fn remove(&mut self, name: &str) -> Option<T> {
        self.entries.remove(name).map(|kept| kept.value)
    }

    /// Every dataset kept, in no particular order; not counted as uses.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut T)> {
        self.entries
            .iter_mut()
            .map(|(name, kept)| (name.as_str(), &mut kept.value))
    }

    fn stamp(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }

    /// Lets go of the dataset used longest ago among those that may go
    /// (none, if none may). A scan: it runs only when a dataset not kept is
    /// opened into a full cache, where opening it costs far more.
    fn let_one_go(&mut self) {
        let may_let_go = self.may_let_go;
        let oldest = self
            .entries
            .iter()
            .filter(|(_, kept)| may_let_go(&kept.value))
            .min_by_key(|(_, kept)| kept.last_use)
            .map(|(name, _)| name.clone());
        if let Some(oldest) = oldest {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(value: u32) -> impl FnOnce() -> Result<u32, String> {
        move || Ok(value)
    }

    #[test]
    fn the_dataset_used_longest_ago_goes_first() {
        let mut cache = DatasetCache::new(3);
        for (name, value) in [("A", 1), ("B", 2), ("C", 3)] {
            cache.get_or_open(name, open(value)).unwrap();
        }
        // A is used again: B is now the one used longest ago.
        assert_eq!(cache.get_or_open("A", open(99)), Ok(&mut 1));
        cache.get_or_open("D", open(4)).unwrap();
        assert_eq!(cache.len(), 3);
        assert!(cache.get_mut("B").is_none());
        for name in ["A", "C", "D"] {
            assert!(cache.get_mut(name).is_some(), "{name} was let go");
        }
    }

    #[test]
    fn a_value_kept_is_not_opened_again() {
        let mut cache = DatasetCache::new(2);
        cache.get_or_open("A", open(1)).unwrap();
        *cache.get_mut("A").unwrap() = 7;
        let value = cache
            .get_or_open("A", || -> Result<u32, String> { panic!("opened again") })
            .unwrap();
        assert_eq!(*value, 7);
    }

    #[test]
    fn a_failed_open_keeps_nothing_and_lets_nothing_go() {
        let mut cache = DatasetCache::new(1);
        cache.get_or_open("A", open(1)).unwrap();
        let failed = cache.get_or_open("B", || Err("no such dataset".to_string()));
        assert_eq!(failed, Err("no such dataset".to_string()));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get_mut("A"), Some(&mut 1));
    }

    #[test]
    fn what_may_not_go_stays_even_past_the_capacity() {
        // Odd values stand for writes not stored yet.
        let mut cache = DatasetCache::new(2).letting_go_only(|value: &u32| value.is_multiple_of(2));
        cache.get_or_open("A", open(1)).unwrap();
        cache.get_or_open("B", open(3)).unwrap();
        cache.get_or_open("C", open(4)).unwrap();
        assert_eq!(cache.len(), 3, "nothing could go");
        cache.get_or_open("D", open(6)).unwrap();
        assert_eq!(cache.len(), 3);
        assert!(cache.get_mut("C").is_none(), "C, the only one that may go");
        assert_eq!(cache.get_mut("A"), Some(&mut 1));
        assert_eq!(cache.get_mut("B"), Some(&mut 3));
    }

    #[test]
    fn removing_and_replacing_hold_the_count() {
        let mut cache = DatasetCache::new(2);
        cache.insert("A", 1);
        cache.insert("A", 2);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.remove("A"), Some(2));
        assert!(cache.is_empty());
        assert_eq!(cache.remove("A"), None);
        assert_eq!(DatasetCache::<u32>::new(0).capacity(), 1);
    }

    #[test]
    fn a_working_set_within_the_capacity_is_never_opened_again() {
        // 100 datasets used over and over among a stream of 1,000 used
        // once: the 100 stay kept (an arbitrary choice let them go).
        let mut cache = DatasetCache::new(128);
        let mut opened_again = 0;
        for round in 0..10_000u32 {
            let hot = format!("HOT.{}", round % 100);
            if round >= 100 {
                cache
                    .get_or_open(&hot, || {
                        opened_again += 1;
                        Ok::<_, String>(0)
                    })
                    .unwrap();
            } else {
                cache.insert(&hot, 0);
            }
            if round.is_multiple_of(10) {
                cache.insert(&format!("COLD.{round}"), 0);
            }
        }
        assert_eq!(opened_again, 0);
        assert_eq!(cache.len(), 128);
    }
}
