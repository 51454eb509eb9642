//! One alternate index as the host describes it: where its alternate key
//! lies in a base record, and how its entries are keyed. A leaf: the
//! dataset state holds these, and the reads and writes of an index's
//! entries (in `alternate`) take the dataset state.

use crate::catalog::{DatasetDef, Relation};
use vsam_plugin_sdk::Entry;
use vsam_plugin_sdk::keys::number_key;
use vsam_protocol::Organization;

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
}
