//! Reading the log: committed changes in commit order, from any sequence
//! number the log still holds.

use super::entries::{Entry, next_frame, parse};
use super::segments::{read_frames_at, segments};
use super::{ChangeLog, log_error};
use crate::changes::change::Change;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Reads committed changes in commit order, from any sequence number the
/// log still holds; follows the log as it grows.
pub struct LogReader {
    pub(super) log: Arc<ChangeLog>,
    /// The last sequence number returned.
    pub(super) after: u64,
    /// The segment being read: its first sequence number, path and the
    /// offset of the next frame.
    pub(super) segment: Option<(u64, PathBuf, u64)>,
    /// Prepared groups seen, by number.
    pub(super) groups: HashMap<u64, Vec<Change>>,
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
                let found = segments(&self.log.dir)
                    .map_err(|error| log_error(&self.log.dir, "listing its segments", error))?;
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
            let bytes = read_frames_at(&path, offset).map_err(|error| {
                log_error(&self.log.dir, &format!("reading {}", path.display()), error)
            })?;
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
