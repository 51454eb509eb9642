//! The in-memory record store behind the example plugin.

use std::collections::{BTreeMap, HashMap};
use vsam_plugin_sdk::{
    Backend, Dataset, Direction, Entry, Start, StoreError, StoreResult, ordered,
};

/// Every dataset's records, by dataset name.
#[derive(Default)]
pub struct MemoryStore {
    datasets: HashMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    fn records(&mut self, ds: &Dataset) -> StoreResult<&mut BTreeMap<Vec<u8>, Vec<u8>>> {
        self.datasets
            .get_mut(&ds.name)
            .ok_or(StoreError::NoSuchDataset)
    }
}

impl Backend for MemoryStore {
    fn init(_params: &[(String, String)]) -> Result<Self, String> {
        Ok(Self::default())
    }

    fn create(&mut self, ds: &Dataset, _layout: Option<&str>) -> StoreResult<()> {
        if self.datasets.contains_key(&ds.name) {
            return Err(StoreError::AlreadyExists);
        }
        self.datasets.insert(ds.name.clone(), BTreeMap::new());
        Ok(())
    }

    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        self.datasets
            .remove(&ds.name)
            .map(drop)
            .ok_or(StoreError::NoSuchDataset)
    }

    fn get(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.records(ds)?.get(key).cloned())
    }

    fn scan(
        &mut self,
        ds: &Dataset,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> StoreResult<Vec<Entry>> {
        Ok(ordered::scan(self.records(ds)?, &from, dir, limit))
    }

    fn insert(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        let records = self.records(ds)?;
        if records.contains_key(&key) {
            return Err(StoreError::DuplicateKey);
        }
        records.insert(key, value);
        Ok(())
    }

    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        match self.records(ds)?.get_mut(&key) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(StoreError::NotFound),
        }
    }

    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()> {
        self.records(ds)?
            .remove(key)
            .map(drop)
            .ok_or(StoreError::NotFound)
    }

    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let records = self.records(ds)?;
        let key = ordered::next_append_key(records);
        records.insert(key.clone(), value);
        Ok(key)
    }
}
