//! A backend over files written the way a first attempt often is: one log
//! file per dataset, records appended through `std::io::Write`, every
//! error an I/O error, sync errors ignored, and a log that must parse to
//! the last byte. Under no fault it stores and finds records like any
//! other backend; the conformance kit's durability checks (a failed sync,
//! a full disk, a torn write) must fail it. Tests use it to show that they
//! do.
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use vsam_plugin_sdk::{
    Backend, Dataset, Direction, Entry, Start, StoreError, StoreResult, export_backend, naming,
    ordered, storage,
};

struct Log {
    file: File,
    records: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The careless store.
pub struct CarelessStore {
    directory: PathBuf,
    logs: HashMap<String, Log>,
}

fn io(error: impl std::fmt::Display) -> StoreError {
    StoreError::Io(error.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl CarelessStore {
    fn path(&self, ds: &Dataset) -> PathBuf {
        self.directory.join(naming::file_name(&ds.name, "log"))
    }

    fn log(&mut self, ds: &Dataset) -> StoreResult<&mut Log> {
        if !self.logs.contains_key(&ds.name) {
            let path = self.path(ds);
            let mut text = String::new();
            File::open(&path)
                .map_err(|_| StoreError::NoSuchDataset)?
                .read_to_string(&mut text)
                .map_err(io)?;
            let mut records = BTreeMap::new();
            for (number, line) in text.lines().enumerate() {
                let fields: Vec<&str> = line.split(' ').collect();
                let corrupt = || {
                    io(format!(
                        "line {} of {} is corrupt",
                        number + 1,
                        path.display()
                    ))
                };
                match fields.as_slice() {
                    ["I", key, value] => {
                        records.insert(
                            unhex(key).ok_or_else(corrupt)?,
                            unhex(value).ok_or_else(corrupt)?,
                        );
                    }
                    ["D", key] => {
                        records.remove(&unhex(key).ok_or_else(corrupt)?);
                    }
                    _ => return Err(corrupt()),
                }
            }
            let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
            self.logs.insert(ds.name.clone(), Log { file, records });
        }
        Ok(self.logs.get_mut(&ds.name).expect("inserted above"))
    }

    fn put(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        let log = self.log(ds)?;
        writeln!(log.file, "I {} {}", hex(&key), hex(&value)).map_err(io)?;
        log.records.insert(key, value);
        Ok(())
    }
}

impl Backend for CarelessStore {
    fn init(_params: &[(String, String)]) -> Result<Self, String> {
        Ok(Self {
            directory: storage::data_dir(),
            logs: HashMap::new(),
        })
    }

    fn create(&mut self, ds: &Dataset, _layout: Option<&str>) -> StoreResult<()> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path(ds))
            .map(drop)
            .map_err(|_| StoreError::AlreadyExists)
    }

    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        self.logs.remove(&ds.name);
        std::fs::remove_file(self.path(ds)).map_err(|_| StoreError::NoSuchDataset)
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
        self.put(ds, key, value)
    }

    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        if !self.log(ds)?.records.contains_key(&key) {
            return Err(StoreError::NotFound);
        }
        self.put(ds, key, value)
    }

    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()> {
        let log = self.log(ds)?;
        if log.records.remove(key).is_none() {
            return Err(StoreError::NotFound);
        }
        writeln!(log.file, "D {}", hex(key)).map_err(io)
    }

    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let key = ordered::next_append_key(&self.log(ds)?.records);
        self.put(ds, key.clone(), value)?;
        Ok(key)
    }

    fn sync(&mut self) -> StoreResult<()> {
        for log in self.logs.values() {
            // Careless: a failed sync goes unnoticed.
            let _ = log.file.sync_all();
        }
        Ok(())
    }
}

export_backend!(CarelessStore);
