//! Units of work over several datasets.
//!
//! Each dataset's journal closes a group's rows with a commit row, which
//! keeps a unit whole within one dataset. A unit that changed several
//! datasets (a base and its alternate indexes, or datasets a program
//! changes together) writes one commit row per journal, and a crash
//! between two of them would leave it committed in some datasets only.
//! So before writing them the store records, in `unit.undo`, synced, each
//! journal's length before the unit and where its commit row will end.
//!
//! After a crash the record is read before any dataset is opened: if
//! every journal holds its commit row, the unit was stored whole and
//! stays; otherwise each listed journal is read only up to its length
//! before the unit (by every instance, even one that only looks), and the
//! first instance that writes cuts them back and clears the record. The
//! record is cleared, synced, before a listed journal may shrink (the CSV
//! rewritten, the dataset deleted or reset), so that a record still on
//! disk never names a journal that has changed under it. The file's name
//! is lower case and ends in `.undo`: no dataset's file has that name.

use crate::table::COMMIT_ROW;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use vsam_plugin_sdk::storage::{store_error, write_at};
use vsam_plugin_sdk::{StoreError, StoreResult, log};

/// The record's file in the store's directory.
const FILE: &str = "unit.undo";
/// The record's first line (its format's version).
const HEADER: &str = "VSAMUNDO1\n";
/// The record's last line: a record without it was never completed, and
/// no commit row of its unit was written.
const END: &str = "END\n";

/// One journal of a unit over several datasets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    /// The journal's file name in the directory.
    pub journal: String,
    /// Its length before the unit (after the last committed one).
    pub before: u64,
    /// Where the unit's commit row ends in it.
    pub after: u64,
}

/// The record as text.
fn text(spots: &[Spot]) -> String {
    let mut text = String::from(HEADER);
    for spot in spots {
        text.push_str(&format!(
            "{} {} {}\n",
            spot.before, spot.after, spot.journal
        ));
    }
    text.push_str(END);
    text
}

/// The spots of a complete record; `None` for an empty or incomplete one.
fn parse(text: &str) -> Option<Vec<Spot>> {
    let body = text.strip_prefix(HEADER)?.strip_suffix(END)?;
    body.lines()
        .map(|line| {
            let mut fields = line.splitn(3, ' ');
            Some(Spot {
                before: fields.next()?.parse().ok()?,
                after: fields.next()?.parse().ok()?,
                journal: fields.next()?.to_string(),
            })
        })
        .collect()
}

fn io_error(action: &str, error: io::Error) -> StoreError {
    store_error(Path::new(FILE), action, error)
}

/// A unit that was under way when the store last stopped, as read before
/// any dataset was opened.
#[derive(Debug, Default)]
pub struct Leftover {
    /// The journals to read only up to their length before the unit
    /// (empty when no unit was left half committed).
    spots: Vec<Spot>,
    /// The record on disk still needs clearing.
    recorded: bool,
}

impl Leftover {
    /// Reads the record in `directory` and decides whether its unit was
    /// committed whole (every journal holds its commit row).
    pub fn read(directory: &Path) -> StoreResult<Self> {
        let mut text = String::new();
        match File::open(directory.join(FILE)) {
            Ok(mut file) => {
                file.read_to_string(&mut text)
                    .map_err(|e| io_error("reading", e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io_error("opening", e)),
        }
        let recorded = !text.is_empty();
        let Some(spots) = parse(&text) else {
            return Ok(Self {
                spots: Vec::new(),
                recorded,
            });
        };
        for spot in &spots {
            if !holds_commit_row(directory, spot)? {
                log::warn(&format!(
                    "a unit of work over {} datasets was under way when the store stopped and did not reach {}: it is left out of every one of them",
                    spots.len(),
                    spot.journal
                ));
                return Ok(Self { spots, recorded });
            }
        }
        Ok(Self {
            spots: Vec::new(),
            recorded,
        })
    }

    /// A unit's journals to cut back (its sync failed part way).
    pub fn of(spots: Vec<Spot>) -> Self {
        Self {
            spots,
            recorded: true,
        }
    }

    /// Where the journal `journal` must be read up to, if it holds part of
    /// a unit never committed whole.
    pub fn limit(&self, journal: &str) -> Option<u64> {
        self.spots
            .iter()
            .find(|spot| spot.journal == journal)
            .map(|spot| spot.before)
    }

    /// True while the record on disk is still to be cleared.
    pub fn recorded(&self) -> bool {
        self.recorded
    }

    /// Cuts every listed journal back to its length before the unit,
    /// synced (a table open in this instance was read only up to there).
    pub fn cut_back(&self, directory: &Path) -> StoreResult<()> {
        for spot in &self.spots {
            let path = directory.join(&spot.journal);
            let file = match OpenOptions::new().write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&format!("cutting {} back for", spot.journal), e)),
            };
            let long = file
                .metadata()
                .map_err(|e| io_error(&format!("checking {} for", spot.journal), e))?
                .len()
                > spot.before;
            if long {
                file.set_len(spot.before)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| io_error(&format!("cutting {} back for", spot.journal), e))?;
            }
        }
        Ok(())
    }
}

/// True if the journal holds the commit row that ends at `spot.after`.
fn holds_commit_row(directory: &Path, spot: &Spot) -> StoreResult<bool> {
    let Some(start) = spot.after.checked_sub(COMMIT_ROW.len() as u64) else {
        return Ok(false);
    };
    let mut bytes = Vec::new();
    match File::open(directory.join(&spot.journal)) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .map_err(|e| io_error(&format!("reading {} for", spot.journal), e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(&format!("opening {} for", spot.journal), e)),
    }
    Ok(bytes.get(start as usize..spot.after as usize) == Some(COMMIT_ROW))
}

/// The record's file, open for writing.
pub struct Record {
    file: File,
    /// It may hold a record (not yet cleared).
    live: bool,
}

impl Record {
    /// Opens (or creates) the record's file in `directory`; `live` if it
    /// may hold a record.
    pub fn open(directory: &Path, live: bool) -> StoreResult<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(directory.join(FILE))
            .map_err(|e| io_error("opening", e))?;
        Ok(Self { file, live })
    }

    /// Records a unit's journals, synced: from now on a crash leaves the
    /// unit in all of them or in none.
    pub fn write(&mut self, spots: &[Spot]) -> StoreResult<()> {
        self.live = true;
        let text = text(spots);
        self.file
            .set_len(0)
            .and_then(|()| write_at(&self.file, text.as_bytes(), 0))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_error("writing", e))
    }

    /// Clears the record, synced, if it may hold one.
    pub fn clear(&mut self) -> StoreResult<()> {
        if !self.live {
            return Ok(());
        }
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_error("clearing", e))?;
        self.live = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_only_when_complete() {
        let spots = vec![
            Spot {
                journal: "A.B.journal".into(),
                before: 0,
                after: 120,
            },
            Spot {
                journal: "A.B.X.journal".into(),
                before: 4096,
                after: 4200,
            },
        ];
        let written = text(&spots);
        assert_eq!(parse(&written), Some(spots));
        assert_eq!(parse(&written[..written.len() - 2]), None, "torn");
        assert_eq!(parse(""), None, "cleared");
    }
}
