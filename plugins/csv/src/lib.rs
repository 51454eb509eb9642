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
//! A unit over several datasets is kept whole by an undo record written
//! before its commit rows (see `undo`).
//!
//! The CSV is rewritten (to a temporary file, synced, renamed over the old
//! one) when the journal grows as long as the dataset (after a sync, so
//! never in the middle of a unit), and on flush, the dataset's last close,
//! after which the instance lets go of its records until it is opened
//! again. A crash
//! at any moment leaves either the old or the new CSV, and replaying the
//! journal on either gives the same records.
#![warn(missing_docs)]

mod format;
mod table;
mod undo;

use std::collections::HashMap;
use std::path::PathBuf;
use table::{Durability, Table};
use undo::{Leftover, Record, Spot};
use vsam_plugin_sdk::{
    Backend, Dataset, Direction, Entry, Start, StoreError, StoreResult, export_backend, log,
    ordered,
};

/// The CSV store: the granted directory and the datasets opened so far.
pub struct CsvStore {
    directory: PathBuf,
    durability: Durability,
    tables: HashMap<String, Table>,
    /// A unit left half committed when the store last stopped, read before
    /// the first dataset is opened (`None`: not read yet).
    leftover: Option<Leftover>,
    /// The undo record of units over several datasets, once this instance
    /// writes (it is settled first).
    record: Option<Record>,
}

impl CsvStore {
    fn leftover(&mut self) -> StoreResult<&Leftover> {
        if self.leftover.is_none() {
            self.leftover = Some(Leftover::read(&self.directory)?);
        }
        Ok(self.leftover.as_ref().expect("read above"))
    }

    fn table(&mut self, ds: &Dataset) -> StoreResult<&mut Table> {
        if !self.tables.contains_key(&ds.name) {
            let journal = vsam_plugin_sdk::naming::file_name(&ds.name, "journal");
            let limit = self.leftover()?.limit(&journal);
            let table = Table::open(&self.directory, ds, self.durability, limit)?;
            self.tables.insert(ds.name.clone(), table);
        }
        Ok(self.tables.get_mut(&ds.name).expect("inserted above"))
    }

    /// The undo record, for an instance about to write: a unit a stopped
    /// store left half committed is cut out of its journals first, and
    /// the record cleared.
    fn record(&mut self) -> StoreResult<&mut Record> {
        if self.record.is_none() {
            let recorded = self.leftover()?.recorded();
            let leftover = self.leftover.as_ref().expect("read above");
            leftover.cut_back(&self.directory)?;
            let mut record = Record::open(&self.directory, recorded)?;
            record.clear()?;
            self.leftover = Some(Leftover::default());
            self.record = Some(record);
        }
        Ok(self.record.as_mut().expect("opened above"))
    }

    /// Before a journal may shrink or go (the CSV rewritten, the dataset
    /// deleted or created anew): no record may name it any more.
    fn settle(&mut self) -> StoreResult<()> {
        self.record()?.clear()
    }

    /// Syncs a group that changed several datasets: their journals are
    /// recorded first, so that a crash leaves the group in all or none.
    fn sync_together(&mut self) -> StoreResult<()> {
        // A journal replaced from outside is started anew (its rows made
        // durable in the CSV) before it is recorded.
        for table in self.tables.values_mut() {
            if table.uncommitted() {
                table.check_files()?;
            }
        }
        let spots: Vec<Spot> = self
            .tables
            .values()
            .filter(|table| table.uncommitted())
            .map(|table| {
                let (journal, before, after) = table.unit_spot();
                Spot {
                    journal,
                    before,
                    after,
                }
            })
            .collect();
        if spots.len() > 1 {
            self.record()?.write(&spots)?;
        }
        let synced = self.tables.values_mut().try_for_each(Table::sync);
        if synced.is_err() && spots.len() > 1 {
            // Some journals may hold their commit row: cut them all back
            // (the host drops this instance; the next one reads the files).
            let undo = Leftover::of(spots);
            if undo.cut_back(&self.directory).is_ok() {
                let _ = self.settle();
            }
        }
        synced
    }
}

impl Backend for CsvStore {
    /// The rows of a group are closed by a commit row at its sync, and
    /// replay applies only closed groups: a unit is stored whole or not.
    const WHOLE_UNITS: bool = true;

    fn init(params: &[(String, String)]) -> Result<Self, String> {
        let mut directory = vsam_plugin_sdk::storage::data_dir();
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
            leftover: None,
            record: None,
        })
    }

    fn create(&mut self, ds: &Dataset, _layout: Option<&str>) -> StoreResult<()> {
        self.settle()?;
        Table::create(&self.directory, ds)?;
        log::info(&format!("created {}", ds.name));
        Ok(())
    }

    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        self.settle()?;
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
        self.record()?;
        self.sync_together()?;
        // CSVs are rewritten between units only, so that a CSV never holds
        // part of one, and once no record names their journals.
        if self.tables.values().any(Table::wants_compaction) {
            self.settle()?;
            for table in self.tables.values_mut() {
                if table.wants_compaction() {
                    table.compact_after_sync();
                }
            }
        }
        Ok(())
    }

    /// At the dataset's last close: its records go into the CSV, and the
    /// instance lets go of them. Kept, a closed dataset's records held the
    /// instance's memory until it ran out (every dataset a batch of jobs
    /// had read, each within the limit alone), and a CSV edited by hand
    /// while the dataset was closed was not read again: the next rewrite
    /// from memory dropped the edit. The next open reads the files.
    fn flush(&mut self, ds: &Dataset) -> StoreResult<()> {
        if !self.tables.contains_key(&ds.name) {
            return Ok(());
        }
        self.settle()?;
        let Some(table) = self.tables.get_mut(&ds.name) else {
            return Ok(());
        };
        table.compact(ds)?;
        if !table.uncommitted() {
            self.tables.remove(&ds.name);
        }
        Ok(())
    }
}

export_backend!(CsvStore);
