//! A durable backend in one file: each dataset is a log in the granted
//! directory, one line per write (`I key value` stores a record, `D key`
//! erases it, both in hexadecimal), read back into a `BTreeMap` when the
//! dataset is first used. It is what `vsam-plugin new` generates: a
//! starting point that already passes the conformance kit, storage faults
//! included, because it writes through `vsam_plugin_sdk::storage`:
//!
//! - an append that fails (a full disk) is cut off again and answered
//!   `no-space` (FDBK X'1C' for the program);
//! - `sync` syncs every log written since the last one, and a failure
//!   reaches the program instead of an acknowledgement;
//! - a line cut short by a crash (no newline at the end of the log) was
//!   never acknowledged: reading skips it, the next append cuts it off.
//!   Opening and reading never change the file (a new version's health
//!   check reads beside the serving one).
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use vsam_plugin_sdk::storage::{self, AppendFile};
use vsam_plugin_sdk::{
    Backend, Dataset, Direction, Entry, Start, StoreError, StoreResult, export_backend, naming,
    ordered,
};

/// One dataset: its log and its records.
struct Log {
    file: AppendFile,
    records: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Where a torn last line starts, to cut off before the next append.
    torn_at: Option<u64>,
}

/// The store: the granted directory and the datasets used so far.
pub struct LogStore {
    directory: PathBuf,
    logs: HashMap<String, Log>,
    /// Datasets written since the last sync.
    unsynced: HashSet<String>,
}

fn hex(bytes: &[u8], out: &mut String) {
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Replays whole lines into records; `None` names a corrupt line.
fn replay(lines: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, usize> {
    let mut records = BTreeMap::new();
    let text = std::str::from_utf8(lines).map_err(|_| 1usize)?;
    for (number, line) in text.lines().enumerate() {
        let mut fields = line.split(' ');
        let parsed = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some("I"), Some(key), Some(value), None) => unhex(key)
                .zip(unhex(value))
                .map(|(k, v)| records.insert(k, v)),
            (Some("D"), Some(key), None, None) => unhex(key).map(|k| records.remove(&k)),
            _ => None,
        };
        if parsed.is_none() {
            return Err(number + 1);
        }
    }
    Ok(records)
}

impl LogStore {
    fn path(&self, ds: &Dataset) -> PathBuf {
        self.directory.join(naming::file_name(&ds.name, "log"))
    }

    fn log(&mut self, ds: &Dataset) -> StoreResult<&mut Log> {
        if !self.logs.contains_key(&ds.name) {
            let path = self.path(ds);
            if !path.exists() {
                return Err(StoreError::NoSuchDataset);
            }
            let file = AppendFile::open(&path)?;
            let bytes = file.read_all()?;
            let (whole, torn) = storage::whole_lines(&bytes);
            let records = replay(whole).map_err(|line| {
                StoreError::Io(format!(
                    "{} line {line} is not a record: the log was changed outside vsamrd",
                    path.display()
                ))
            })?;
            let torn_at = (!torn.is_empty()).then_some(whole.len() as u64);
            self.logs.insert(
                ds.name.clone(),
                Log {
                    file,
                    records,
                    torn_at,
                },
            );
        }
        Ok(self.logs.get_mut(&ds.name).expect("inserted above"))
    }

    /// Appends one line for `ds`, made durable by the next sync.
    fn write(&mut self, ds: &Dataset, line: &str) -> StoreResult<()> {
        let log = self.log(ds)?;
        if let Some(torn_at) = log.torn_at.take() {
            log.file.truncate(torn_at)?;
        }
        log.file.append(line.as_bytes())?;
        self.unsynced.insert(ds.name.clone());
        Ok(())
    }

    fn store(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        let mut line = String::from("I ");
        hex(&key, &mut line);
        line.push(' ');
        hex(&value, &mut line);
        line.push('\n');
        self.write(ds, &line)?;
        self.log(ds)?.records.insert(key, value);
        Ok(())
    }
}

impl Backend for LogStore {
    fn init(_params: &[(String, String)]) -> Result<Self, String> {
        Ok(Self {
            directory: storage::data_dir(),
            logs: HashMap::new(),
            unsynced: HashSet::new(),
        })
    }

    fn create(&mut self, ds: &Dataset, _layout: Option<&str>) -> StoreResult<()> {
        let path = self.path(ds);
        if path.exists() {
            return Err(StoreError::AlreadyExists);
        }
        AppendFile::open(&path)?.sync()?;
        storage::sync_directory(&self.directory)
    }

    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        let path = self.path(ds);
        self.logs.remove(&ds.name);
        self.unsynced.remove(&ds.name);
        match std::fs::remove_file(&path) {
            Ok(()) => storage::sync_directory(&self.directory),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoSuchDataset),
            Err(e) => Err(storage::store_error(&path, "removing", e)),
        }
    }

    fn get(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.log(ds)?.records.get(key).cloned())
    }

    fn scan(
        &mut self,
        ds: &Dataset,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> StoreResult<Vec<Entry>> {
        Ok(ordered::scan(&self.log(ds)?.records, &from, dir, limit))
    }

    fn insert(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        if self.log(ds)?.records.contains_key(&key) {
            return Err(StoreError::DuplicateKey);
        }
        self.store(ds, key, value)
    }

    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        if !self.log(ds)?.records.contains_key(&key) {
            return Err(StoreError::NotFound);
        }
        self.store(ds, key, value)
    }

    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()> {
        if !self.log(ds)?.records.contains_key(key) {
            return Err(StoreError::NotFound);
        }
        let mut line = String::from("D ");
        hex(key, &mut line);
        line.push('\n');
        self.write(ds, &line)?;
        self.log(ds)?.records.remove(key);
        Ok(())
    }

    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let key = ordered::next_append_key(&self.log(ds)?.records);
        self.store(ds, key.clone(), value)?;
        Ok(key)
    }

    fn sync(&mut self) -> StoreResult<()> {
        for name in std::mem::take(&mut self.unsynced) {
            if let Some(log) = self.logs.get(&name) {
                log.file.sync()?;
            }
        }
        Ok(())
    }
}

export_backend!(LogStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_replays_into_records() {
        let records = replay(b"I 4b31 6f6e65\nI 4b32 74776f\nD 4b31\nI 4b32 32\n").unwrap();
        assert_eq!(records, BTreeMap::from([(b"K2".to_vec(), b"2".to_vec())]));
        assert_eq!(replay(b"I 4b31 6f6e65\nX\n"), Err(2));
    }
}
