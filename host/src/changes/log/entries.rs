//! The log's entries and their frames: a prepare entry holds a group's
//! changes, a commit entry gives them sequence numbers, an abort entry drops
//! them, a reserve entry reserves group numbers; each is framed with its
//! length and CRC-32, so that a torn or damaged frame is seen.

use super::super::change::{self, Change};

pub(super) const PREPARE: u8 = 1;
pub(super) const COMMIT: u8 = 2;
pub(super) const ABORT: u8 = 3;
pub(super) const RESERVE: u8 = 4;

/// Bytes before a frame's payload: its length and CRC.
pub(super) const FRAME_HEAD: usize = 8;

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

pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEAD + payload.len());
    push_frame(&mut out, payload);
    out
}

/// Appends `payload`'s frame to `out`.
pub(super) fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The next whole frame's payload in `bytes`, and the bytes it took;
/// `None` for a frame not (yet) whole or damaged.
pub(super) fn next_frame(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let head = bytes.get(..FRAME_HEAD)?;
    let length = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    let payload = bytes.get(FRAME_HEAD..FRAME_HEAD + length)?;
    (crc32fast::hash(payload) == crc).then_some((payload, FRAME_HEAD + length))
}

pub(super) fn prepare_payload(group: u64, backend: &str, changes: &[Change]) -> Vec<u8> {
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

pub(super) fn verdict_payload(kind: u8, group: u64, first_sequence: u64) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&first_sequence.to_le_bytes());
    out
}

/// One entry of the log, read back.
pub(super) enum Entry {
    Prepare(Prepared),
    Commit { group: u64, first_sequence: u64 },
    Abort { group: u64 },
    Reserve { below: u64 },
}

pub(super) fn read_u64(input: &mut &[u8]) -> Option<u64> {
    let (head, tail) = input.split_at_checked(8)?;
    *input = tail;
    Some(u64::from_le_bytes(head.try_into().ok()?))
}

pub(super) fn parse(payload: &[u8]) -> Option<Entry> {
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
