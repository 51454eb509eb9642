//! The change log: every committed change of the datasets that mirrors or
//! the change stream follow, in commit order, on local disk.
//!
//! A backend's group of writes is written to the log as one *prepare*
//! entry, and the log is synced, before the backend's own sync commits the
//! group; then a *commit* entry gives its changes their sequence numbers
//! (or an *abort* entry drops them). So whatever a backend committed is in
//! the log, whenever vsamrd stops: a group prepared but neither committed
//! nor aborted is *in doubt*, and start-up settles it against the backend
//! ([`ChangeLog::open`] returns them, [`ChangeLog::settle`] records the
//! verdict) before anything reads on.
//!
//! A backend with a database of its own writes the group into it instead,
//! in the transaction its sync commits (`runtime::sql::outbox`): the log
//! then takes the group whole, already committed, after that commit, with
//! no sync of its own ([`ChangeLog::write_committed`]), and start-up takes
//! back from the outbox whatever the log lost ([`ChangeLog::missing`]).
//! Those entries wait in memory and reach the file in one write when a
//! reader wants them, the log is synced, or `FLUSH_AT` bytes wait (a
//! `write` per group was 2% of the server's CPU under eight writers), and a
//! kill loses only what the outboxes still hold.
//! Group numbers are reserved durably a block at a time, so that a log that
//! lost its tail never hands out a number an outbox row already holds.
//!
//! Files: `NNNNNNNNNNNNNNNNNNNN.log` segments, named by the first sequence
//! number they may commit. Each entry is a frame: length (u32), CRC-32 of
//! the payload (u32), payload. A torn last frame (a crash mid-write) is cut
//! off at start-up. A new segment starts when one passes its size, and
//! repeats the prepare entries still waiting for their verdict, so a
//! segment and those after it hold every change they commit. Segments
//! every consumer has passed are removed ([`ChangeLog::retain_after`]).

mod entries;
mod reader;
mod segments;
#[cfg(test)]
pub(crate) mod tests;

pub use entries::{Prepared, decode_group, encode_group};
pub use reader::LogReader;

use crate::after_panic::LockOrStop;
use entries::{
    ABORT, COMMIT, Entry, RESERVE, frame, next_frame, parse, prepare_payload, push_frame,
    verdict_payload,
};
use segments::{segment_name, segments};

use super::change::Change;
use crate::durable::sync_directory;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Group numbers reserved by one durable entry.
const RESERVE_BLOCK: u64 = 4096;

/// Bytes of entries that may wait in memory before they are written.
const FLUSH_AT: usize = 64 * 1024;

/// Bytes of entries that may wait in memory while writing them fails: past
/// this, the log refuses groups (as it refuses them when a write fails).
const MOST_UNWRITTEN: usize = 64 * 1024 * 1024;

/// The writer's side, behind the log's lock.
struct Writer {
    file: Arc<File>,
    /// First sequence number the current segment may commit.
    segment_first: u64,
    /// Bytes of the current segment, those still in `unwritten` included.
    length: u64,
    /// Bytes of the segments before the current one, kept as they are
    /// started and removed (see [`ChangeLog::disk_bytes`]).
    older_bytes: u64,
    /// The segment's last entries, not yet written to its file (see the
    /// module documentation).
    unwritten: Vec<u8>,
    next_group: u64,
    next_sequence: u64,
    /// Prepare frames waiting for their verdict, and how many changes
    /// each holds, by group.
    waiting: BTreeMap<u64, (Vec<u8>, u64)>,
    /// The log is known durable up to here in the current segment.
    synced: u64,
    /// Group numbers below this one may be handed out without another
    /// reservation.
    reserved: u64,
    /// The last group number written, by backend.
    last_group: HashMap<String, u64>,
    /// The last rotation failed (see [`ChangeLog::rotate_or_later`]).
    rotation_failing: bool,
    /// Writes fail as on a full disk (see [`ChangeLog::fail_writes`]).
    #[cfg(test)]
    fail_writes: bool,
}

impl Writer {
    /// Bytes of the log's files: the older segments and what the current
    /// one holds on disk.
    fn disk_bytes(&self) -> u64 {
        self.older_bytes + self.length - self.unwritten.len() as u64
    }

    /// Writes the entries waiting in memory to the segment's file. On a
    /// failure the file is cut back to its entries before, and they wait
    /// on.
    fn write_out(&mut self, dir: &Path) -> std::io::Result<()> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let written = self.length - self.unwritten.len() as u64;
        #[cfg(test)]
        if self.fail_writes {
            // As a disk that fills up halfway through the write.
            let half = &self.unwritten[..self.unwritten.len() / 2];
            let _ = (&*self.file).write_all(half);
            let _ = self.file.set_len(written);
            let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
            return Err(log_error(dir, "cannot write", full));
        }
        // At the segment's end as the log counts it, not at the file's
        // offset: a write cut short and cut off the file leaves that
        // offset past the end, and a later write there would leave a hole
        // of zeros between the entries, which reads as damage.
        if let Err(error) = self.file.write_all_at(&self.unwritten, written) {
            // A partial write would leave a torn entry before later ones.
            let _ = self.file.set_len(written);
            return Err(log_error(dir, "cannot write", error));
        }
        self.unwritten.clear();
        Ok(())
    }
}

/// The log of one server's changes (see the module documentation).
pub struct ChangeLog {
    dir: PathBuf,
    id: String,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    /// The writer's [`Writer::disk_bytes`] as of its last write, start or
    /// removal of a segment: the status reads it on every request without
    /// listing the directory, and without waiting for the writer's lock,
    /// which a write stuck on a stalled disk holds (the status is how an
    /// operator finds that out).
    disk_bytes: AtomicU64,
    committed: watch::Sender<u64>,
    /// The last group number of each backend known durable in the log.
    durable_groups: Mutex<HashMap<String, u64>>,
}

/// Why the log cannot be used; every message names the log's directory.
fn log_error(dir: &Path, what: &str, error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("change log {}: {what}: {error}", dir.display()))
}

/// The log's id: read from its `id` file, or made (random) with the log.
fn log_id(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("id");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(log_error(dir, "cannot read its id", error)),
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| log_error(dir, "cannot make an id", e))?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::durable::replace_file(&path, id.as_bytes())
        .map_err(|e| log_error(dir, "cannot write its id", e))?;
    Ok(id)
}

impl ChangeLog {
    /// Opens (or makes) the log in `dir`: reads it to its end, cuts off a
    /// torn last frame, and returns the groups in doubt, which must be
    /// settled ([`ChangeLog::settle`]) before the log is read or written.
    pub fn open(dir: &Path, segment_bytes: u64) -> std::io::Result<(Arc<Self>, Vec<Prepared>)> {
        crate::paths::make_private_dir(dir).map_err(|e| log_error(dir, "cannot make it", e))?;
        let mut found = segments(dir).map_err(|e| log_error(dir, "cannot list it", e))?;
        if found.is_empty() {
            let path = dir.join(segment_name(1));
            File::create(&path).map_err(|e| log_error(dir, "cannot start a segment", e))?;
            sync_directory(dir).map_err(|e| log_error(dir, "cannot sync", e))?;
            found.push((1, path));
        }
        let mut waiting: BTreeMap<u64, Prepared> = BTreeMap::new();
        let mut frames: BTreeMap<u64, (Vec<u8>, u64)> = BTreeMap::new();
        let mut next_group = 1;
        let mut next_sequence = 1;
        let mut reserved = 1;
        let mut last_group: HashMap<String, u64> = HashMap::new();
        let last = found.len() - 1;
        let mut length = 0;
        let mut older_bytes = 0;
        for (index, (_, path)) in found.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|e| log_error(dir, "cannot read it", e))?;
            if index != last {
                older_bytes += bytes.len() as u64;
            }
            let mut offset = 0;
            while let Some((payload, taken)) = next_frame(&bytes[offset..]) {
                let Some(entry) = parse(payload) else { break };
                match entry {
                    Entry::Prepare(prepared) => {
                        next_group = next_group.max(prepared.group + 1);
                        let last = last_group.entry(prepared.backend.clone()).or_default();
                        *last = (*last).max(prepared.group);
                        let count = prepared.changes.len() as u64;
                        frames.insert(prepared.group, (frame(payload), count));
                        waiting.insert(prepared.group, prepared);
                    }
                    Entry::Commit {
                        group,
                        first_sequence,
                    } => {
                        if let Some(prepared) = waiting.remove(&group) {
                            next_sequence = first_sequence + prepared.changes.len() as u64;
                        }
                        frames.remove(&group);
                    }
                    Entry::Abort { group } => {
                        waiting.remove(&group);
                        frames.remove(&group);
                    }
                    Entry::Reserve { below } => reserved = reserved.max(below),
                }
                offset += taken;
            }
            if offset < bytes.len() {
                if index != last {
                    return Err(log_error(
                        dir,
                        "damaged",
                        format!(
                            "{} has an unreadable entry at byte {offset} and later segments follow it; move the log aside to start a new one (mirrors then need `vsamr admin mirror resync`)",
                            path.display()
                        ),
                    ));
                }
                // A crash mid-write: the frame was never acknowledged.
                tracing::warn!(
                    "change log {}: cut off {} bytes of an entry a stop left half written",
                    path.display(),
                    bytes.len() - offset
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| log_error(dir, "cannot open it", e))?;
                file.set_len(offset as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| log_error(dir, "cannot cut off a torn entry", e))?;
            }
            if index == last {
                length = offset as u64;
            }
        }
        let (segment_first, path) = found.pop().expect("at least one segment");
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| log_error(dir, "cannot open it", e))?;
        // Numbers a lost tail may have handed out are never used again.
        next_group = next_group.max(reserved);
        let (committed, _) = watch::channel(next_sequence - 1);
        let disk_bytes = AtomicU64::new(older_bytes + length);
        let log = Arc::new(Self {
            dir: dir.to_path_buf(),
            id: log_id(dir)?,
            segment_bytes: segment_bytes.max(4096),
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                segment_first,
                length,
                older_bytes,
                unwritten: Vec::new(),
                next_group,
                next_sequence,
                waiting: frames,
                synced: length,
                reserved,
                last_group: last_group.clone(),
                rotation_failing: false,
                #[cfg(test)]
                fail_writes: false,
            }),
            disk_bytes,
            committed,
            durable_groups: Mutex::new(last_group),
        });
        Ok((log, waiting.into_values().collect()))
    }

    /// The directory the log is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a group's changes before its backend commits them, and syncs
    /// the log: the group's number, for [`ChangeLog::commit`] or
    /// [`ChangeLog::abort`].
    pub fn prepare(&self, backend: &str, changes: &[Change]) -> std::io::Result<u64> {
        let written = self.write_prepare(backend, changes)?;
        written.sync()?;
        Ok(written.group)
    }

    /// Writes a group's changes without syncing them: the caller syncs
    /// ([`Written::sync`]) before it acknowledges the group, alongside the
    /// backend's own commit (see `[changes] durability`).
    pub fn write_prepare(&self, backend: &str, changes: &[Change]) -> std::io::Result<Written> {
        let mut writer = self.writer.lock_or_stop();
        let group = self.next_group(&mut writer)?;
        let bytes = frame(&prepare_payload(group, backend, changes));
        let before = writer.unwritten.len();
        self.append(&mut writer, &bytes)?;
        // In the file before the caller syncs it; if it cannot be, the
        // group is refused and its entry taken back.
        if let Err(error) = self.write_out(&mut writer) {
            writer.unwritten.truncate(before);
            writer.length -= bytes.len() as u64;
            return Err(error);
        }
        writer.waiting.insert(group, (bytes, changes.len() as u64));
        writer.last_group.insert(backend.to_string(), group);
        Ok(Written {
            group,
            file: writer.file.clone(),
            dir: self.dir.clone(),
        })
    }

    /// The id that tells this log's rows in an outbox from another
    /// server's (made with the log, kept in its `id` file).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A number for a group its backend writes to its outbox, then to
    /// the log with [`ChangeLog::write_committed`] once committed.
    pub fn take_group(&self) -> std::io::Result<u64> {
        let mut writer = self.writer.lock_or_stop();
        self.next_group(&mut writer)
    }

    /// The next group number, reserving a new block durably first when
    /// the reserved ones are used up.
    fn next_group(&self, writer: &mut Writer) -> std::io::Result<u64> {
        let group = writer.next_group;
        if group >= writer.reserved {
            let below = group + RESERVE_BLOCK;
            self.append(writer, &frame(&verdict_payload(RESERVE, below, 0)))?;
            self.write_out(writer)?;
            writer
                .file
                .sync_data()
                .map_err(|e| log_error(&self.dir, "cannot sync", e))?;
            writer.reserved = below;
        }
        writer.next_group += 1;
        Ok(group)
    }

    /// Writes group `group` of `backend`, which it has committed already
    /// (its changes in `encoded`, from [`encode_group`]; `count` of them),
    /// not synced: the backend's outbox holds it until the log is made
    /// durable. Returns the last sequence number it took.
    pub fn write_committed(
        &self,
        group: u64,
        backend: &str,
        encoded: &[u8],
        count: usize,
    ) -> std::io::Result<u64> {
        let mut writer = self.writer.lock_or_stop();
        let first = writer.next_sequence;
        let before = writer.unwritten.len();
        push_frame(&mut writer.unwritten, encoded);
        push_frame(
            &mut writer.unwritten,
            &verdict_payload(COMMIT, group, first),
        );
        let added = writer.unwritten.len() - before;
        if let Err(error) = self.appended(&mut writer, added) {
            writer.unwritten.truncate(before);
            return Err(error);
        }
        writer.next_sequence += count as u64;
        let last_group = writer.last_group.entry(backend.to_string()).or_default();
        *last_group = (*last_group).max(group);
        let last = writer.next_sequence - 1;
        self.rotate_or_later(&mut writer);
        drop(writer);
        self.committed.send_replace(last);
        Ok(last)
    }

    /// Of `groups` (numbers found in an outbox), those the log does not
    /// hold: a power cut took them from its unsynced tail, or a stop came
    /// between the backend's commit and the log's write.
    pub fn missing(&self, groups: &[u64]) -> std::io::Result<Vec<u64>> {
        let mut wanted: std::collections::BTreeSet<u64> = groups.iter().copied().collect();
        let mut writer = self.writer.lock_or_stop();
        self.write_out(&mut writer)?;
        for (_, path) in segments(&self.dir)? {
            let bytes =
                std::fs::read(&path).map_err(|e| log_error(&self.dir, "cannot read it", e))?;
            let mut offset = 0;
            while let Some((payload, taken)) = next_frame(&bytes[offset..]) {
                if let Some(Entry::Prepare(prepared)) = parse(payload) {
                    wanted.remove(&prepared.group);
                }
                offset += taken;
            }
        }
        Ok(wanted.into_iter().collect())
    }

    /// The numbers a group of `backend` still on its way through its
    /// store's COMMIT may have (one a stop left there, in a store that
    /// goes on without vsamrd): above the last group of it the log holds
    /// (a backend's groups are numbered in the order it commits them),
    /// below the numbers reserved so far, and at most four reservation
    /// blocks down (a group whose COMMIT ran while 16,384 others were
    /// numbered is not looked for).
    pub fn unsettled_groups(&self, backend: &str) -> std::ops::Range<u64> {
        let writer = self.writer.lock_or_stop();
        let logged = writer.last_group.get(backend).copied().unwrap_or(0);
        let from = (logged + 1).max(writer.reserved.saturating_sub(4 * RESERVE_BLOCK));
        from..writer.reserved.max(from)
    }

    /// The last group of `backend` known durable in the log: its outbox
    /// rows up to there may go.
    pub fn durable_group(&self, backend: &str) -> u64 {
        self.durable_groups
            .lock_or_stop()
            .get(backend)
            .copied()
            .unwrap_or(0)
    }

    /// The group's backend committed it: its changes take the next
    /// sequence numbers. Returns the last of them.
    pub fn commit(&self, group: u64) -> std::io::Result<u64> {
        let mut writer = self.writer.lock_or_stop();
        let Some((prepared, count)) = writer.waiting.remove(&group) else {
            return Err(log_error(
                &self.dir,
                "commit",
                format!("group {group} was not prepared"),
            ));
        };
        let first = writer.next_sequence;
        let bytes = frame(&verdict_payload(COMMIT, group, first));
        if let Err(error) = self.append(&mut writer, &bytes) {
            writer.waiting.insert(group, (prepared, count));
            return Err(error);
        }
        writer.next_sequence += count;
        let last = writer.next_sequence - 1;
        self.rotate_or_later(&mut writer);
        drop(writer);
        self.committed.send_replace(last);
        Ok(last)
    }

    /// The group's backend did not commit it: its changes never happened.
    pub fn abort(&self, group: u64) -> std::io::Result<()> {
        let mut writer = self.writer.lock_or_stop();
        if writer.waiting.remove(&group).is_none() {
            return Ok(());
        }
        let bytes = frame(&verdict_payload(ABORT, group, 0));
        self.append(&mut writer, &bytes)?;
        self.rotate_or_later(&mut writer);
        Ok(())
    }

    /// Records start-up's verdict on a group found in doubt.
    pub fn settle(&self, group: u64, committed: bool) -> std::io::Result<()> {
        if committed {
            self.commit(group).map(drop)
        } else {
            self.abort(group)
        }?;
        self.make_durable()
    }

    /// Adds an entry's frame after the others (in memory until
    /// [`Self::write_out`]).
    fn append(&self, writer: &mut Writer, bytes: &[u8]) -> std::io::Result<()> {
        let before = writer.unwritten.len();
        writer.unwritten.extend_from_slice(bytes);
        self.appended(writer, bytes.len()).inspect_err(|_| {
            writer.unwritten.truncate(before);
        })
    }

    /// Counts `added` bytes just put in `unwritten`, and writes them out
    /// once enough wait. Fails (the caller takes them back) when too many
    /// wait because writing them keeps failing.
    fn appended(&self, writer: &mut Writer, added: usize) -> std::io::Result<()> {
        writer.length += added as u64;
        if writer.unwritten.len() >= FLUSH_AT
            && let Err(error) = self.write_out(writer)
            && writer.unwritten.len() > MOST_UNWRITTEN
        {
            writer.length -= added as u64;
            return Err(error);
        }
        Ok(())
    }

    /// Writes the entries waiting in memory to the segment's file.
    fn write_out(&self, writer: &mut Writer) -> std::io::Result<()> {
        let written = writer.write_out(&self.dir);
        self.note_size(writer);
        written
    }

    /// Publishes the size of the log's files for [`ChangeLog::disk_bytes`].
    fn note_size(&self, writer: &Writer) {
        self.disk_bytes
            .store(writer.disk_bytes(), Ordering::Relaxed);
    }

    /// Makes every write of entries fail (`on`) as on a full disk, or
    /// succeed again.
    #[cfg(test)]
    pub(crate) fn fail_writes(&self, on: bool) {
        self.writer.lock_or_stop().fail_writes = on;
    }

    /// Writes the entries waiting in memory to the file, so that readers
    /// of the file find them.
    pub fn write_waiting(&self) -> std::io::Result<()> {
        let mut writer = self.writer.lock_or_stop();
        self.write_out(&mut writer)
    }

    /// Rotates after an entry was taken; a rotation that fails (the disk
    /// full) is tried again after the next entry, which waits in memory
    /// meanwhile: the entry is in the log either way, and the caller must
    /// not count it lost.
    fn rotate_or_later(&self, writer: &mut Writer) {
        match self.rotate_if_full(writer) {
            Ok(()) => writer.rotation_failing = false,
            // Said once, not at every entry until it works.
            Err(error) if !writer.rotation_failing => {
                writer.rotation_failing = true;
                tracing::warn!(
                    "{error}: the change log's segment is not rotated yet; its entries wait in memory until it is"
                );
            }
            Err(_) => {}
        }
    }

    /// Starts a new segment once the current one passed its size, with
    /// the prepare entries still waiting for their verdict.
    fn rotate_if_full(&self, writer: &mut Writer) -> std::io::Result<()> {
        if writer.length < self.segment_bytes {
            return Ok(());
        }
        self.write_out(writer)?;
        writer
            .file
            .sync_data()
            .map_err(|e| log_error(&self.dir, "cannot sync", e))?;
        let first = writer.next_sequence;
        let path = self.dir.join(segment_name(first));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| log_error(&self.dir, "cannot start a segment", e))?;
        // The reservation goes on, for a log whose older segments are
        // removed.
        let reserve = frame(&verdict_payload(RESERVE, writer.reserved, 0));
        let mut length = reserve.len() as u64;
        let started = file
            .write_all(&reserve)
            .and_then(|()| {
                for (bytes, _) in writer.waiting.values() {
                    file.write_all(bytes)?;
                    length += bytes.len() as u64;
                }
                file.sync_data()
            })
            .and_then(|()| sync_directory(&self.dir));
        if let Err(error) = started {
            // A segment left half made would be read as the log's last
            // one at the next start, before the entries written since.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(log_error(&self.dir, "cannot start a segment", error));
        }
        writer.file = Arc::new(file);
        writer.segment_first = first;
        writer.older_bytes += writer.length;
        writer.length = length;
        writer.synced = length;
        self.note_size(writer);
        Ok(())
    }

    /// Syncs what was appended since the last sync: a consumer calls it
    /// before it records how far it got, so that no position it records
    /// names a commit a power cut could take back.
    pub fn make_durable(&self) -> std::io::Result<()> {
        let (file, length, groups) = {
            let mut writer = self.writer.lock_or_stop();
            self.write_out(&mut writer)?;
            if writer.synced >= writer.length {
                let groups = writer.last_group.clone();
                drop(writer);
                *self.durable_groups.lock_or_stop() = groups;
                return Ok(());
            }
            (
                writer.file.clone(),
                writer.length,
                writer.last_group.clone(),
            )
        };
        file.sync_data()
            .map_err(|e| log_error(&self.dir, "cannot sync", e))?;
        let mut writer = self.writer.lock_or_stop();
        if Arc::ptr_eq(&writer.file, &file) {
            writer.synced = writer.synced.max(length);
        }
        drop(writer);
        // A rotation meanwhile synced the old segment whole: what was
        // written before the sync began is durable either way.
        let mut durable = self.durable_groups.lock_or_stop();
        for (backend, group) in groups {
            let known = durable.entry(backend).or_default();
            *known = (*known).max(group);
        }
        Ok(())
    }

    /// Makes the log durable now unless it holds every group of `backend`
    /// up to `group - slots` durably already: an outbox slot of a ring of
    /// `slots` is about to take `group` over the group before it there,
    /// and that one must not be lost with the log's unsynced tail.
    pub fn make_durable_before_slot(
        &self,
        backend: &str,
        group: u64,
        slots: u64,
    ) -> std::io::Result<()> {
        // The slot's last group is at most `group - slots`.
        if group <= self.durable_group(backend) + slots {
            return Ok(());
        }
        self.make_durable()
    }

    /// The sequence number of the last committed change (0 before any).
    pub fn last_committed(&self) -> u64 {
        *self.committed.borrow()
    }

    /// Wakes on every commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// A reader of the committed changes after sequence number `after`.
    pub fn reader(self: &Arc<Self>, after: u64) -> LogReader {
        LogReader {
            log: self.clone(),
            after,
            segment: None,
            groups: HashMap::new(),
        }
    }

    /// Removes the segments holding only changes up to `sequence` (every
    /// consumer has them). The current segment always stays.
    pub fn retain_after(&self, sequence: u64) -> std::io::Result<()> {
        let current = self.writer.lock_or_stop().segment_first;
        let found = segments(&self.dir)?;
        for pair in found.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            // A segment commits only numbers below its successor's first.
            if *next_first <= sequence + 1 && *next_first <= current {
                let bytes = std::fs::metadata(path)?.len();
                std::fs::remove_file(path)?;
                let mut writer = self.writer.lock_or_stop();
                writer.older_bytes = writer.older_bytes.saturating_sub(bytes);
                self.note_size(&writer);
            }
        }
        Ok(())
    }

    /// Bytes the log holds on disk (entries still in memory left out).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for ChangeLog {
    /// A log closed by a stop leaves its entries in its file (those a
    /// kill leaves in memory are taken back from the outboxes).
    fn drop(&mut self) {
        let writer = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = writer.write_out(&self.dir) {
            tracing::warn!(
                "{error}: its last entries are taken back from the backends' outboxes at the next start"
            );
        }
    }
}

/// A group's prepare entry, written and not yet synced.
pub struct Written {
    /// The group's number.
    pub group: u64,
    file: Arc<File>,
    dir: PathBuf,
}

impl Written {
    /// Makes the entry durable (and whatever other backends appended
    /// before it: one sync serves them all).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file
            .sync_data()
            .map_err(|e| log_error(&self.dir, "cannot sync", e))
    }
}
