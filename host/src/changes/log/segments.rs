//! The log's segment files: their names, the list of them in the log's
//! directory, and reading frames from one.

use super::entries::FRAME_HEAD;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub(super) fn segment_name(first: u64) -> String {
    format!("{first:020}.log")
}

/// The segments in `dir`, by first sequence number.
pub(super) fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
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

/// How much of a segment a reader takes at once.
const READ_CHUNK: usize = 1 << 20;

/// The bytes of `path` from `offset`: a chunk, or more if the frame there
/// is larger than a chunk.
pub(super) fn read_frames_at(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
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
