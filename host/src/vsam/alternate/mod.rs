//! Alternate indexes and paths.
//!
//! An alternate index (AIX) is stored in its base's backend as a dataset of
//! its own, keyed on the alternate key: one entry per base record, whose
//! key is the alternate key (followed, for NONUNIQUEKEY, by an 8-byte
//! sequence number so that duplicates keep their insertion order) and
//! whose record is that key followed by the base record's key (prime key,
//! or RBA).
//!
//! Base writes keep the upgrade set in step ([`upgrade`]) in an order that
//! makes the index a superset of the truth: a new entry is stored before
//! the base record, an old one removed after. A crash between the two
//! leaves at most an entry whose base record is gone or no longer carries
//! that alternate key; readers check every entry against its base record
//! ([`AixIndex::resolve`]) and skip such an entry, a unique-key check
//! replaces it, and BLDINDEX drops it. So a crash between base and index
//! writes cannot show as a wrong or missing record, by design.
//!
//! A path ([`path`]) opens the base through one index: keyed GET and POINT
//! use the alternate key, and everything else is the base's.

pub(crate) mod index;
pub(crate) mod path;
pub(crate) mod requests;
mod sequences;
pub(crate) mod upgrade;

pub use index::AixIndex;

use super::dataset::DatasetState;
use crate::runtime::call::{Call, Reply};
use vsam_plugin_sdk::keys::key_number;
use vsam_plugin_sdk::{Direction, Entry, Start};
use vsam_protocol::Status;

/// Reads of an index's entries, checked against the base records.
impl AixIndex {
    /// The base record an entry points to, if it is there and still
    /// carries the entry's alternate key; `None` for a stale entry.
    pub async fn resolve(
        &self,
        base: &DatasetState,
        request: &str,
        entry: &Entry,
    ) -> Result<Option<Entry>, Status> {
        let key = self.base_key(entry).to_vec();
        let Some(record) = base.get(request, &key).await? else {
            return Ok(None);
        };
        let current = self.alternate_key(&record) == Some(self.entry_alternate(&entry.key));
        Ok(current.then_some(Entry { key, value: record }))
    }

    /// Up to `limit` entries of the index from `from` in `dir`.
    pub async fn scan(
        &self,
        base: &DatasetState,
        request: &str,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> Result<Vec<Entry>, Status> {
        match base
            .index_call(request, Call::Scan(self.storage.clone(), from, dir, limit))
            .await?
        {
            Reply::Entries(entries) => Ok(entries),
            other => Err(base.protocol_violation(request, &other)),
        }
    }

    /// The next entry from `from` in `dir` whose base record carries its
    /// key, with that record; stale entries are passed over.
    pub async fn next_valid(
        &self,
        base: &DatasetState,
        request: &str,
        mut from: Start,
        dir: Direction,
    ) -> Result<Option<(Entry, Entry)>, Status> {
        loop {
            let entries = self.scan(base, request, from, dir, 16).await?;
            let Some(last) = entries.last() else {
                return Ok(None);
            };
            from = Start::Exclusive(last.key.clone());
            let full = entries.len() == 16;
            for entry in entries {
                if let Some(record) = self.resolve(base, request, &entry).await? {
                    return Ok(Some((entry, record)));
                }
            }
            if !full {
                return Ok(None);
            }
        }
    }

    /// True if entries of `alternate` whose base key `counts` (a caller
    /// leaves out the record it writes, and records whose new image it
    /// knows better) are valid: the alternate key is duplicated.
    pub async fn has_duplicate(
        &self,
        base: &DatasetState,
        request: &str,
        alternate: &[u8],
        counts: &(dyn Fn(&[u8]) -> bool + Sync),
    ) -> Result<bool, Status> {
        let mut from = Some(Start::Inclusive(alternate.to_vec()));
        while let Some(entries) = self.entries_of(base, request, alternate, &mut from).await? {
            for entry in &entries {
                if counts(self.base_key(entry))
                    && self.resolve(base, request, entry).await?.is_some()
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The next batch of entries under `alternate` from `from` (moved on
    /// past them); `None` once there are no more.
    async fn entries_of(
        &self,
        base: &DatasetState,
        request: &str,
        alternate: &[u8],
        from: &mut Option<Start>,
    ) -> Result<Option<Vec<Entry>>, Status> {
        const BATCH: u32 = 16;
        let Some(start) = from.take() else {
            return Ok(None);
        };
        let mut entries = self
            .scan(base, request, start, Direction::Forward, BATCH)
            .await?;
        let full = entries.len() == BATCH as usize;
        let ours = entries
            .iter()
            .take_while(|entry| self.entry_alternate(&entry.key) == alternate)
            .count();
        if full && ours == entries.len() {
            *from = entries
                .last()
                .map(|last| Start::Exclusive(last.key.clone()));
        }
        entries.truncate(ours);
        Ok((!entries.is_empty()).then_some(entries))
    }

    /// The entry of a UNIQUEKEY index under `alternate`, if it has one.
    pub async fn unique_entry(
        &self,
        base: &DatasetState,
        request: &str,
        alternate: &[u8],
    ) -> Result<Option<Entry>, Status> {
        let call = Call::Get(self.storage.clone(), alternate.to_vec());
        match base.index_call(request, call).await? {
            Reply::Record(found) => Ok(found.map(|value| Entry {
                key: alternate.to_vec(),
                value,
            })),
            other => Err(base.protocol_violation(request, &other)),
        }
    }

    /// The keys of the entries under `alternate` that point to
    /// `base_key` (more than one only where a crash left stale ones).
    pub async fn entries_pointing(
        &self,
        base: &DatasetState,
        request: &str,
        alternate: &[u8],
        base_key: &[u8],
    ) -> Result<Vec<Vec<u8>>, Status> {
        let mut found = Vec::new();
        let mut from = Some(Start::Inclusive(alternate.to_vec()));
        while let Some(entries) = self.entries_of(base, request, alternate, &mut from).await? {
            found.extend(
                entries
                    .into_iter()
                    .filter(|entry| self.base_key(entry) == base_key)
                    .map(|entry| entry.key),
            );
        }
        Ok(found)
    }

    /// The next sequence number for `alternate` in a NONUNIQUEKEY index:
    /// one past the last entry's.
    pub async fn next_sequence(
        &self,
        base: &DatasetState,
        request: &str,
        alternate: &[u8],
    ) -> Result<u64, Status> {
        let last = self
            .scan(
                base,
                request,
                self.last_entry_bound(alternate),
                Direction::Backward,
                1,
            )
            .await?;
        Ok(self.sequence_after(alternate, last.first()))
    }

    /// Where a backward scan for the last entry of `alternate` starts.
    pub fn last_entry_bound(&self, alternate: &[u8]) -> Start {
        let mut bound = alternate.to_vec();
        bound.extend_from_slice(&[0xFF; 8]);
        Start::Inclusive(bound)
    }

    /// The sequence number after `last`, the entry that backward scan
    /// found (0 if it is not one of `alternate`'s).
    pub fn sequence_after(&self, alternate: &[u8], last: Option<&Entry>) -> u64 {
        match last {
            Some(entry) if self.entry_alternate(&entry.key) == alternate => {
                key_number(&entry.key[self.key_length..]).map_or(0, |n| n + 1)
            }
            _ => 0,
        }
    }
}
