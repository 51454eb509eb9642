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

pub(crate) mod path;
pub(crate) mod requests;
pub(crate) mod upgrade;

use super::dataset::DatasetState;
use crate::catalog::{DatasetDef, Relation};
use crate::runtime::call::{Call, Reply};
use vsam_plugin_sdk::keys::number_key;
use vsam_plugin_sdk::{Direction, Entry, Start};
use vsam_protocol::{Organization, Status};

/// One alternate index as the host uses it.
#[derive(Debug, Clone)]
pub struct AixIndex {
    /// Its name.
    pub name: String,
    /// Its storage in the backend.
    pub storage: vsam_plugin_sdk::Dataset,
    /// The alternate key's place in a base record.
    pub key_offset: usize,
    /// The alternate key's length.
    pub key_length: usize,
    /// UNIQUEKEY.
    pub unique: bool,
    /// UPGRADE.
    pub upgrade: bool,
    /// The base's organization (an ESDS's entries point with RBAs).
    pub base_organization: Organization,
}

impl AixIndex {
    /// The index an AIX catalog entry describes; `None` for other entries.
    pub fn from_def(def: &DatasetDef, base_organization: Organization) -> Option<Self> {
        let Some(Relation::Aix {
            unique, upgrade, ..
        }) = &def.relation
        else {
            return None;
        };
        Some(Self {
            name: def.name.clone(),
            storage: def.to_plugin(),
            key_offset: def.key_offset as usize,
            key_length: usize::from(def.key_length),
            unique: *unique,
            upgrade: *upgrade,
            base_organization,
        })
    }

    /// The alternate key of a base record (`None` if the record is too
    /// short to hold it: such a record is not indexed).
    pub fn alternate_key<'r>(&self, record: &'r [u8]) -> Option<&'r [u8]> {
        record.get(self.key_offset..self.key_offset + self.key_length)
    }

    /// The alternate key an index entry's key starts with.
    pub fn entry_alternate<'k>(&self, entry_key: &'k [u8]) -> &'k [u8] {
        &entry_key[..self.key_length.min(entry_key.len())]
    }

    /// The key of the entry for `alternate`, `sequence` for NONUNIQUEKEY.
    pub fn entry_key(&self, alternate: &[u8], sequence: u64) -> Vec<u8> {
        let mut key = alternate.to_vec();
        if !self.unique {
            key.extend_from_slice(&number_key(sequence));
        }
        key
    }

    /// The record of an entry: its key, then the base key.
    pub fn entry_record(entry_key: &[u8], base_key: &[u8]) -> Vec<u8> {
        [entry_key, base_key].concat()
    }

    /// The base key an entry points to.
    pub fn base_key<'e>(&self, entry: &'e Entry) -> &'e [u8] {
        entry.value.get(entry.key.len()..).unwrap_or_default()
    }

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

    /// True if entries of `alternate` other than `except` (a base key)
    /// are valid: the alternate key is duplicated.
    pub async fn has_duplicate(
        &self,
        base: &DatasetState,
        request: &str,
        alternate: &[u8],
        except: &[u8],
    ) -> Result<bool, Status> {
        let mut from = Start::Inclusive(alternate.to_vec());
        loop {
            let entries = self
                .scan(base, request, from, Direction::Forward, 16)
                .await?;
            let full = entries.len() == 16;
            for entry in &entries {
                if self.entry_alternate(&entry.key) != alternate {
                    return Ok(false);
                }
                if self.base_key(entry) != except
                    && self.resolve(base, request, entry).await?.is_some()
                {
                    return Ok(true);
                }
            }
            match entries.last() {
                Some(last) if full => from = Start::Exclusive(last.key.clone()),
                _ => return Ok(false),
            }
        }
    }
}
