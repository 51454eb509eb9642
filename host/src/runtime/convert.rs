//! Conversions between the SDK's contract types (used by the host's
//! semantics and by native stores) and the host bindings of the same WIT.

use super::bindings::{wit_store, wit_types};
use vsam_plugin_sdk as sdk;

/// Dataset record.
pub fn dataset(ds: &sdk::Dataset) -> wit_types::Dataset {
    wit_types::Dataset {
        name: ds.name.clone(),
        organization: match ds.organization {
            sdk::Organization::Ksds => wit_types::Organization::Ksds,
            sdk::Organization::Esds => wit_types::Organization::Esds,
            sdk::Organization::Rrds => wit_types::Organization::Rrds,
        },
        key_offset: ds.key_offset,
        key_length: ds.key_length,
        max_record_length: ds.max_record_length,
        min_record_length: ds.min_record_length,
        codepage: ds.codepage.clone(),
    }
}

/// Scan start.
pub fn start(from: &sdk::Start) -> wit_store::Start {
    match from {
        sdk::Start::Edge => wit_store::Start::Edge,
        sdk::Start::Inclusive(k) => wit_store::Start::Inclusive(k.clone()),
        sdk::Start::Exclusive(k) => wit_store::Start::Exclusive(k.clone()),
    }
}

/// Scan direction.
pub fn direction(dir: sdk::Direction) -> wit_store::Direction {
    match dir {
        sdk::Direction::Forward => wit_store::Direction::Forward,
        sdk::Direction::Backward => wit_store::Direction::Backward,
    }
}

/// Scan entry.
pub fn entry(e: wit_store::Entry) -> sdk::Entry {
    sdk::Entry {
        key: e.key,
        value: e.value,
    }
}

/// An entry to store.
pub fn wit_entry(e: sdk::Entry) -> wit_types::Entry {
    wit_types::Entry {
        key: e.key,
        value: e.value,
    }
}

/// Store error.
pub fn store_error(e: wit_types::StoreError) -> sdk::StoreError {
    match e {
        wit_types::StoreError::DuplicateKey => sdk::StoreError::DuplicateKey,
        wit_types::StoreError::NotFound => sdk::StoreError::NotFound,
        wit_types::StoreError::NoSuchDataset => sdk::StoreError::NoSuchDataset,
        wit_types::StoreError::AlreadyExists => sdk::StoreError::AlreadyExists,
        wit_types::StoreError::NoSpace(m) => sdk::StoreError::NoSpace(m),
        wit_types::StoreError::Io(m) => sdk::StoreError::Io(m),
        wit_types::StoreError::Invalid(m) => sdk::StoreError::Invalid(m),
    }
}
