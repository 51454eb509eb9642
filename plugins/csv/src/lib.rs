//! The CSV backend: one CSV file per dataset, readable and editable by
//! people and spreadsheet tools, with every record kept byte for byte.
//!
//! Storage of dataset `NAME` in the granted directory:
//! - `NAME.csv`: a header row, then one row per record in key order. The
//!   first column is the key (KSDS: the key as text; ESDS: the RBA; RRDS:
//!   the RRN, in decimal), the second the record as text in the dataset's
//!   code page, with `\xHH` for bytes that are not printable and `\\` for a
//!   backslash (see `vsam_plugin_sdk::text`).
//! - `NAME.journal`: writes since the CSV was last rewritten, one row each
//!   (`I`/`R`/`D`, key, record), appended, and synced at the host's group
//!   sync before the write is acknowledged. The journal starts with a
//!   version row (`V,2,`) and the rows of each group (a unit of work) are
//!   closed by a commit row (`C,,`) written at its sync. On open the CSV is
//!   read and the journal replayed: only rows a commit row closes count, so
//!   a unit is stored whole or not at all; rows after the last commit row
//!   (a crash or a rollback before the sync, never acknowledged) are cut
//!   off. A journal without the version row (an older version's) replays
//!   every complete row.
//!
//! The CSV is rewritten (to a temporary file, synced, renamed over the old
//! one) when the journal grows as long as the dataset (after a sync, so
//! never in the middle of a unit), and on flush. A crash
//! at any moment leaves either the old or the new CSV, and replaying the
//! journal on either gives the same records.

mod format;
mod table;

use std::collections::HashMap;
use std::path::PathBuf;
use table::{Durability, Table};
use vsam_plugin_sdk::{
    Backend, Dataset, Direction, Entry, Start, StoreError, StoreResult, export_backend, log,
    ordered,
};

/// The CSV store: the granted directory and the datasets opened so far.
pub struct CsvStore {
    directory: PathBuf,
    durability: Durability,
    tables: HashMap<String, Table>,
}

impl CsvStore {
    fn table(&mut self, ds: &Dataset) -> StoreResult<&mut Table> {
        if !self.tables.contains_key(&ds.name) {
            let table = Table::open(&self.directory, ds, self.durability)?;
            self.tables.insert(ds.name.clone(), table);
        }
        Ok(self.tables.get_mut(&ds.name).expect("inserted above"))
    }
}

impl Backend for CsvStore {
    /// The rows of a group are closed by a commit row at its sync, and
    /// replay applies only closed groups: a unit is stored whole or not.
    const WHOLE_UNITS: bool = true;

    fn init(params: &[(String, String)]) -> Result<Self, String> {
        let mut directory = PathBuf::from("/data");
        let mut durability = Durability::Fsync;
        for (name, value) in params {
            match name.as_str() {
                "directory" => directory = PathBuf::from(value),
                "durability" => {
                    durability = match value.as_str() {
                        "fsync" => Durability::Fsync,
                        "os" => Durability::Os,
                        other => {
                            return Err(format!(
                                "csv backend: durability {other:?} is not \"fsync\" (survives power loss) or \"os\" (survives a crash of vsamrd)"
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "csv backend: unknown parameter {other:?}; known: directory, durability"
                    ));
                }
            }
        }
        std::fs::read_dir(&directory).map_err(|e| {
            format!("csv backend: directory {} is not readable: {e} (grant it with `directory = ...` in the backend's config)", directory.display())
        })?;
        Ok(Self {
            directory,
            durability,
            tables: HashMap::new(),
        })
    }

    fn create(&mut self, ds: &Dataset, _layout: Option<&str>) -> StoreResult<()> {
        Table::create(&self.directory, ds)?;
        log::info(&format!("created {}", ds.name));
        Ok(())
    }

    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        self.tables.remove(&ds.name);
        Table::destroy(&self.directory, ds)
    }

    fn get(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.table(ds)?.records.get(key).cloned())
    }

    fn scan(
        &mut self,
        ds: &Dataset,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> StoreResult<Vec<Entry>> {
        Ok(ordered::scan(&self.table(ds)?.records, &from, dir, limit))
    }

    fn insert(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        let table = self.table(ds)?;
        if table.records.contains_key(&key) {
            return Err(StoreError::DuplicateKey);
        }
        table.write(ds, table::Op::Insert, key, Some(value))
    }

    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        let table = self.table(ds)?;
        if !table.records.contains_key(&key) {
            return Err(StoreError::NotFound);
        }
        table.write(ds, table::Op::Replace, key, Some(value))
    }

    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()> {
        let table = self.table(ds)?;
        if !table.records.contains_key(key) {
            return Err(StoreError::NotFound);
        }
        table.write(ds, table::Op::Delete, key.to_vec(), None)
    }

    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let table = self.table(ds)?;
        let key = ordered::next_append_key(&table.records);
        table.write(ds, table::Op::Insert, key.clone(), Some(value))?;
        Ok(key)
    }

    fn sync(&mut self) -> StoreResult<()> {
        self.tables.values_mut().try_for_each(Table::sync)
    }

    fn flush(&mut self, ds: &Dataset) -> StoreResult<()> {
        match self.tables.get_mut(&ds.name) {
            Some(table) => table.compact(ds),
            None => Ok(()),
        }
    }
}

export_backend!(CsvStore);
