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
//! reader wants them, the log is synced, or [`FLUSH_AT`] bytes wait (a
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

use super::change::{self, Change};
use crate::durable::sync_directory;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

const PREPARE: u8 = 1;
const COMMIT: u8 = 2;
const ABORT: u8 = 3;
const RESERVE: u8 = 4;

/// Group numbers reserved by one durable entry.
const RESERVE_BLOCK: u64 = 4096;

/// Bytes before a frame's payload: its length and CRC.
const FRAME_HEAD: usize = 8;

/// Bytes of entries that may wait in memory before they are written.
const FLUSH_AT: usize = 64 * 1024;

/// Bytes of entries that may wait in memory while writing them fails: past
/// this, the log refuses groups (as it refuses them when a write fails).
const MOST_UNWRITTEN: usize = 64 * 1024 * 1024;

/// A group of changes prepared but not yet committed or aborted.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Its number in the log.
    pub group: u64,
    /// The backend whose sync commits it.
    pub backend: String,
    /// Its changes, without sequence numbers yet.
    pub changes: Vec<Change>,
}

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

fn segment_name(first: u64) -> String {
    format!("{first:020}.log")
}

/// The segments in `dir`, by first sequence number.
fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name.strip_suffix(".log")
            && number.len() == 20
            && let Ok(first) = number.parse::<u64>()
        {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEAD + payload.len());
    push_frame(&mut out, payload);
    out
}

/// Appends `payload`'s frame to `out`.
fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The next whole frame's payload in `bytes`, and the bytes it took;
/// `None` for a frame not (yet) whole or damaged.
fn next_frame(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let head = bytes.get(..FRAME_HEAD)?;
    let length = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    let payload = bytes.get(FRAME_HEAD..FRAME_HEAD + length)?;
    (crc32fast::hash(payload) == crc).then_some((payload, FRAME_HEAD + length))
}

fn prepare_payload(group: u64, backend: &str, changes: &[Change]) -> Vec<u8> {
    let mut out = vec![PREPARE];
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&(backend.len() as u32).to_le_bytes());
    out.extend_from_slice(backend.as_bytes());
    out.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    for change in changes {
        change::encode(change, &mut out);
    }
    out
}

/// A group's changes as the log and the outbox hold them.
pub fn encode_group(group: u64, backend: &str, changes: &[Change]) -> Vec<u8> {
    prepare_payload(group, backend, changes)
}

/// A group's changes read back from [`encode_group`]'s bytes.
pub fn decode_group(bytes: &[u8]) -> Option<Prepared> {
    match parse(bytes)? {
        Entry::Prepare(prepared) => Some(prepared),
        _ => None,
    }
}

fn verdict_payload(kind: u8, group: u64, first_sequence: u64) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&first_sequence.to_le_bytes());
    out
}

/// One entry of the log, read back.
enum Entry {
    Prepare(Prepared),
    Commit { group: u64, first_sequence: u64 },
    Abort { group: u64 },
    Reserve { below: u64 },
}

fn read_u64(input: &mut &[u8]) -> Option<u64> {
    let (head, tail) = input.split_at_checked(8)?;
    *input = tail;
    Some(u64::from_le_bytes(head.try_into().ok()?))
}

fn parse(payload: &[u8]) -> Option<Entry> {
    let (&kind, mut input) = payload.split_first()?;
    let group = read_u64(&mut input)?;
    match kind {
        PREPARE => {
            let (length, rest) = input.split_at_checked(4)?;
            let length = u32::from_le_bytes(length.try_into().ok()?) as usize;
            let (backend, rest) = rest.split_at_checked(length)?;
            let backend = String::from_utf8(backend.to_vec()).ok()?;
            let (count, mut rest) = rest.split_at_checked(4)?;
            let count = u32::from_le_bytes(count.try_into().ok()?);
            let mut changes = Vec::with_capacity(count.min(1 << 16) as usize);
            for _ in 0..count {
                changes.push(change::decode(&mut rest)?);
            }
            rest.is_empty().then_some(Entry::Prepare(Prepared {
                group,
                backend,
                changes,
            }))
        }
        COMMIT => Some(Entry::Commit {
            group,
            first_sequence: read_u64(&mut input)?,
        }),
        ABORT => Some(Entry::Abort { group }),
        RESERVE => Some(Entry::Reserve { below: group }),
        _ => None,
    }
}

impl ChangeLog {
    /// Opens (or makes) the log in `dir`: reads it to its end, cuts off a
    /// torn last frame, and returns the groups in doubt, which must be
    /// settled ([`ChangeLog::settle`]) before the log is read or written.
    pub fn open(dir: &Path, segment_bytes: u64) -> std::io::Result<(Arc<Self>, Vec<Prepared>)> {
        std::fs::create_dir_all(dir).map_err(|e| log_error(dir, "cannot make it", e))?;
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
        let mut writer = self.writer.lock().unwrap();
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
        let mut writer = self.writer.lock().unwrap();
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
        let mut writer = self.writer.lock().unwrap();
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
        let mut writer = self.writer.lock().unwrap();
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
        let writer = self.writer.lock().unwrap();
        let logged = writer.last_group.get(backend).copied().unwrap_or(0);
        let from = (logged + 1).max(writer.reserved.saturating_sub(4 * RESERVE_BLOCK));
        from..writer.reserved.max(from)
    }

    /// The last group of `backend` known durable in the log: its outbox
    /// rows up to there may go.
    pub fn durable_group(&self, backend: &str) -> u64 {
        self.durable_groups
            .lock()
            .unwrap()
            .get(backend)
            .copied()
            .unwrap_or(0)
    }

    /// The group's backend committed it: its changes take the next
    /// sequence numbers. Returns the last of them.
    pub fn commit(&self, group: u64) -> std::io::Result<u64> {
        let mut writer = self.writer.lock().unwrap();
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
        let mut writer = self.writer.lock().unwrap();
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
        self.writer.lock().unwrap().fail_writes = on;
    }

    /// Writes the entries waiting in memory to the file, so that readers
    /// of the file find them.
    pub fn write_waiting(&self) -> std::io::Result<()> {
        let mut writer = self.writer.lock().unwrap();
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
            let mut writer = self.writer.lock().unwrap();
            self.write_out(&mut writer)?;
            if writer.synced >= writer.length {
                let groups = writer.last_group.clone();
                drop(writer);
                *self.durable_groups.lock().unwrap() = groups;
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
        let mut writer = self.writer.lock().unwrap();
        if Arc::ptr_eq(&writer.file, &file) {
            writer.synced = writer.synced.max(length);
        }
        drop(writer);
        // A rotation meanwhile synced the old segment whole: what was
        // written before the sync began is durable either way.
        let mut durable = self.durable_groups.lock().unwrap();
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
        let current = self.writer.lock().unwrap().segment_first;
        let found = segments(&self.dir)?;
        for pair in found.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            // A segment commits only numbers below its successor's first.
            if *next_first <= sequence + 1 && *next_first <= current {
                let bytes = std::fs::metadata(path)?.len();
                std::fs::remove_file(path)?;
                let mut writer = self.writer.lock().unwrap();
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

/// Reads committed changes in commit order, from any sequence number the
/// log still holds; follows the log as it grows.
pub struct LogReader {
    log: Arc<ChangeLog>,
    /// The last sequence number returned.
    after: u64,
    /// The segment being read: its first sequence number, path and the
    /// offset of the next frame.
    segment: Option<(u64, PathBuf, u64)>,
    /// Prepared groups seen, by number.
    groups: HashMap<u64, Vec<Change>>,
}

impl LogReader {
    /// The last sequence number returned (or the starting point).
    pub fn position(&self) -> u64 {
        self.after
    }

    /// The committed changes after the last returned, whole groups (a
    /// unit of work is never split) until `max` is reached; none when the
    /// reader is at the log's end. Fails if the changes wanted were
    /// removed from the log (a consumer that fell too far behind).
    pub fn next_batch(&mut self, max: usize) -> std::io::Result<Vec<Change>> {
        // What cannot be written now is read once it can.
        if let Err(error) = self.log.write_waiting() {
            tracing::warn!("{error}: its last changes are read once they can be written");
        }
        let mut out = Vec::new();
        loop {
            let Some((first, path, offset)) = self.segment.clone() else {
                let found = segments(&self.log.dir)?;
                let wanted = self.after + 1;
                let Some((first, path)) = found.iter().rev().find(|(f, _)| *f <= wanted).cloned()
                else {
                    return Err(log_error(
                        &self.log.dir,
                        "read",
                        format!(
                            "the changes after sequence {} are no longer in the log (the oldest segment starts at {})",
                            self.after,
                            found.first().map_or(0, |(f, _)| *f)
                        ),
                    ));
                };
                self.groups.clear();
                self.segment = Some((first, path, 0));
                continue;
            };
            let bytes = read_frames_at(&path, offset)?;
            let mut used = 0;
            while out.len() < max {
                let Some((payload, taken)) = next_frame(&bytes[used..]) else {
                    break;
                };
                let Some(entry) = parse(payload) else { break };
                used += taken;
                match entry {
                    Entry::Prepare(prepared) => {
                        self.groups
                            .entry(prepared.group)
                            .or_insert(prepared.changes);
                    }
                    Entry::Commit {
                        group,
                        first_sequence,
                    } => {
                        let Some(changes) = self.groups.remove(&group) else {
                            return Err(log_error(
                                &self.log.dir,
                                "damaged",
                                format!(
                                    "{} commits group {group}, whose changes are in no segment before it",
                                    path.display()
                                ),
                            ));
                        };
                        for (index, mut change) in changes.into_iter().enumerate() {
                            change.sequence = first_sequence + index as u64;
                            if change.sequence > self.after {
                                out.push(change);
                            }
                        }
                    }
                    Entry::Abort { group } => {
                        self.groups.remove(&group);
                    }
                    Entry::Reserve { .. } => {}
                }
            }
            self.segment = Some((first, path.clone(), offset + used as u64));
            if let Some(last) = out.last() {
                self.after = last.sequence;
            }
            if out.len() >= max {
                return Ok(out);
            }
            // At the end of this segment: move on if a later one exists
            // (this one is then complete: read it once more to be sure).
            let later = segments(&self.log.dir)?
                .into_iter()
                .find(|(f, _)| *f > first);
            let length = std::fs::metadata(&path)?.len();
            match later {
                _ if length > offset + used as u64 && used > 0 => continue,
                Some(_) if length > offset + used as u64 => {
                    return Err(log_error(
                        &self.log.dir,
                        "damaged",
                        format!(
                            "{} has an unreadable entry at byte {} and later segments follow it",
                            path.display(),
                            offset + used as u64
                        ),
                    ));
                }
                Some((next, next_path)) => self.segment = Some((next, next_path, 0)),
                None => return Ok(out),
            }
        }
    }
}

/// How much of a segment a reader takes at once.
const READ_CHUNK: usize = 1 << 20;

/// The bytes of `path` from `offset`: a chunk, or more if the frame there
/// is larger than a chunk.
fn read_frames_at(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(READ_CHUNK as u64)
        .read_to_end(&mut bytes)?;
    if let Some(head) = bytes.get(..4) {
        let whole = FRAME_HEAD + u32::from_le_bytes(head.try_into().expect("4 bytes")) as usize;
        if whole > bytes.len() && bytes.len() == READ_CHUNK {
            file.take((whole - bytes.len()) as u64)
                .read_to_end(&mut bytes)?;
        }
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::change::Operation;
    use super::*;
    use vsam_plugin_sdk::{Dataset, Organization};

    /// A change of dataset `A.B` under `key`.
    pub(crate) fn change(key: &str, operation: Operation) -> Change {
        Change {
            sequence: 0,
            time_ms: 1,
            dataset: Dataset {
                name: "A.B".into(),
                organization: Organization::Ksds,
                key_offset: 0,
                key_length: 4,
                max_record_length: 20,
                min_record_length: 1,
                codepage: "cp037".into(),
            },
            record: matches!(operation, Operation::Insert).then(|| key.as_bytes().to_vec()),
            operation,
            key: key.as_bytes().to_vec(),
        }
    }

    fn keys(changes: &[Change]) -> Vec<(u64, String)> {
        changes
            .iter()
            .map(|c| (c.sequence, String::from_utf8_lossy(&c.key).into_owned()))
            .collect()
    }

    #[test]
    fn committed_groups_read_back_in_commit_order_and_aborted_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let (log, doubt) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        assert!(doubt.is_empty());
        let a = log
            .prepare(
                "b1",
                &[
                    change("K1", Operation::Insert),
                    change("K2", Operation::Insert),
                ],
            )
            .unwrap();
        let b = log
            .prepare("b2", &[change("K3", Operation::Erase)])
            .unwrap();
        let c = log
            .prepare("b1", &[change("K4", Operation::Insert)])
            .unwrap();
        // Committed in another order than prepared.
        assert_eq!(log.commit(b).unwrap(), 1);
        log.abort(c).unwrap();
        assert_eq!(log.commit(a).unwrap(), 3);
        assert_eq!(log.last_committed(), 3);
        let mut reader = log.reader(0);
        let read = reader.next_batch(100).unwrap();
        assert_eq!(
            keys(&read),
            vec![(1, "K3".into()), (2, "K1".into()), (3, "K2".into())]
        );
        assert!(reader.next_batch(100).unwrap().is_empty());
        // From the middle, and a batch at a time.
        // A batch holds whole groups.
        let mut reader = log.reader(1);
        assert_eq!(
            keys(&reader.next_batch(1).unwrap()),
            vec![(2, "K1".into()), (3, "K2".into())]
        );
        let d = log
            .prepare("b2", &[change("K5", Operation::Insert)])
            .unwrap();
        log.commit(d).unwrap();
        assert_eq!(keys(&reader.next_batch(9).unwrap()), vec![(4, "K5".into())]);
    }

    #[test]
    fn groups_written_after_their_commit_read_back_and_a_lost_tail_never_reuses_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let id = log.id().to_string();
        assert_eq!(id.len(), 16);
        let first = log.take_group().unwrap();
        let encoded = encode_group(first, "sql", &[change("K1", Operation::Insert)]);
        assert_eq!(log.write_committed(first, "sql", &encoded, 1).unwrap(), 1);
        let second = log.take_group().unwrap();
        let lost = encode_group(second, "sql", &[change("K2", Operation::Insert)]);
        assert_eq!(
            keys(&log.reader(0).next_batch(10).unwrap()),
            vec![(1, "K1".into())]
        );
        assert_eq!(log.missing(&[first, second]).unwrap(), vec![second]);
        log.make_durable().unwrap();
        assert_eq!(log.durable_group("sql"), first);
        assert_eq!(log.durable_group("other"), 0);
        drop(log);
        // The second group never reached the log (a stop after the
        // backend's commit): it is written from the outbox after a start,
        // and the numbers given out meanwhile are not handed out again.
        let (log, doubt) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        assert!(doubt.is_empty());
        assert_eq!(log.id(), id);
        assert_eq!(log.durable_group("sql"), first);
        assert!(log.take_group().unwrap() > second);
        assert_eq!(log.missing(&[first, second]).unwrap(), vec![second]);
        log.write_committed(second, "sql", &lost, 1).unwrap();
        assert!(log.missing(&[first, second]).unwrap().is_empty());
        assert_eq!(
            keys(&log.reader(0).next_batch(10).unwrap()),
            vec![(1, "K1".into()), (2, "K2".into())]
        );
        assert_eq!(decode_group(&lost).unwrap().group, second);
    }

    /// Committed groups wait in memory: a reader finds them (they are
    /// written for it), a kill loses them (the outbox has them, and the
    /// log reopened names them missing), a stop writes them.
    #[test]
    fn committed_groups_wait_in_memory_until_a_reader_a_sync_or_a_stop_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let mut groups = Vec::new();
        for key in ["K1", "K2"] {
            let group = log.take_group().unwrap();
            let encoded = encode_group(group, "sql", &[change(key, Operation::Insert)]);
            log.write_committed(group, "sql", &encoded, 1).unwrap();
            groups.push(group);
        }
        let on_disk = |dir: &Path| -> u64 {
            segments(dir)
                .unwrap()
                .iter()
                .map(|(_, path)| std::fs::metadata(path).unwrap().len())
                .sum()
        };
        let reserved = on_disk(dir.path());
        // A kill now: the log reopened from its files lacks both groups.
        let copy = tempfile::tempdir().unwrap();
        for (_, path) in segments(dir.path()).unwrap() {
            std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
        std::fs::copy(dir.path().join("id"), copy.path().join("id")).unwrap();
        let (killed, _) = ChangeLog::open(copy.path(), 1 << 20).unwrap();
        assert_eq!(killed.missing(&groups).unwrap(), groups);
        assert!(killed.take_group().unwrap() > groups[1]);
        // A reader has them written first.
        assert_eq!(
            keys(&log.reader(0).next_batch(10).unwrap()),
            vec![(1, "K1".into()), (2, "K2".into())]
        );
        assert!(on_disk(dir.path()) > reserved);
        // One more, written by the stop.
        let group = log.take_group().unwrap();
        let encoded = encode_group(group, "sql", &[change("K3", Operation::Insert)]);
        log.write_committed(group, "sql", &encoded, 1).unwrap();
        drop(log);
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        assert!(
            log.missing(&[groups[0], groups[1], group])
                .unwrap()
                .is_empty()
        );
        assert_eq!(log.last_committed(), 3);
    }

    #[test]
    fn reserved_group_numbers_survive_a_log_that_lost_every_entry_after_the_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let first = log.take_group().unwrap();
        let reserved_length = std::fs::metadata(dir.path().join(segment_name(1)))
            .unwrap()
            .len();
        for _ in 0..10 {
            let group = log.take_group().unwrap();
            let encoded = encode_group(group, "sql", &[change("K", Operation::Insert)]);
            log.write_committed(group, "sql", &encoded, 1).unwrap();
        }
        let last = log.take_group().unwrap();
        drop(log);
        // A power cut keeps only what was synced: the reservation.
        let segment = dir.path().join(segment_name(1));
        let file = OpenOptions::new().write(true).open(&segment).unwrap();
        file.set_len(reserved_length).unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let next = log.take_group().unwrap();
        assert!(
            next > last,
            "{next} was handed out before ({first}..={last})"
        );
        assert_eq!(log.last_committed(), 0);
    }

    #[test]
    fn a_slot_is_written_again_only_once_the_log_holds_the_group_before_it_durably() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let commit = |log: &ChangeLog| {
            let group = log.take_group().unwrap();
            let encoded = encode_group(group, "sql", &[change("K", Operation::Insert)]);
            log.write_committed(group, "sql", &encoded, 1).unwrap();
            group
        };
        let first = commit(&log);
        assert!(log.durable_group("sql") < first, "written, not synced");
        // A ring of 4 slots: the group 4 after `first` takes its slot.
        log.make_durable_before_slot("sql", first + 4, 4).unwrap();
        assert_eq!(log.durable_group("sql"), first);
        let second = commit(&log);
        let third = commit(&log);
        // `first` is durable: its slot may take the next group there.
        log.make_durable_before_slot("sql", first + 4, 4).unwrap();
        assert_eq!(log.durable_group("sql"), first, "synced for nothing");
        // `second` is not.
        log.make_durable_before_slot("sql", second + 4, 4).unwrap();
        assert_eq!(
            log.durable_group("sql"),
            third,
            "synced through the last group written"
        );
    }

    #[test]
    fn a_group_a_stop_left_committing_is_among_the_unsettled_numbers_of_its_backend() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let mut logged = 0;
        for _ in 0..5 {
            logged = log.take_group().unwrap();
            let encoded = encode_group(logged, "pg", &[change("K", Operation::Insert)]);
            log.write_committed(logged, "pg", &encoded, 1).unwrap();
        }
        // Taken by another backend meanwhile, then by `pg` for a COMMIT
        // the stop interrupts: the log never hears of it.
        log.take_group().unwrap();
        let running = log.take_group().unwrap();
        drop(log);
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let unsettled = log.unsettled_groups("pg");
        assert_eq!(unsettled.start, logged + 1, "logged groups are settled");
        assert!(unsettled.contains(&running), "{unsettled:?}");
        // What start-up awaits ends below what this run hands out.
        let next = log.take_group().unwrap();
        assert!(next >= unsettled.end, "{next} in {unsettled:?}");
        // A backend the log never heard of: the last four blocks.
        let other = log.unsettled_groups("other");
        assert_eq!(other.start, 1);
        assert!(other.contains(&running));
    }

    #[test]
    fn a_reopened_log_goes_on_numbering_and_names_the_groups_in_doubt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
            let a = log
                .prepare("b1", &[change("K1", Operation::Insert)])
                .unwrap();
            log.commit(a).unwrap();
            log.prepare("b2", &[change("K2", Operation::Insert)])
                .unwrap();
        }
        // A torn frame at the end, as a kill mid-write leaves.
        let segment = segments(dir.path()).unwrap().pop().unwrap().1;
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let (log, doubt) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(doubt.len(), 1);
        assert_eq!(doubt[0].backend, "b2");
        assert_eq!(keys(&doubt[0].changes), vec![(0, "K2".into())]);
        log.settle(doubt[0].group, true).unwrap();
        let e = log
            .prepare("b1", &[change("K3", Operation::Insert)])
            .unwrap();
        assert!(e > doubt[0].group, "group numbers are never reused");
        log.commit(e).unwrap();
        let read = log.reader(0).next_batch(10).unwrap();
        assert_eq!(
            keys(&read),
            vec![(1, "K1".into()), (2, "K2".into()), (3, "K3".into())]
        );
    }

    #[test]
    fn a_write_the_full_disk_cut_short_leaves_no_hole_in_a_rotated_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
        let commit = |key: &str, size: usize| {
            let group = log.take_group().unwrap();
            let mut insert = change(key, Operation::Insert);
            insert.record = Some(vec![b'x'; size]);
            let encoded = encode_group(group, "b", &[insert]);
            log.write_committed(group, "b", &encoded, 1).unwrap();
        };
        // Rotated: the current segment is one the log started.
        for i in 0..20 {
            commit(&format!("A{i:02}"), 400);
        }
        assert!(segments(dir.path()).unwrap().len() > 1);
        // Enough waiting to be written out, on a disk that fills halfway.
        log.fail_writes(true);
        commit("B00", 70_000);
        log.fail_writes(false);
        commit("B01", 10);
        log.make_durable().unwrap();
        let read = log.reader(0).next_batch(100).unwrap();
        let keys: Vec<_> = read.iter().map(|c| c.key.clone()).collect();
        assert_eq!(keys.len(), 22, "{:?}", keys.last());
        assert_eq!(keys[20..], [b"B00".to_vec(), b"B01".to_vec()]);
    }

    #[test]
    fn a_rotation_the_full_disk_refuses_keeps_the_entries_and_is_made_once_it_has_room() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
        let first = log.take_group().unwrap();
        let encoded = encode_group(first, "b", &[change("K0", Operation::Insert)]);
        log.write_committed(first, "b", &encoded, 1).unwrap();
        log.fail_writes(true);
        // Past the segment's size on a full disk: each group is taken all
        // the same, and waits in memory.
        for i in 1..=60 {
            let group = log.take_group().unwrap();
            let key = format!("K{i:02}");
            let encoded = encode_group(group, "b", &[change(&key, Operation::Insert)]);
            assert_eq!(log.write_committed(group, "b", &encoded, 1).unwrap(), i + 1);
        }
        assert_eq!(
            segments(dir.path()).unwrap().len(),
            1,
            "no segment was started"
        );
        log.fail_writes(false);
        let group = log.take_group().unwrap();
        let encoded = encode_group(group, "b", &[change("K61", Operation::Insert)]);
        log.write_committed(group, "b", &encoded, 1).unwrap();
        assert_eq!(
            segments(dir.path()).unwrap().len(),
            2,
            "the rotation was made"
        );
        let read = log.reader(0).next_batch(100).unwrap();
        assert_eq!(read.len(), 62);
        assert!(read.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
    }

    #[test]
    fn segments_rotate_carry_waiting_groups_and_are_removed_once_passed() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
        // A group that waits across many rotations.
        let slow = log
            .prepare("slow", &[change("S0", Operation::Insert)])
            .unwrap();
        for i in 0..200 {
            let g = log
                .prepare("b", &[change(&format!("K{i:03}"), Operation::Insert)])
                .unwrap();
            log.commit(g).unwrap();
        }
        assert!(segments(dir.path()).unwrap().len() > 3, "the log rotated");
        log.commit(slow).unwrap();
        let mut reader = log.reader(0);
        let read = reader.next_batch(1000).unwrap();
        assert_eq!(read.len(), 201);
        assert_eq!(read.last().unwrap().key, b"S0");
        assert!(read.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
        // A reader starting late finds the waiting group in its segment.
        let late = log.reader(200).next_batch(10).unwrap();
        assert_eq!(keys(&late), vec![(201, "S0".into())]);
        let before = segments(dir.path()).unwrap().len();
        log.retain_after(150).unwrap();
        let after = segments(dir.path()).unwrap();
        assert!(after.len() < before);
        assert!(after[0].0 <= 151, "sequence 151 is still held");
        assert_eq!(log.reader(150).next_batch(1000).unwrap().len(), 51);
        let gone = log.reader(0).next_batch(10).unwrap_err().to_string();
        assert!(gone.contains("no longer in the log"), "{gone}");
    }

    /// The bytes of the log's segment files, listed.
    fn files_bytes(dir: &Path) -> u64 {
        segments(dir)
            .unwrap()
            .iter()
            .map(|(_, path)| std::fs::metadata(path).unwrap().len())
            .sum()
    }

    #[test]
    fn the_size_the_status_shows_follows_rotations_removals_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
        for i in 0..200 {
            let g = log
                .prepare("b", &[change(&format!("K{i:03}"), Operation::Insert)])
                .unwrap();
            log.commit(g).unwrap();
        }
        log.make_durable().unwrap();
        assert!(segments(dir.path()).unwrap().len() > 3, "the log rotated");
        assert_eq!(log.disk_bytes(), files_bytes(dir.path()));
        log.retain_after(150).unwrap();
        assert_eq!(log.disk_bytes(), files_bytes(dir.path()));
        // A write stuck on a stalled disk holds the writer's lock: the
        // status still answers.
        let held = log.writer.lock().unwrap();
        let (sent, answer) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| sent.send(log.disk_bytes()).unwrap());
            let size = answer.recv_timeout(std::time::Duration::from_secs(5));
            assert_eq!(size, Ok(files_bytes(dir.path())), "answered under the lock");
            drop(held);
        });
        let before = log.disk_bytes();
        drop(log);
        let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
        assert_eq!(log.disk_bytes(), files_bytes(dir.path()));
        assert_eq!(log.disk_bytes(), before);
    }
}
