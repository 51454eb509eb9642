//! A string (RPL): one position in an open dataset, the record it holds
//! under exclusive control, and its read-ahead.

use std::collections::VecDeque;
use vsam_plugin_sdk::{Direction, Entry, Start};

/// Where the next sequential request of a string goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The scan start of the next sequential GET.
    pub start: Start,
    /// The direction the position was set up for.
    pub direction: Direction,
}

impl Cursor {
    /// Position before the first record (after OPEN).
    pub fn beginning() -> Self {
        Self {
            start: Start::Edge,
            direction: Direction::Forward,
        }
    }

    /// Position just past `key` in `direction` (after returning it).
    pub fn after(key: Vec<u8>, direction: Direction) -> Self {
        Self {
            start: Start::Exclusive(key),
            direction,
        }
    }

    /// Position at `key`, which the next GET returns if present.
    pub fn at(key: Vec<u8>, direction: Direction) -> Self {
        Self {
            start: Start::Inclusive(key),
            direction,
        }
    }
}

/// A record held under exclusive control by a GET UPD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its key.
    pub key: Vec<u8>,
    /// Its length when read (ESDS updates may not change it).
    pub length: usize,
    /// The generation of its lock in the fleet's database, if it has one.
    pub fleet: Option<u64>,
}

/// Most records fetched ahead for single sequential GETs.
pub const MAX_READ_AHEAD: u32 = 64;

/// Most bytes of records (at their longest) fetched ahead for one string.
pub const READ_AHEAD_BYTES: u32 = 1 << 20;

/// One string's state.
#[derive(Debug, Default)]
pub struct Rpl {
    /// Position; `None` when lost (after ENDREQ, a direct NUP request, or
    /// a not-found error).
    pub cursor: Option<Cursor>,
    /// The record held by GET UPD.
    pub held: Option<Held>,
    /// Records already fetched past the cursor, valid while the dataset's
    /// write counter equals `read_ahead_version`.
    pub read_ahead: VecDeque<Entry>,
    /// Write counter the read-ahead was fetched at.
    pub read_ahead_version: u64,
    /// What the read-ahead was valid for when fetched (see
    /// `DatasetState::read_ahead_scope`): it serves only while that holds.
    pub read_ahead_scope: Option<u64>,
    /// Consecutive single sequential GETs: the read-ahead doubles with it.
    pub streak: u32,
}

impl Rpl {
    /// A string positioned at the beginning, as after OPEN.
    pub fn new() -> Self {
        Self {
            cursor: Some(Cursor::beginning()),
            ..Self::default()
        }
    }

    /// Moves the position; drops the read-ahead.
    pub fn set_cursor(&mut self, cursor: Option<Cursor>) {
        self.cursor = cursor;
        self.read_ahead.clear();
        self.streak = 0;
    }

    /// How many records of at most `max_record` bytes the next sequential
    /// fetch asks for: twice the last, up to [`MAX_READ_AHEAD`] records and
    /// [`READ_AHEAD_BYTES`] (one record at least). A string reading records
    /// of megabytes fetches them one at a time, not 64 at once.
    pub fn next_fetch_size(&mut self, max_record: u32) -> u32 {
        self.streak = self.streak.saturating_add(1);
        let by_bytes = (READ_AHEAD_BYTES / max_record.max(1)).max(1);
        (1u32 << (self.streak - 1).min(6))
            .min(MAX_READ_AHEAD)
            .min(by_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_grows_with_a_browse_and_resets_on_a_jump() {
        let mut rpl = Rpl::new();
        assert_eq!(rpl.cursor, Some(Cursor::beginning()));
        let sizes: Vec<u32> = (0..9).map(|_| rpl.next_fetch_size(80)).collect();
        assert_eq!(sizes, vec![1, 2, 4, 8, 16, 32, 64, 64, 64]);
        // Long records: as many as READ_AHEAD_BYTES holds, one at least.
        for (max_record, most) in [(65_536, 16), (1 << 20, 1), (8 << 20, 1)] {
            let mut rpl = Rpl::new();
            let sizes: Vec<u32> = (0..9).map(|_| rpl.next_fetch_size(max_record)).collect();
            assert_eq!(sizes.iter().max(), Some(&most), "{max_record}: {sizes:?}");
            assert_eq!(sizes[0], 1);
        }
        rpl.read_ahead.push_back(Entry {
            key: vec![1],
            value: vec![],
        });
        rpl.set_cursor(Some(Cursor::at(vec![5], Direction::Backward)));
        assert!(rpl.read_ahead.is_empty());
        assert_eq!(rpl.next_fetch_size(80), 1);
    }
}
