//! The change stream: every committed change of the datasets it carries,
//! in commit order, one JSON object per line, in files that rotate, for
//! programs outside (a log shipper, a script tailing the file).
//!
//! Files are `DIRECTORY/stream/changes-NNNNNNNNNNNNNNNNNNNN.jsonl`, named
//! by the sequence number of their first line; the newest is being
//! written. Each line:
//!
//! ```json
//! {"sequence":42,"time":"2026-12-03T10:15:00.123Z","dataset":"PAY.MASTER","operation":"replace",
//!  "key":"F0F0F0F1","record":"F0F0F0F1C1C2","fields":{"EMP-ID":"0001","NAME":"AB"}}
//! ```
//!
//! `key` and `record` are hex (`record` for inserts and replaces), `fields`
//! the record decoded by the dataset's copybook if it has one (numbers as
//! exact decimal text). A define carries `organization`, `key_offset`,
//! `key_length`, `record_size`; a delete only the dataset.
//!
//! The stream's position is the sequence number of its last line: at
//! start the last file is read back (a line a stop left half written is cut
//! off), and writing goes on from the next change. Once a second the file
//! is synced and the position saved in `DIRECTORY/stream/position` (it may
//! pass the last line: changes of datasets the stream does not carry); the
//! log keeps every change after the saved position. The log is made durable
//! before lines are written, so a line once written always names the same
//! change: a consumer that remembers the last sequence it handled and skips
//! lines up to it after a restart misses nothing and repeats nothing.
//!
//! With `stream = "postgres"` the same objects go to a table instead (see
//! [`table`]); batching, filtering and the lines are the same.

pub mod table;

use super::change::{Change, Operation};
use super::log::ChangeLog;
use crate::after_panic::LockOrStop;
use crate::config::StreamSettings;
use crate::vsam::Shared;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::copybook::{Copybook, Field};
use vsam_protocol::admin::ChangeStreamRow;

/// How long the writer gathers commits before it writes their lines.
const GATHER: Duration = Duration::from_millis(25);

/// Most changes read from the log at once; a writer this far behind
/// writes without gathering.
const BATCH: usize = 1000;

/// The change stream writer.
pub struct Stream {
    dir: PathBuf,
    settings: StreamSettings,
    /// The table it writes instead of files, once its task made it.
    table: tokio::sync::OnceCell<table::StreamTableWriter>,
    report: Mutex<ChangeStreamRow>,
    /// The position last saved with its lines synced: what a restart goes
    /// on from at the least.
    persisted: std::sync::atomic::AtomicU64,
}

/// How often the stream's file is synced and its position saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The saved position in `dir`, if any.
fn saved_position(dir: &Path) -> std::io::Result<Option<u64>> {
    match std::fs::read_to_string(dir.join("position")) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

fn file_name(first: u64) -> String {
    format!("changes-{first:020}.jsonl")
}

/// The stream files in `dir`, oldest first.
fn files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix("changes-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
            && let Ok(first) = number.parse::<u64>()
        {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The sequence number of the last whole line of `path`, cutting off a
/// half-written line after it.
fn last_sequence(path: &Path) -> std::io::Result<Option<u64>> {
    let bytes = std::fs::read(path)?;
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        tracing::warn!(
            "change stream {}: cut off {} bytes of a line a stop left half written",
            path.display(),
            bytes.len() - whole
        );
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(whole as u64)?;
        file.sync_all()?;
    }
    let Some(line) = bytes[..whole]
        .split(|b| *b == b'\n')
        .rev()
        .find(|l| !l.is_empty())
    else {
        return Ok(None);
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        std::io::Error::other(format!(
            "the last line of {} is not a change: {e}",
            path.display()
        ))
    })?;
    Ok(value.get("sequence").and_then(Value::as_u64))
}

impl Stream {
    /// The stream in `dir`, and the sequence number it goes on after: its
    /// last line's, or `head` (the log's end) for a new stream.
    pub(super) fn open(
        dir: &Path,
        settings: StreamSettings,
        head: u64,
    ) -> std::io::Result<(Arc<Self>, u64)> {
        if let Some(table) = &settings.table {
            // The table's position is read by the stream's task; until
            // then the log keeps everything.
            let place = table::StreamTableWriter::describe(table);
            return Ok((Self::new(dir, settings, place, 0), head));
        }
        crate::paths::make_private_dir(dir)?;
        let mut position = None;
        for (_, path) in files(dir)?.iter().rev() {
            if let Some(sequence) = last_sequence(path)? {
                position = Some(sequence);
                break;
            }
        }
        // Lines up to the saved position were synced before it was saved;
        // past the last line, it skipped changes the stream does not carry.
        let position = match (position, saved_position(dir)?) {
            (Some(line), Some(saved)) => line.max(saved.min(head)),
            (Some(line), None) => line,
            (None, _) => head,
        };
        Ok((Self::new(dir, settings, String::new(), position), position))
    }

    /// A stream written up to `position`, to `place` (the file, or the
    /// table, it writes).
    fn new(dir: &Path, settings: StreamSettings, place: String, position: u64) -> Arc<Self> {
        Arc::new(Self {
            dir: dir.to_path_buf(),
            settings,
            table: tokio::sync::OnceCell::new(),
            report: Mutex::new(ChangeStreamRow {
                written: position,
                file: place,
                last_error: None,
                missing: None,
            }),
            persisted: position.into(),
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Where it stands.
    pub fn report(&self) -> ChangeStreamRow {
        self.report.lock_or_stop().clone()
    }

    /// The sequence number of its last line.
    pub fn written(&self) -> u64 {
        self.report.lock_or_stop().written
    }

    /// The position a restart would go on from at the least: the log keeps
    /// the changes after it.
    pub fn persisted(&self) -> u64 {
        self.persisted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs `work` on the stream's current file off the runtime's threads
    /// (see [`super::off_runtime`]): it writes and syncs files (the log's
    /// sync before every batch, the position's once a second).
    async fn off_thread(
        self: Arc<Self>,
        mut current: Option<(File, u64)>,
        work: impl FnOnce(&Self, &mut Option<(File, u64)>) -> std::io::Result<()> + Send + 'static,
    ) -> (std::io::Result<()>, Option<(File, u64)>) {
        super::off_runtime(move || {
            let result = work(&self, &mut current);
            Ok((result, current))
        })
        .await
        .unwrap_or_else(|panicked| (Err(panicked), None))
    }

    /// Syncs the current file and saves the position written so far.
    fn persist(&self, current: &mut Option<(File, u64)>) -> std::io::Result<()> {
        let written = self.written();
        if written == self.persisted() {
            return Ok(());
        }
        if let Some((file, _)) = current {
            file.sync_data()?;
        }
        crate::durable::replace_file(&self.dir.join("position"), written.to_string().as_bytes())?;
        self.persisted
            .store(written, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Says in its report, and once in the server's log, when other
    /// servers write datasets it carries (see [`super::fleet`]): it goes on
    /// with this server's changes, and lacks theirs.
    fn check_written_elsewhere(&self, shared: &Shared) {
        let Some(why) = super::fleet::written_elsewhere(shared, &self.settings.datasets, "") else {
            return;
        };
        let mut report = self.report.lock_or_stop();
        if report.missing.is_none() {
            let why = format!(
                "{why}; it carries this server's changes only: keep the change stream on a server alone on the databases of its datasets"
            );
            tracing::error!("change stream {}: {why}", self.dir.display());
            report.missing = Some(why);
        }
    }

    /// Its task: writes the changes as they are committed.
    pub(super) async fn run(
        self: Arc<Self>,
        log: Arc<ChangeLog>,
        after: u64,
        shared: Weak<Shared>,
        ended: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let after = match &self.settings.table {
            None => after,
            Some(_) => match self.open_table(&log, after, &ended).await {
                Some(after) => after,
                None => return,
            },
        };
        let mut commits = log.subscribe();
        let mut reader = log.reader(after);
        let mut layouts = Layouts::default();
        let mut current: Option<(File, u64)> = None;
        let mut last_save = std::time::Instant::now();
        let mut gathering_since = std::time::Instant::now();
        while !ended.load(std::sync::atomic::Ordering::SeqCst) {
            if last_save.elapsed() >= SAVE_EVERY {
                last_save = std::time::Instant::now();
                if let Some(shared) = shared.upgrade() {
                    self.check_written_elsewhere(&shared);
                }
                current = self.clone().save(current).await;
            }
            // Lines are written a batch at a time, each after the log's
            // sync: under a steady load the changes of a moment go
            // together, rather than each write of a few lines paying a
            // sync of its own.
            if let Some(wait) = GATHER.checked_sub(gathering_since.elapsed())
                && log.last_committed().saturating_sub(self.written()) < BATCH as u64
            {
                tokio::time::sleep(wait).await;
            }
            let batch = match reader.next_batch(BATCH) {
                Ok(batch) => batch,
                Err(error) => {
                    if let Some(why) = shared.upgrade().and_then(|shared| shared.changes.lost()) {
                        // Nothing more will be recorded (the storage
                        // watcher said why, once): the stream ends here.
                        self.report.lock_or_stop().last_error = Some(why.to_string());
                        return;
                    }
                    self.report.lock_or_stop().last_error = Some(error.to_string());
                    tracing::error!("change stream: {error}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = commits.changed() => {}
                    _ = tokio::time::sleep(SAVE_EVERY / 2) => {}
                }
                // A moment gathers the commits that follow this one.
                gathering_since = std::time::Instant::now();
                continue;
            }
            gathering_since = std::time::Instant::now();
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut text = Vec::new();
            let mut rows = Vec::new();
            let mut first = None;
            for change in &batch {
                if !self
                    .settings
                    .datasets
                    .iter()
                    .any(|p| crate::catalog::matches(p, &change.dataset.name))
                {
                    continue;
                }
                let line = line(change, &mut layouts, &shared);
                first.get_or_insert(change.sequence);
                if self.table.get().is_some() {
                    rows.push(line);
                    continue;
                }
                serde_json::to_writer(&mut text, &line).expect("JSON to memory");
                text.push(b'\n');
            }
            drop(shared);
            let last = batch.last().map_or(0, |c| c.sequence);
            let result = match first {
                None => Ok(()),
                Some(_) if self.table.get().is_some() => self.append_rows(&log, &rows, last).await,
                Some(first) => {
                    let log = log.clone();
                    let appended;
                    (appended, current) = self
                        .clone()
                        .off_thread(current, move |stream, current| {
                            stream.append(&log, current, first, &text)
                        })
                        .await;
                    appended
                }
            };
            match result {
                Ok(()) => {
                    let mut report = self.report.lock_or_stop();
                    report.written = last;
                    report.last_error = None;
                }
                Err(error) => {
                    // A table's errors name it already.
                    let message = match self.table.get() {
                        Some(_) => format!("change stream: {error}"),
                        None => format!("change stream {}: {error}", self.dir.display()),
                    };
                    tracing::error!("{message}; retrying");
                    self.report.lock_or_stop().last_error = Some(message);
                    // Written again from the same place: the file ends
                    // where the last whole write ended.
                    current = None;
                    reader = log.reader(self.written());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        self.clone().save(current).await;
    }

    /// Saves the position written so far: syncs the file and writes the
    /// position beside it, or moves the table's position (and deletes its
    /// rows past those it keeps). Gives back the file.
    async fn save(self: Arc<Self>, current: Option<(File, u64)>) -> Option<(File, u64)> {
        let (saved, current) = match self.table.get() {
            // Nothing written since the last save: an idle stream leaves
            // the database alone.
            Some(_) if self.written() == self.persisted() => (Ok(()), current),
            Some(table) => {
                let written = self.written();
                let saved = table.save(written).await;
                if saved.is_ok() {
                    self.persisted
                        .store(written, std::sync::atomic::Ordering::SeqCst);
                }
                (saved.map_err(std::io::Error::other), current)
            }
            None => self.clone().off_thread(current, Self::persist).await,
        };
        if let Err(error) = saved {
            tracing::warn!(
                "change stream {}: cannot save its position: {error}",
                self.report.lock_or_stop().file
            );
        }
        current
    }

    /// Connects to the stream's table, makes it if needed and reads its
    /// position, trying again every few seconds while it cannot (the
    /// report says why); `None` once the stream is ended.
    async fn open_table(
        &self,
        log: &ChangeLog,
        head: u64,
        ended: &std::sync::atomic::AtomicBool,
    ) -> Option<u64> {
        let settings = self.settings.table.clone()?;
        while !ended.load(std::sync::atomic::Ordering::SeqCst) {
            let opened = match table::StreamTableWriter::new(settings.clone(), log.id()) {
                Ok(writer) => writer.open(head).await.map(|after| (writer, after)),
                Err(error) => Err(format!("{error:#}")),
            };
            match opened {
                Ok((writer, after)) => {
                    let _ = self.table.set(writer);
                    self.persisted
                        .store(after, std::sync::atomic::Ordering::SeqCst);
                    let mut report = self.report.lock_or_stop();
                    report.written = after;
                    report.last_error = None;
                    return Some(after);
                }
                Err(error) => {
                    tracing::error!("change stream: {error}; tried again in 5 s");
                    self.report.lock_or_stop().last_error = Some(error);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
        None
    }

    /// Writes a batch's rows (each a line's object) to the table, with the
    /// position `through`, once the log holds them durably.
    async fn append_rows(
        &self,
        log: &Arc<ChangeLog>,
        rows: &[Value],
        through: u64,
    ) -> std::io::Result<()> {
        let table = self.table.get().expect("the table is open");
        // A row once written always names the same change.
        let durable = log.clone();
        super::off_runtime(move || durable.make_durable()).await?;
        table
            .append(rows, through)
            .await
            .map_err(std::io::Error::other)
    }

    /// Appends lines, starting a new file when the current one is full.
    fn append(
        &self,
        log: &ChangeLog,
        current: &mut Option<(File, u64)>,
        first: u64,
        text: &[u8],
    ) -> std::io::Result<()> {
        // A line once written always names the same change.
        log.make_durable()?;
        let full = current
            .as_ref()
            .is_none_or(|(_, length)| *length >= self.settings.rotate_bytes);
        if full {
            let existing = files(&self.dir)?;
            let reuse = existing.last().filter(|(_, path)| {
                current.is_none()
                    && std::fs::metadata(path).is_ok_and(|m| m.len() < self.settings.rotate_bytes)
            });
            let path = match reuse {
                Some((_, path)) => path.clone(),
                None => {
                    if let Some((file, _)) = current.take() {
                        file.sync_data()?;
                    }
                    self.dir.join(file_name(first))
                }
            };
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            let length = file.metadata()?.len();
            self.report.lock_or_stop().file = path.display().to_string();
            *current = Some((file, length));
            self.prune()?;
        }
        let (file, length) = current.as_mut().expect("opened above");
        if let Err(error) = file.write_all(text) {
            // A write the full disk cut short leaves part of a line, which
            // the batch written again would follow: a consumer would read
            // a torn line and the lines before it twice. The file is cut
            // back to its last whole batch.
            if let Err(cut) = file.set_len(*length) {
                tracing::error!(
                    "change stream {}: cannot cut a failed write off its file ({cut}); its end may hold part of a line",
                    self.dir.display()
                );
            }
            return Err(error);
        }
        *length += text.len() as u64;
        Ok(())
    }

    /// Removes the oldest files past `keep_files`.
    fn prune(&self) -> std::io::Result<()> {
        let existing = files(&self.dir)?;
        let keep = self.settings.keep_files as usize;
        if existing.len() > keep {
            for (_, path) in &existing[..existing.len() - keep] {
                std::fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

/// The most datasets whose copybook fields the stream keeps at once.
/// Kept for every dataset it ever carried, the stream of a server whose
/// programs wrote tens of thousands of datasets over weeks held all
/// their fields (some KB each) for good; past the bound they are let go
/// and parsed again from the catalog as changes come.
const MAX_LAYOUTS: usize = 1024;

/// A dataset's copybook fields, and the code page its text is in.
type Fields = (Vec<Field>, CodePage);

/// Copybook fields of the datasets seen lately, by name (`None`: no
/// layout); at most [`MAX_LAYOUTS`].
#[derive(Default)]
struct Layouts(HashMap<String, Option<Fields>>);

impl Layouts {
    fn fields(&mut self, change: &Change, shared: &Shared) -> Option<&Fields> {
        self.fields_by(change, || {
            let (def, _) = shared.catalog.get(&change.dataset.name)?;
            let copybook = Copybook::parse(def.layout.as_deref()?).ok()?;
            let fields = copybook
                .fields()
                .into_iter()
                .filter(|f| !f.redefined)
                .collect();
            Some((fields, def.codepage))
        })
    }

    /// The fields of `change`'s dataset, `look_up` from the catalog if
    /// not kept.
    fn fields_by(
        &mut self,
        change: &Change,
        look_up: impl FnOnce() -> Option<Fields>,
    ) -> Option<&Fields> {
        let name = &change.dataset.name;
        if matches!(change.operation, Operation::Define(_) | Operation::Delete) {
            self.0.remove(name);
            return None;
        }
        if self.0.len() >= MAX_LAYOUTS && !self.0.contains_key(name) {
            self.0.clear();
        }
        self.0.entry(name.clone()).or_insert_with(look_up).as_ref()
    }
}

/// A change as its stream line.
fn line(change: &Change, layouts: &mut Layouts, shared: &Shared) -> Value {
    let mut line = Map::new();
    line.insert("sequence".into(), json!(change.sequence));
    line.insert("time".into(), json!(utc_text(change.time_ms)));
    line.insert("dataset".into(), json!(change.dataset.name));
    line.insert("operation".into(), json!(change.operation.name()));
    match &change.operation {
        Operation::Define(_) => {
            let ds = &change.dataset;
            let organization = match ds.organization {
                vsam_plugin_sdk::Organization::Ksds => "ksds",
                vsam_plugin_sdk::Organization::Esds => "esds",
                vsam_plugin_sdk::Organization::Rrds => "rrds",
            };
            line.insert("organization".into(), json!(organization));
            line.insert("key_offset".into(), json!(ds.key_offset));
            line.insert("key_length".into(), json!(ds.key_length));
            line.insert("record_size".into(), json!(ds.max_record_length));
        }
        Operation::Delete => {}
        _ => {
            line.insert("key".into(), json!(hex::encode_upper(&change.key)));
            if let Some(record) = &change.record {
                line.insert("record".into(), json!(hex::encode_upper(record)));
                if let Some((fields, codepage)) = layouts.fields(change, shared) {
                    line.insert("fields".into(), decode_fields(fields, *codepage, record));
                }
            }
        }
    }
    Value::Object(line)
}

/// A record's fields by their copybook: numbers as exact decimal text,
/// text decoded from the code page; a field the record does not reach, or
/// whose bytes are not a valid number, is null.
pub fn decode_fields(fields: &[Field], codepage: CodePage, record: &[u8]) -> Value {
    let mut out = Map::new();
    for field in fields {
        let value = match record.get(field.offset..field.offset + field.size) {
            None => Value::Null,
            Some(bytes) => match field.number_codec(codepage) {
                Some(codec) => codec
                    .decode(bytes)
                    .map_or(Value::Null, |n| Value::String(n.to_string())),
                None => Value::String(codepage.decode_lossy(bytes)),
            },
        };
        out.insert(field.name.clone(), value);
    }
    Value::Object(out)
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC text.
pub fn utc_text(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let in_day = ms % 86_400_000;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_goes_on_from_the_last_line_or_the_saved_position_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StreamSettings {
            datasets: vec!["**".into()],
            rotate_bytes: 1 << 20,
            keep_files: 8,
            table: None,
        };
        let open = |head| Stream::open(dir.path(), settings.clone(), head).unwrap().1;
        // New: from the log's end.
        assert_eq!(open(7), 7);
        std::fs::write(
            dir.path().join(file_name(3)),
            "{\"sequence\":3}\n{\"sequence\":5}\n{\"sequ",
        )
        .unwrap();
        // The last whole line; the half line is cut off.
        assert_eq!(open(12), 5);
        // Changes the stream does not carry were passed up to 9.
        std::fs::write(dir.path().join("position"), "9").unwrap();
        assert_eq!(open(12), 9);
        // Never past the log's end.
        assert_eq!(open(8), 8);
        std::fs::write(dir.path().join("position"), "4").unwrap();
        let (stream, after) = Stream::open(dir.path(), settings.clone(), 12).unwrap();
        assert_eq!((after, stream.persisted()), (5, 5));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        // Checked against Python: datetime.fromtimestamp(s, timezone.utc).
        assert_eq!(utc_text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_text(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_text(1_796_325_086_954), "2026-12-03T19:11:26.954Z");
        assert_eq!(utc_text(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }

    /// A stream that carries changes of many datasets keeps the fields
    /// of at most [`MAX_LAYOUTS`], looking the others up again as their
    /// changes come; a DEFINE or DELETE forgets a dataset's.
    #[test]
    fn the_fields_kept_are_bounded_and_looked_up_again() {
        let copybook = Copybook::parse("01 R.\n 05 ID PIC 9(4).\n").unwrap();
        let mut layouts = Layouts::default();
        let mut looked_up = 0;
        let mut insert_into = |layouts: &mut Layouts, n: usize| {
            let mut change = crate::changes::log::tests::change("K001", Operation::Insert);
            change.dataset.name = format!("MANY.D{n}");
            let fields = layouts
                .fields_by(&change, || {
                    looked_up += 1;
                    Some((copybook.fields(), CodePage::Cp037))
                })
                .map(|(fields, _)| fields.len());
            assert_eq!(fields, Some(1), "MANY.D{n}");
        };
        for n in 0..3 * MAX_LAYOUTS {
            insert_into(&mut layouts, n);
            assert!(layouts.0.len() <= MAX_LAYOUTS, "{} kept", layouts.0.len());
        }
        // The last one is kept; the first, let go, is looked up again.
        insert_into(&mut layouts, 3 * MAX_LAYOUTS - 1);
        insert_into(&mut layouts, 0);
        assert_eq!(looked_up, 3 * MAX_LAYOUTS + 1);
        let mut delete = crate::changes::log::tests::change("", Operation::Delete);
        delete.dataset.name = "MANY.D0".into();
        assert!(layouts.fields_by(&delete, || unreachable!()).is_none());
        assert!(!layouts.0.contains_key("MANY.D0"));
    }

    #[test]
    fn fields_decode_by_the_copybook() {
        let copybook = Copybook::parse(
            "01 R.\n 05 ID PIC 9(4).\n 05 NAME PIC X(3).\n 05 AMT PIC S9(3)V99 COMP-3.\n",
        )
        .unwrap();
        let record = [0xF0, 0xF0, 0xF4, 0xF2, 0xC1, 0xC2, 0x40, 0x12, 0x34, 0x5D];
        let value = decode_fields(&copybook.fields(), CodePage::Cp037, &record);
        assert_eq!(value, json!({"ID": "42", "NAME": "AB ", "AMT": "-123.45"}));
        // A short record: the fields it does not reach are null.
        let value = decode_fields(&copybook.fields(), CodePage::Cp037, &record[..5]);
        assert_eq!(value["NAME"], Value::Null);
    }
}
