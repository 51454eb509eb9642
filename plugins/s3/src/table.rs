//! One dataset in the bucket: its control intervals, which of them this
//! instance holds in memory, and the record operations over them.
//!
//! Reads and writes go to the interval whose lower bound is the greatest
//! at or below the key (RRDS: the interval its slot number falls in). A
//! write changes the interval in memory; `sync` stores every changed one
//! with a conditional write: a new interval only if its name is free, an
//! existing one only if it is still the version this instance read. So a
//! second writer's change is never overwritten, a duplicate key never
//! slips in between a check and a write, and an ESDS RBA is never handed
//! out twice: the conflicting batch fails and is repeated on fresh data.
//!
//! A KSDS interval that outgrows `ci_size` splits in two at sync time, the
//! new upper interval written before the lower one is rewritten: a crash in
//! between leaves records in both, and the lower copies are ignored because
//! every interval is read clipped to its own key range.

use crate::ci::Records;
use crate::intent::{Step, Undo, digest};
use crate::layout::Names;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use vsam_plugin_sdk::keys::{key_number, number_key};
use vsam_plugin_sdk::objects::{self, Condition, Object, ObjectError, Write};
use vsam_plugin_sdk::{Dataset, Direction, Entry, Organization, Start, StoreError, StoreResult};

/// Intervals one listing request asks for.
const LIST_PAGE: u32 = 1000;
/// Intervals a browse fetches ahead at once.
const READ_AHEAD: usize = 4;

/// How intervals are sized and cached, from the backend's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Bytes at which a KSDS or ESDS interval is full.
    pub ci_size: usize,
    /// Unchanged intervals kept in memory per dataset.
    pub cache: usize,
    /// The most bytes of them per dataset: at the largest `ci_size`
    /// (16 MiB) the default `cache` of 256 would be 4 GiB, four times an
    /// instance's default memory limit, and every browse of a large
    /// dataset would end in a call failed on memory.
    pub cache_bytes: usize,
}

/// Unchanged intervals kept whatever their bytes: those the call under way
/// loaded and uses next (a browse reads ahead [`READ_AHEAD`] at once).
const ALWAYS_KEPT: usize = 2 * READ_AHEAD;

/// What `dataset.json` holds: the definition, for people and tools, and
/// what the layout of the intervals depends on.
#[derive(Serialize, Deserialize)]
pub struct Definition {
    name: String,
    organization: String,
    key_offset: u32,
    key_length: u32,
    min_record_length: u32,
    max_record_length: u32,
    codepage: String,
    /// RRDS: slots per interval (fixed at create, the intervals' bounds
    /// depend on it); 0 otherwise.
    slots_per_interval: u64,
    /// The COBOL copybook the dataset was defined with.
    #[serde(skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
}

impl Definition {
    /// The definition of a new dataset.
    pub fn new(ds: &Dataset, layout: Option<&str>, tuning: Tuning) -> Self {
        Self {
            name: ds.name.clone(),
            organization: match ds.organization {
                Organization::Ksds => "ksds",
                Organization::Esds => "esds",
                Organization::Rrds => "rrds",
            }
            .into(),
            key_offset: ds.key_offset,
            key_length: ds.key_length,
            min_record_length: ds.min_record_length,
            max_record_length: ds.max_record_length,
            codepage: ds.codepage.clone(),
            slots_per_interval: match ds.organization {
                Organization::Rrds => {
                    (tuning.ci_size / (ds.max_record_length as usize + 4)).max(1) as u64
                }
                _ => 0,
            },
            layout: layout.map(str::to_string),
        }
    }

    /// The JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a definition is plain data")
    }

    /// The stored definition of a dataset, if it has one.
    pub fn read(names: &Names, dataset: &str) -> StoreResult<Option<Self>> {
        let Some(object) = objects::get(&names.definition())
            .map_err(|e| store_error(dataset, "reading its definition", e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&object.body).map(Some).map_err(|e| {
            StoreError::Io(format!(
                "{dataset}: {} is not a dataset definition: {e}",
                names.definition()
            ))
        })
    }

    /// The dataset this definition was written for.
    pub fn dataset(&self) -> &str {
        &self.name
    }

    /// Whether records stored under `self` read the same under `other`.
    pub fn same_shape(&self, other: &Self) -> bool {
        (
            &self.organization,
            self.key_offset,
            self.key_length,
            self.min_record_length,
            self.max_record_length,
            &self.codepage,
        ) == (
            &other.organization,
            other.key_offset,
            other.key_length,
            other.min_record_length,
            other.max_record_length,
            &other.codepage,
        )
    }

    /// The definition in words, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}, key {} bytes at {}, records {} to {} bytes, {}",
            self.organization.to_ascii_uppercase(),
            self.key_length,
            self.key_offset,
            self.min_record_length,
            self.max_record_length,
            self.codepage
        )
    }
}

/// One control interval in memory.
struct Interval {
    records: Records,
    /// The stored version; `None` for an interval not stored yet.
    etag: Option<String>,
    /// Changed since it was read or stored.
    dirty: bool,
    /// When it was last used (for evicting the least recently used).
    used: u64,
    /// Its bytes as last read or stored (the cache's budget counts them).
    size: usize,
    /// How to put the stored object back as it was before the changes
    /// of the sync under way (see [`crate::intent`]): set by the first
    /// change after the interval was read or committed, kept (and the
    /// interval with it) until the sync is committed.
    before: Option<Undo>,
}

/// A dataset as this instance knows it.
pub struct Table {
    ds: Dataset,
    names: Names,
    tuning: Tuning,
    /// RRDS: slots per interval.
    slots: u64,
    /// Lower bound to object name, for every interval stored or pending.
    bounds: BTreeMap<Vec<u8>, String>,
    cache: HashMap<Vec<u8>, Interval>,
    clock: u64,
}

/// A bucket error as a store error, saying which dataset and what for.
pub fn store_error(ds: &str, what: &str, error: ObjectError) -> StoreError {
    match error {
        ObjectError::NotGranted => StoreError::Invalid(
            "this backend has no bucket: add `bucket = { directory = \"objects\" }` or an S3 bucket to its configuration".into(),
        ),
        ObjectError::PreconditionFailed => StoreError::Io(format!(
            "{ds}: {what}: another writer changed it since this server read it, so this write was refused rather than overwrite theirs; repeat it (the dataset is read again)"
        )),
        ObjectError::Unavailable(m) | ObjectError::Failed(m) => {
            StoreError::Io(format!("{ds}: {what}: {m}"))
        }
    }
}

impl Table {
    /// Reads the definition and the list of intervals of a dataset.
    pub fn open(prefix: &str, ds: &Dataset, tuning: Tuning) -> StoreResult<Self> {
        let names = Names::new(prefix, ds);
        let definition = Definition::read(&names, &ds.name)?.ok_or(StoreError::NoSuchDataset)?;
        let mut table = Self {
            ds: ds.clone(),
            names,
            tuning,
            slots: definition.slots_per_interval.max(1),
            bounds: BTreeMap::new(),
            cache: HashMap::new(),
            clock: 0,
        };
        table.list_intervals()?;
        Ok(table)
    }

    /// Lists the dataset's intervals (pages of 1,000 names).
    fn list_intervals(&mut self) -> StoreResult<()> {
        let prefix = self.names.intervals();
        let mut after: Option<String> = None;
        loop {
            let page = objects::list(&prefix, after.as_deref(), LIST_PAGE)
                .map_err(|e| store_error(&self.ds.name, "listing its control intervals", e))?;
            for info in &page {
                if let Some(bound) = self.names.bound_of(&info.name) {
                    self.bounds.insert(bound, info.name.clone());
                }
            }
            match page.last() {
                Some(last) if page.len() == LIST_PAGE as usize => after = Some(last.name.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// The lowest bound of the key space: where the first interval starts.
    fn lowest(&self) -> Vec<u8> {
        match self.ds.organization {
            Organization::Ksds => vec![0; self.ds.key_length as usize],
            Organization::Esds => number_key(0),
            Organization::Rrds => number_key(1),
        }
    }

    /// The lower bound of the interval that holds (or would hold) `key`.
    fn bound_for(&self, key: &[u8]) -> Vec<u8> {
        match self.ds.organization {
            Organization::Rrds => {
                let rrn = key_number(key).unwrap_or(1).max(1);
                number_key((rrn - 1) / self.slots * self.slots + 1)
            }
            _ => self
                .bounds
                .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
                .next_back()
                .map(|(bound, _)| bound.clone())
                .unwrap_or_else(|| self.lowest()),
        }
    }

    /// The bound of the interval after `bound`, which ends its key range.
    fn next_bound(&self, bound: &[u8]) -> Option<&Vec<u8>> {
        self.bounds
            .range::<[u8], _>((Bound::Excluded(bound), Bound::Unbounded))
            .next()
            .map(|(next, _)| next)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Makes sure the intervals at `bounds` are in memory: fetched from the
    /// bucket (all at once) unless cached.
    fn load(&mut self, bounds: &[Vec<u8>]) -> StoreResult<()> {
        let mut wanted: Vec<(Vec<u8>, String)> = Vec::new();
        for bound in bounds {
            let used = self.tick();
            if let Some(cached) = self.cache.get_mut(bound) {
                // Kept through the eviction below: the caller uses it next.
                cached.used = used;
                continue;
            }
            if wanted.iter().any(|(b, _)| b == bound) {
                continue;
            }
            match self.bounds.get(bound) {
                Some(name) => wanted.push((bound.clone(), name.clone())),
                None => {
                    // Not stored: a new, empty interval.
                    let used = self.tick();
                    self.cache.insert(
                        bound.clone(),
                        Interval {
                            records: Records::default(),
                            etag: None,
                            dirty: false,
                            used,
                            size: 0,
                            before: None,
                        },
                    );
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let fetched = self.fetch(&wanted)?;
        for ((bound, name), object) in wanted.into_iter().zip(fetched) {
            let size = object.body.len();
            let mut records = Records::decode(&self.ds, &bound, &object.body, &name)?;
            if let Some(next) = self.next_bound(&bound) {
                // Copies left behind by an interrupted split.
                records.0.split_off(next);
            }
            let used = self.tick();
            self.cache.insert(
                bound,
                Interval {
                    records,
                    etag: Some(object.etag),
                    dirty: false,
                    used,
                    size,
                    before: None,
                },
            );
        }
        self.evict();
        Ok(())
    }

    /// The stored intervals `wanted` (bound, name), read all at once.
    fn fetch(&self, wanted: &[(Vec<u8>, String)]) -> StoreResult<Vec<Object>> {
        let names: Vec<String> = wanted.iter().map(|(_, name)| name.clone()).collect();
        let fetched = match names.as_slice() {
            [one] => objects::get(one).map(|object| vec![object]),
            _ => objects::get_many(&names),
        }
        .map_err(|e| store_error(&self.ds.name, "reading control intervals", e))?;
        names
            .into_iter()
            .zip(fetched)
            .map(|(name, object)| {
                object.ok_or_else(|| {
                    StoreError::Io(format!(
                        "{}: control interval {name} has gone from the bucket (deleted by someone else?); the dataset is reread at the next request",
                        self.ds.name
                    ))
                })
            })
            .collect()
    }

    /// Drops the least recently used unchanged intervals beyond the cache
    /// size, in count and in bytes (keeping the [`ALWAYS_KEPT`] used last).
    fn evict(&mut self) {
        let pinned = |iv: &Interval| iv.dirty || iv.before.is_some();
        let (mut count, mut bytes) = (0, 0);
        for iv in self.cache.values().filter(|iv| !pinned(iv)) {
            count += 1;
            bytes += iv.size;
        }
        if count <= self.tuning.cache && bytes <= self.tuning.cache_bytes {
            return;
        }
        let mut clean: Vec<(u64, usize)> = self
            .cache
            .values()
            .filter(|iv| !pinned(iv))
            .map(|iv| (iv.used, iv.size))
            .collect();
        clean.sort_unstable();
        let mut cutoff = None;
        for (used, size) in clean.iter().take(count.saturating_sub(ALWAYS_KEPT)) {
            if count <= self.tuning.cache && bytes <= self.tuning.cache_bytes {
                break;
            }
            cutoff = Some(*used);
            count -= 1;
            bytes -= size;
        }
        if let Some(cutoff) = cutoff {
            self.cache.retain(|_, iv| pinned(iv) || iv.used > cutoff);
        }
    }

    /// The interval at `bound`, about to change: the first change since it
    /// was read or committed notes how to put its object back.
    fn modify(&mut self, bound: &[u8]) -> &mut Interval {
        let interval = self.cache.get(bound).expect("loaded before use");
        if interval.before.is_none() {
            let undo = match interval.etag {
                None => Undo::Delete,
                Some(_) => Undo::Restore(interval.records.encode(&self.ds, bound)),
            };
            self.cache.get_mut(bound).expect("loaded before use").before = Some(undo);
        }
        self.interval(bound)
    }

    fn interval(&mut self, bound: &[u8]) -> &mut Interval {
        let used = self.tick();
        let interval = self.cache.get_mut(bound).expect("loaded before use");
        interval.used = used;
        interval
    }

    /// The record under `key`, read from the bucket unless changed here.
    pub fn get(&mut self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let mut found = self.get_many(std::slice::from_ref(&key.to_vec()))?;
        Ok(found.pop().flatten())
    }

    /// Many records: each interval involved is read from the bucket once,
    /// all at once, and searched for its keys without being kept (only
    /// intervals changed here and not yet stored are answered from memory).
    pub fn get_many(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let bounds: Vec<Vec<u8>> = keys.iter().map(|key| self.bound_for(key)).collect();
        let in_memory = |table: &Self, bound: &Vec<u8>| {
            table
                .cache
                .get(bound)
                .is_some_and(|iv| iv.dirty || iv.etag.is_none())
        };
        let mut wanted: Vec<(Vec<u8>, String)> = Vec::new();
        let mut position: HashMap<&[u8], usize> = HashMap::new();
        for bound in &bounds {
            if in_memory(self, bound) || position.contains_key(bound.as_slice()) {
                continue;
            }
            if let Some(name) = self.bounds.get(bound) {
                position.insert(bound, wanted.len());
                wanted.push((bound.clone(), name.clone()));
            }
        }
        let fetched = if wanted.is_empty() {
            Vec::new()
        } else {
            self.fetch(&wanted)?
        };
        keys.iter()
            .zip(&bounds)
            .map(|(key, bound)| {
                if in_memory(self, bound) {
                    return Ok(self.cache[bound].records.0.get(key).cloned());
                }
                match position.get(bound.as_slice()).copied() {
                    Some(at) => {
                        Records::find(&self.ds, bound, &fetched[at].body, key, &wanted[at].1)
                    }
                    None => Ok(None),
                }
            })
            .collect()
    }

    /// Up to `limit` records from `from` in `dir`, interval after interval,
    /// fetching a few intervals ahead at a time.
    pub fn scan(&mut self, from: &Start, dir: Direction, limit: u32) -> StoreResult<Vec<Entry>> {
        let limit = limit as usize;
        let key_bound = match from {
            Start::Edge => Bound::Unbounded,
            Start::Inclusive(k) => Bound::Included(k.as_slice()),
            Start::Exclusive(k) => Bound::Excluded(k.as_slice()),
        };
        // The records wanted, as a range of every interval's map.
        let range = match dir {
            Direction::Forward => (key_bound, Bound::Unbounded),
            Direction::Backward => (Bound::Unbounded, key_bound),
        };
        let first = match from {
            Start::Edge => None,
            Start::Inclusive(k) | Start::Exclusive(k) => Some(self.bound_for(k)),
        };
        let mut ahead = self.bounds_from(
            first.as_deref().map_or(Bound::Unbounded, Bound::Included),
            dir,
        );
        let mut entries = Vec::new();
        while entries.len() < limit && !ahead.is_empty() {
            self.load(&ahead)?;
            for bound in &ahead {
                let records = self.interval(bound).records.0.range::<[u8], _>(range);
                let take = limit - entries.len();
                let entry = |(k, v): (&Vec<u8>, &Vec<u8>)| Entry {
                    key: k.clone(),
                    value: v.clone(),
                };
                match dir {
                    Direction::Forward => entries.extend(records.take(take).map(entry)),
                    Direction::Backward => entries.extend(records.rev().take(take).map(entry)),
                }
                if entries.len() >= limit {
                    break;
                }
            }
            let last = ahead.last().expect("not empty").clone();
            ahead = self.bounds_from(Bound::Excluded(&last), dir);
        }
        Ok(entries)
    }

    /// The bounds of the next few intervals (a read-ahead's worth) from
    /// `start` in `dir`.
    fn bounds_from(&self, start: Bound<&[u8]>, dir: Direction) -> Vec<Vec<u8>> {
        let bound = |(b, _): (&Vec<u8>, &String)| b.clone();
        match dir {
            Direction::Forward => self
                .bounds
                .range::<[u8], _>((start, Bound::Unbounded))
                .take(READ_AHEAD)
                .map(bound)
                .collect(),
            Direction::Backward => self
                .bounds
                .range::<[u8], _>((Bound::Unbounded, start))
                .rev()
                .take(READ_AHEAD)
                .map(bound)
                .collect(),
        }
    }

    /// Loads the interval for a write (cached copies are fine: the write
    /// is conditional on the version they came with).
    fn for_write(&mut self, key: &[u8]) -> StoreResult<Vec<u8>> {
        let bound = self.bound_for(key);
        self.load(std::slice::from_ref(&bound))?;
        Ok(bound)
    }

    /// Records a new interval among the dataset's once it gets a record
    /// (an interval only looked at stays unlisted: it has no object).
    fn enlist(&mut self, bound: &[u8]) {
        if !self.bounds.contains_key(bound) {
            let name = self.names.interval(bound);
            self.bounds.insert(bound.to_vec(), name);
        }
    }

    /// Stores a record under a new key.
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        if self.ds.organization == Organization::Esds {
            let end = self.next_rba()?;
            return match self.get(&key)? {
                Some(_) => Err(StoreError::DuplicateKey),
                None if key == end => self.append(value).map(drop),
                None => Err(StoreError::Invalid(format!(
                    "{}: an ESDS record is added at the end (RBA {}), not at RBA {}",
                    self.ds.name,
                    key_number(&end).unwrap_or(0),
                    key_number(&key).unwrap_or(0)
                ))),
            };
        }
        let bound = self.for_write(&key)?;
        if self.interval(&bound).records.0.contains_key(&key) {
            return Err(StoreError::DuplicateKey);
        }
        self.enlist(&bound);
        let interval = self.modify(&bound);
        interval.records.0.insert(key.clone(), value);
        interval.dirty = true;
        self.split_if_full(&bound, &key);
        Ok(())
    }

    /// Overwrites the record under an existing key.
    pub fn replace(&mut self, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        let bound = self.for_write(&key)?;
        if !self.interval(&bound).records.0.contains_key(&key) {
            return Err(StoreError::NotFound);
        }
        let interval = self.modify(&bound);
        match interval.records.0.get_mut(&key) {
            Some(record) => *record = value,
            None => return Err(StoreError::NotFound),
        }
        interval.dirty = true;
        self.split_if_full(&bound, &key);
        Ok(())
    }

    /// Removes the record under `key`. An interval emptied this way stays
    /// (empty, like a VSAM control interval) for later inserts in its range.
    pub fn delete(&mut self, key: &[u8]) -> StoreResult<()> {
        let bound = self.for_write(key)?;
        if !self.interval(&bound).records.0.contains_key(key) {
            return Err(StoreError::NotFound);
        }
        let interval = self.modify(&bound);
        if interval.records.0.remove(key).is_none() {
            return Err(StoreError::NotFound);
        }
        interval.dirty = true;
        Ok(())
    }

    /// The RBA the next ESDS record gets: the end of the last interval.
    fn next_rba(&mut self) -> StoreResult<Vec<u8>> {
        let Some(last) = self.bounds.keys().next_back().cloned() else {
            return Ok(number_key(0));
        };
        self.load(std::slice::from_ref(&last))?;
        let records = &self.interval(&last).records.0;
        let end = records
            .iter()
            .next_back()
            .map(|(k, v)| key_number(k).unwrap_or(0) + v.len() as u64)
            .unwrap_or(key_number(&last).unwrap_or(0));
        Ok(number_key(end))
    }

    /// Adds an ESDS record at the end; a full last interval starts a new
    /// one at the record's RBA.
    pub fn append(&mut self, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let key = self.next_rba()?;
        let last = self.bounds.keys().next_back().cloned();
        let bound = match last {
            Some(last)
                if self.cache[&last].records.0.is_empty()
                    || self.cache[&last].records.encoded_len(&self.ds, &last) + value.len() + 4
                        <= self.tuning.ci_size =>
            {
                last
            }
            _ => key.clone(),
        };
        self.load(std::slice::from_ref(&bound))?;
        self.enlist(&bound);
        let interval = self.modify(&bound);
        interval.records.0.insert(key.clone(), value);
        interval.dirty = true;
        Ok(key)
    }

    /// Splits a KSDS interval that outgrew `ci_size`: after the new key if
    /// it is the interval's last (an ascending load leaves full intervals
    /// behind), else in the middle of its bytes.
    fn split_if_full(&mut self, bound: &[u8], key: &[u8]) {
        if self.ds.organization != Organization::Ksds {
            return;
        }
        let ci_size = self.tuning.ci_size;
        let ds = self.ds.clone();
        let interval = self.cache.get_mut(bound).expect("loaded before use");
        let records = &mut interval.records;
        if records.0.len() < 2 || records.encoded_len(&ds, bound) <= ci_size {
            return;
        }
        let at = if records.0.keys().next_back().is_some_and(|last| last == key) {
            key.to_vec()
        } else {
            let half = records.encoded_len(&ds, bound) / 2;
            let mut sum = 0;
            records
                .0
                .iter()
                .skip(1)
                .find(|(_, v)| {
                    sum += v.len() + 4;
                    sum >= half
                })
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| key.to_vec())
        };
        let upper = Records(records.0.split_off(&at));
        let used = self.tick();
        let name = self.names.interval(&at);
        self.bounds.insert(at.clone(), name);
        self.cache.insert(
            at,
            Interval {
                records: upper,
                etag: None,
                dirty: true,
                used,
                size: 0,
                before: Some(Undo::Delete),
            },
        );
    }

    /// Stores every changed interval, each conditionally and all at once:
    /// new ones first, then the rewritten ones (so an interrupted split
    /// leaves copies, never gaps).
    pub fn sync(&mut self) -> StoreResult<()> {
        let mut dirty: Vec<(bool, Vec<u8>)> = self
            .cache
            .iter()
            .filter(|(_, iv)| iv.dirty)
            .map(|(bound, iv)| (iv.etag.is_some(), bound.clone()))
            .collect();
        dirty.sort();
        let rewrites = dirty
            .iter()
            .position(|(stored, _)| *stored)
            .unwrap_or(dirty.len());
        let (new, stored) = dirty.split_at(rewrites);
        for phase in [new, stored] {
            if phase.is_empty() {
                continue;
            }
            let writes: Vec<Write> = phase
                .iter()
                .map(|(_, bound)| {
                    let interval = &self.cache[bound];
                    Write {
                        name: self.bounds[bound].clone(),
                        body: interval.records.encode(&self.ds, bound),
                        condition: match &interval.etag {
                            None => Condition::Absent,
                            Some(etag) => Condition::IfMatch(etag.clone()),
                        },
                    }
                })
                .collect();
            let answers = objects::put_many(&writes);
            let mut failure = None;
            for ((_, bound), (write, answer)) in phase.iter().zip(writes.iter().zip(answers)) {
                match answer {
                    Ok(etag) => {
                        let interval = self.cache.get_mut(bound).expect("listed above");
                        interval.etag = Some(etag);
                        interval.dirty = false;
                        interval.size = write.body.len();
                    }
                    Err(e) => {
                        failure.get_or_insert_with(|| {
                            store_error(&self.ds.name, &format!("storing {}", write.name), e)
                        });
                    }
                }
            }
            if let Some(failure) = failure {
                return Err(failure);
            }
        }
        self.evict();
        Ok(())
    }

    /// How many objects the next sync writes.
    pub fn changed(&self) -> usize {
        self.cache.values().filter(|iv| iv.dirty).count()
    }

    /// The objects the next sync writes, how to put each back, and the
    /// digest of what it writes into each.
    pub fn undo_plan(&self) -> StoreResult<Vec<Step>> {
        self.cache
            .iter()
            .filter(|(_, iv)| iv.dirty)
            .map(|(bound, iv)| {
                let name = self.bounds[bound].clone();
                let undo = match (&iv.before, &iv.etag) {
                    (Some(undo), _) => undo.clone(),
                    (None, None) => Undo::Delete,
                    (None, Some(_)) => {
                        return Err(StoreError::Io(format!(
                            "{}: control interval {name} changed without noting its stored body (a plugin bug); the sync is refused",
                            self.ds.name
                        )));
                    }
                };
                let written = Some(digest(&iv.records.encode(&self.ds, bound)));
                Ok(Step {
                    name,
                    undo,
                    written,
                })
            })
            .collect()
    }

    /// The sync is committed: what it wrote is the state to put back to
    /// from now on.
    pub fn settle(&mut self) {
        for interval in self.cache.values_mut() {
            if !interval.dirty {
                interval.before = None;
            }
        }
        self.evict();
    }

    /// True if nothing of the table waits for a sync or its commit: the
    /// bucket holds all of it, and it can be read from there again.
    pub fn is_clean(&self) -> bool {
        self.cache
            .values()
            .all(|iv| !iv.dirty && iv.before.is_none())
    }

    /// Forgets unchanged intervals (the dataset was closed).
    pub fn forget_clean(&mut self) {
        self.cache.retain(|_, iv| iv.dirty || iv.before.is_some());
    }
}
