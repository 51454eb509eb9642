//! One dataset's CSV file and journal, and its records in memory.

use crate::format::{self, bad};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use vsam_plugin_sdk::storage::{store_error, sync_directory, write_at};
use vsam_plugin_sdk::{Dataset, Organization, StoreError, StoreResult, log, naming};

/// When an acknowledged write is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced to disk (at the host's group sync) before the answer:
    /// survives power loss.
    Fsync,
    /// Handed to the operating system before the answer: survives a crash
    /// or `kill -9` of vsamrd, not a power loss.
    Os,
}

/// A journal operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Replace,
    Delete,
}

impl Op {
    fn code(self) -> &'static str {
        match self {
            Op::Insert => "I",
            Op::Replace => "R",
            Op::Delete => "D",
        }
    }
}

/// The first row of a journal written by this version: its rows come in
/// units, each closed by a [`COMMIT_ROW`]. A journal without it (an older
/// version's) has no units: every complete row counts.
const VERSION_ROW: &[u8] = b"V,2,\n";
/// Closes the rows of one sync (one group, one unit of work): replay
/// applies only rows followed by one, so a unit is stored whole or not.
pub(crate) const COMMIT_ROW: &[u8] = b"C,,\n";

/// Journal rows tolerated before the CSV is rewritten, at the least.
const MIN_COMPACTION_ROWS: usize = 10_000;

/// An open dataset.
pub struct Table {
    pub records: BTreeMap<Vec<u8>, Vec<u8>>,
    csv_path: PathBuf,
    journal_path: PathBuf,
    journal: File,
    journal_bytes: u64,
    journal_rows: usize,
    durability: Durability,
    /// Journal rows were written since the last sync.
    unsynced: bool,
    /// Journal rows were written since the last commit row.
    uncommitted: bool,
    /// Where the journal ended after the last commit row that was synced:
    /// a sync that fails cuts the journal back to it, so that a unit
    /// reported failed is not replayed later.
    committed_bytes: u64,
    /// Written since the files were last checked at a sync.
    unchecked: bool,
    /// The journal ends in a torn row (a write never acknowledged), cut
    /// off before the next write: opening only reads, so an instance that
    /// merely looks (a health check beside the serving one) changes nothing.
    torn: bool,
    /// The dataset, for a rewrite at a sync.
    ds: Dataset,
}

fn paths(directory: &Path, ds: &Dataset) -> (PathBuf, PathBuf, PathBuf) {
    (
        directory.join(naming::file_name(&ds.name, "csv")),
        directory.join(naming::file_name(&ds.name, "journal")),
        directory.join(naming::file_name(&ds.name, "csv.tmp")),
    )
}

fn csv_error(ds: &Dataset, error: csv::Error) -> StoreError {
    let line = error.position().map(|p| p.line()).unwrap_or(0);
    bad(ds, line, "row", &error.to_string())
}

impl Table {
    /// Writes an empty CSV (the header row only).
    pub fn create(directory: &Path, ds: &Dataset) -> StoreResult<()> {
        let (csv_path, journal_path, tmp_path) = paths(directory, ds);
        if csv_path.exists() {
            return Err(StoreError::AlreadyExists);
        }
        write_snapshot(ds, &tmp_path, &csv_path, &BTreeMap::new())?;
        match fs::remove_file(&journal_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(store_error(&journal_path, "removing stale journal", e)),
        }
    }

    /// Removes the CSV and its journal.
    pub fn destroy(directory: &Path, ds: &Dataset) -> StoreResult<()> {
        let (csv_path, journal_path, _) = paths(directory, ds);
        match fs::remove_file(&csv_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NoSuchDataset),
            Err(e) => return Err(store_error(&csv_path, "removing", e)),
        }
        match fs::remove_file(&journal_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(store_error(&journal_path, "removing", e))
            }
            _ => Ok(()),
        }
    }

    /// Reads the CSV, replays the journal and opens it for appending.
    /// `limit`: the journal's bytes past it belong to a unit over several
    /// datasets that was never committed whole (see `undo`): left out, and
    /// cut off before the next write.
    pub fn open(
        directory: &Path,
        ds: &Dataset,
        durability: Durability,
        limit: Option<u64>,
    ) -> StoreResult<Self> {
        let (csv_path, journal_path, _) = paths(directory, ds);
        let file = match File::open(&csv_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NoSuchDataset),
            Err(e) => return Err(store_error(&csv_path, "opening", e)),
        };
        let mut records = BTreeMap::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(io::BufReader::with_capacity(1 << 20, file));
        for row in reader.records() {
            let row = row.map_err(|e| csv_error(ds, e))?;
            let line = row.position().map(|p| p.line()).unwrap_or(0);
            let (Some(key_text), Some(record_text)) = (row.get(0), row.get(1)) else {
                return Err(bad(ds, line, "row", "needs two columns: key and record"));
            };
            let key = format::key_from_text(ds, key_text, line)?;
            let record = format::record_from_text(ds, record_text, line)?;
            check_key_field(ds, &key, &record, line)?;
            if records.insert(key, record).is_some() {
                return Err(bad(
                    ds,
                    line,
                    format::header(ds)[0],
                    "the same key appears twice",
                ));
            }
        }

        #[cfg(test)]
        tests::after_reading_the_csv();
        let (journal, journal_bytes, journal_rows, torn) =
            replay_journal(ds, &journal_path, &mut records, limit)?;
        // Opening the journal makes it if it is missing: a DELETE (another
        // instance's, of another generation during a swap) that removed
        // both files while this one read the CSV would find a journal
        // standing alone after it. Gone with its CSV, the dataset is.
        if !csv_path.exists() {
            drop(journal);
            let _ = fs::remove_file(&journal_path);
            return Err(StoreError::NoSuchDataset);
        }
        Ok(Self {
            records,
            csv_path,
            journal_path,
            journal,
            journal_bytes,
            journal_rows,
            durability,
            unsynced: false,
            uncommitted: false,
            committed_bytes: journal_bytes,
            unchecked: false,
            torn,
            ds: ds.clone(),
        })
    }

    /// Journals a write, then applies it. Nothing changes if the journal
    /// write fails: the torn row is cut off again.
    pub fn write(
        &mut self,
        ds: &Dataset,
        op: Op,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> StoreResult<()> {
        let mut row =
            csv::Writer::from_writer(Vec::with_capacity(64 + value.as_ref().map_or(0, Vec::len)));
        let record_text = value
            .as_deref()
            .map(|v| format::record_to_text(ds, v))
            .unwrap_or_default();
        row.write_record([op.code(), &format::key_to_text(ds, &key), &record_text])
            .map_err(|e| csv_error(ds, e))?;
        let mut row = row
            .into_inner()
            .map_err(|e| StoreError::Io(e.to_string()))?;
        if self.journal_bytes == 0 {
            row.splice(0..0, VERSION_ROW.iter().copied());
        }
        if self.torn {
            self.journal
                .set_len(self.journal_bytes)
                .and_then(|()| self.journal.sync_data())
                .map_err(|e| store_error(&self.journal_path, "cutting off a torn row of", e))?;
            self.torn = false;
        }
        self.unchecked = true;
        if let Err(error) = write_at(&self.journal, &row, self.journal_bytes) {
            let _ = self.journal.set_len(self.journal_bytes);
            return Err(store_error(&self.journal_path, "appending to", error));
        }
        self.journal_bytes += row.len() as u64;
        self.journal_rows += 1;
        self.unsynced = self.durability == Durability::Fsync;
        self.uncommitted = true;
        match value {
            Some(value) => {
                self.records.insert(key, value);
            }
            None => {
                self.records.remove(&key);
            }
        }
        Ok(())
    }

    /// Checks before a sync that the journal and the CSV are still the
    /// files this table writes. If either was removed or replaced from
    /// outside while the dataset was open, the rows written there are in
    /// no file anyone will read: the CSV is rewritten from the records in
    /// memory (every write acknowledged and this group's) and a new journal
    /// started, so the writes are durable after all (true); if that fails,
    /// the sync fails.
    pub fn check_files(&mut self) -> StoreResult<bool> {
        if !std::mem::take(&mut self.unchecked) || self.files_intact()? {
            return Ok(false);
        }
        let ds = self.ds.clone();
        log::error(&format!(
            "{}: {} was removed or replaced while the dataset was open (by something other than vsamrd); rewriting {} from the records in memory and starting a new journal",
            ds.name,
            self.journal_path.display(),
            self.csv_path.display()
        ));
        let tmp_path = self.csv_path.with_extension("csv.tmp");
        write_snapshot(&ds, &tmp_path, &self.csv_path, &self.records)?;
        self.journal = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.journal_path)
            .map_err(|e| store_error(&self.journal_path, "starting a new", e))?;
        self.journal_bytes = 0;
        self.journal_rows = 0;
        self.committed_bytes = 0;
        self.unsynced = false;
        self.uncommitted = false;
        self.torn = false;
        Ok(true)
    }

    /// True if rows were written since the last commit row.
    pub fn uncommitted(&self) -> bool {
        self.uncommitted
    }

    /// The journal's file name, where the last committed unit ends in it,
    /// and where this group's commit row will end.
    pub fn unit_spot(&self) -> (String, u64, u64) {
        let name = self
            .journal_path
            .file_name()
            .map(|name| name.to_string_lossy().to_string())
            .unwrap_or_default();
        let after = self.journal_bytes + COMMIT_ROW.len() as u64;
        (name, self.committed_bytes, after)
    }

    /// Syncs the journal rows written since the last sync, closing them
    /// with a commit row (see [`Table::check_files`] for files replaced
    /// from outside).
    pub fn sync(&mut self) -> StoreResult<()> {
        if self.check_files()? {
            return Ok(());
        }
        if self.uncommitted {
            if let Err(error) = write_at(&self.journal, COMMIT_ROW, self.journal_bytes) {
                self.undo_unit();
                return Err(store_error(&self.journal_path, "committing to", error));
            }
            self.journal_bytes += COMMIT_ROW.len() as u64;
            self.uncommitted = false;
        }
        if self.unsynced {
            if let Err(error) = self.journal.sync_data() {
                self.undo_unit();
                return Err(store_error(&self.journal_path, "syncing", error));
            }
            self.unsynced = false;
        }
        self.committed_bytes = self.journal_bytes;
        Ok(())
    }

    /// True when the journal has grown long enough for the CSV to be
    /// rewritten (between units only, so that the CSV never holds part of
    /// one: the store asks after its syncs).
    pub fn wants_compaction(&self) -> bool {
        self.journal_rows > self.records.len().max(MIN_COMPACTION_ROWS)
    }

    /// [`Table::compact`] after a sync: a failed rewrite loses nothing
    /// (the rows are journaled), and is tried again after the next sync.
    pub fn compact_after_sync(&mut self) {
        let ds = self.ds.clone();
        if let Err(error) = self.compact(&ds) {
            log::warn(&format!("{}: rewriting the CSV failed: {error:?}", ds.name));
        }
    }

    /// After a failed sync: cuts the journal back to the last unit that
    /// was committed, so that the failed one (reported failed to every
    /// writer, whose instance the host now drops) is not replayed.
    fn undo_unit(&mut self) {
        if self.journal.set_len(self.committed_bytes).is_ok() {
            let _ = self.journal.sync_data();
        }
        self.journal_bytes = self.committed_bytes;
    }

    /// Rewrites the CSV with every record and empties the journal.
    pub fn compact(&mut self, ds: &Dataset) -> StoreResult<()> {
        if self.journal_rows == 0 {
            return Ok(());
        }
        let tmp_path = self.csv_path.with_extension("csv.tmp");
        write_snapshot(ds, &tmp_path, &self.csv_path, &self.records)?;
        self.journal
            .set_len(0)
            .and_then(|()| self.journal.sync_data())
            .map_err(|e| store_error(&self.journal_path, "emptying", e))?;
        self.journal_bytes = 0;
        self.journal_rows = 0;
        self.committed_bytes = 0;
        self.unsynced = false;
        // The rows it held are in the CSV now: nothing is left to close.
        self.uncommitted = false;
        Ok(())
    }
}

impl Table {
    /// Whether the journal at its path is still the file this table writes
    /// (same length and modification time), and the CSV is still there.
    fn files_intact(&self) -> StoreResult<bool> {
        let open = self
            .journal
            .metadata()
            .map_err(|e| store_error(&self.journal_path, "checking", e))?;
        let at_path = match fs::metadata(&self.journal_path) {
            Ok(at_path) => at_path,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(store_error(&self.journal_path, "checking", e)),
        };
        let same = at_path.len() == open.len() && at_path.modified().ok() == open.modified().ok();
        Ok(same && self.csv_path.exists())
    }
}

/// A KSDS record must carry its key at the key offset.
fn check_key_field(ds: &Dataset, key: &[u8], record: &[u8], line: u64) -> StoreResult<()> {
    if ds.organization != Organization::Ksds || ds.key_length == 0 {
        return Ok(());
    }
    let (start, end) = (
        ds.key_offset as usize,
        ds.key_offset.saturating_add(ds.key_length) as usize,
    );
    if record.get(start..end) != Some(key) {
        return Err(bad(
            ds,
            line,
            "key",
            &format!(
                "the key column does not match bytes {}..{} of the record: edit both together",
                start + 1,
                end
            ),
        ));
    }
    Ok(())
}

/// Writes every record to `tmp`, syncs it, renames it over `target` and
/// syncs the directory, so that the rename is durable before the journal
/// it replaces is emptied (a crash in between must not leave the old CSV
/// beside an empty journal). On failure `tmp` is removed: a half-written
/// copy must not hold the space a full disk has left.
fn write_snapshot(
    ds: &Dataset,
    tmp: &Path,
    target: &Path,
    records: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> StoreResult<()> {
    let result = write_csv(ds, tmp, records)
        .and_then(|()| fs::rename(tmp, target).map_err(|e| store_error(target, "replacing", e)));
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result?;
    sync_directory(target.parent().unwrap_or(Path::new(".")))
}

/// Writes the header and every record to a new file at `path`, synced.
fn write_csv(ds: &Dataset, path: &Path, records: &BTreeMap<Vec<u8>, Vec<u8>>) -> StoreResult<()> {
    // A write that fails is the disk's doing (a full disk: no space), not
    // a bad row.
    let failed = |error: csv::Error| match error.into_kind() {
        csv::ErrorKind::Io(error) => store_error(path, "writing", error),
        other => StoreError::Io(format!(
            "{}: writing {}: {other:?}",
            ds.name,
            path.display()
        )),
    };
    let file = File::create(path).map_err(|e| store_error(path, "creating", e))?;
    let positioned = PositionedWriter { file, offset: 0 };
    let mut writer = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, positioned));
    writer.write_record(format::header(ds)).map_err(failed)?;
    for (key, record) in records {
        writer
            .write_record([
                format::key_to_text(ds, key),
                format::record_to_text(ds, record),
            ])
            .map_err(failed)?;
    }
    let buffered = writer
        .into_inner()
        .map_err(|e| store_error(path, "writing", e.into_error()))?;
    let PositionedWriter { file, .. } = buffered
        .into_inner()
        .map_err(|e| store_error(path, "writing", e.into_error()))?;
    file.sync_all().map_err(|e| store_error(path, "syncing", e))
}

/// A file written front to back by positional writes (see [`write_at`]),
/// so that a full disk reads as such.
struct PositionedWriter {
    file: File,
    offset: u64,
}

impl Write for PositionedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        write_at(&self.file, bytes, self.offset)?;
        self.offset += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Applies the journal to `records`, leaving out a torn last row. Returns
/// the journal opened for writing, the length of its complete rows, their
/// count, and whether a torn row follows them.
fn replay_journal(
    ds: &Dataset,
    path: &Path,
    records: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    limit: Option<u64>,
) -> StoreResult<(File, u64, usize, bool)> {
    // Read through a handle of its own, from the start.
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .map_err(|e| store_error(path, "reading", e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(store_error(path, "opening", e)),
    }
    let beyond = limit.map_or(0, |limit| bytes.len().saturating_sub(limit as usize));
    if beyond > 0 {
        log::warn(&format!(
            "{}: the journal's last {beyond} bytes belong to a unit of work over several datasets that was never committed whole: left out, and cut off before the next write",
            ds.name
        ));
        bytes.truncate(bytes.len() - beyond);
    }
    let journal = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| store_error(path, "opening", e))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = complete < bytes.len();
    if torn {
        log::warn(&format!(
            "{}: the journal ends in a torn row of {} bytes (a write that was never acknowledged): left out, and cut off before the next write",
            ds.name,
            bytes.len() - complete
        ));
    }
    let units = bytes.starts_with(VERSION_ROW);
    let mut rows = 0;
    // Rows read since the last commit row, and where that row ended.
    let mut unit: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut committed_end = 0u64;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..complete]);
    let mut row = csv::StringRecord::new();
    while reader.read_record(&mut row).map_err(|e| csv_error(ds, e))? {
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let journal_bad =
            |what: &str| StoreError::Io(format!("{}.journal line {line}: {what}", ds.name));
        let op = row.get(0);
        if units && matches!(op, Some("V") | Some("C")) {
            if op == Some("C") {
                rows += unit.len();
                for (key, record) in unit.drain(..) {
                    apply(records, key, record);
                }
                committed_end = reader.position().byte();
            }
            continue;
        }
        let key = format::key_from_text(
            ds,
            row.get(1).ok_or_else(|| journal_bad("missing key"))?,
            line,
        )?;
        let change = match op {
            Some("I") | Some("R") => Some(format::record_from_text(
                ds,
                row.get(2).ok_or_else(|| journal_bad("missing record"))?,
                line,
            )?),
            Some("D") => None,
            _ => return Err(journal_bad("unknown operation")),
        };
        if units {
            unit.push((key, change));
        } else {
            apply(records, key, change);
            rows += 1;
        }
    }
    let torn = torn || beyond > 0;
    if !units {
        return Ok((journal, complete as u64, rows, torn));
    }
    let cut = committed_end < complete as u64 || torn;
    if !unit.is_empty() {
        log::warn(&format!(
            "{}: the journal ends in {} row(s) of a unit that was never committed (a crash, or a rollback, before its sync): left out, and cut off before the next write",
            ds.name,
            unit.len()
        ));
    }
    Ok((journal, committed_end, rows, cut))
}

/// Applies one journal row to the records.
fn apply(records: &mut BTreeMap<Vec<u8>, Vec<u8>>, key: Vec<u8>, record: Option<Vec<u8>>) {
    match record {
        Some(record) => {
            records.insert(key, record);
        }
        None => {
            records.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        /// What happens between reading a CSV and opening its journal.
        static AFTER_READING: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
    }

    pub(super) fn after_reading_the_csv() {
        if let Some(hook) = AFTER_READING.with(|hook| hook.borrow_mut().take()) {
            hook();
        }
    }

    #[test]
    fn a_delete_while_another_instance_opens_the_dataset_leaves_no_journal_behind() {
        let directory = std::env::temp_dir().join(format!(
            "vsam-csv-race-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::create_dir_all(&directory).unwrap();
        let ds = Dataset::ksds("RACE.DATA", 4, 40);
        Table::create(&directory, &ds).unwrap();
        let (csv_path, journal_path, _) = paths(&directory, &ds);
        assert!(csv_path.exists());
        // Another instance's DELETE removes both files meanwhile.
        let (dir, gone) = (directory.clone(), ds.clone());
        AFTER_READING.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move || {
                Table::destroy(&dir, &gone).unwrap();
            }));
        });
        assert!(matches!(
            Table::open(&directory, &ds, Durability::Fsync, None),
            Err(StoreError::NoSuchDataset)
        ));
        assert!(!csv_path.exists());
        assert!(
            !journal_path.exists(),
            "a journal left alone by the open of a dataset deleted meanwhile"
        );
        fs::remove_dir_all(&directory).unwrap();
    }
}
