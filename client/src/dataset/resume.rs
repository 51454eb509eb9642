//! Where each string of an open dataset stands, so that when its server is
//! lost the dataset, opened again on the next server of a fleet, goes on
//! where it was, as far as VSAM semantics allow:
//! - a browse goes on after the last record it gave (a POINT at or after
//!   that key, RBA or RRN, passing over what was given; duplicates of a
//!   path's alternate key are passed over by count; a backward browse
//!   needs the record it was at, as VSAM's backward POINT takes KEQ only);
//! - a string positioned by POINT and not yet read is positioned again;
//! - a record held for update is not held any more: the PUT UPD or ERASE
//!   that follows fails with [`ClientError::ServerLost`], never re-holding
//!   it silently (another program may have changed it meanwhile).

use crate::error::ClientError;
use std::collections::HashMap;
use vsam_protocol::{
    Access, DatasetSpec, Intent, Organization, Point, Processing, Record, RplOptions, StringRef,
};

/// The strings of one open dataset.
#[derive(Default)]
pub(crate) struct Strings {
    by_number: HashMap<u16, StringState>,
}

#[derive(Default)]
struct StringState {
    position: Position,
    /// A GET UPD answered and nothing has let the record go since.
    held: bool,
    /// The held record went with its server: what to tell the PUT UPD or
    /// ERASE that follows.
    hold_lost: Option<String>,
    /// Opened again elsewhere: the position is set again before the next
    /// sequential GET.
    moved: bool,
    /// After the position was set again: records the string gave already.
    skip: Option<Skip>,
}

#[derive(Default, Clone)]
enum Position {
    /// At the start (as after OPEN), or lost (ENDREQ).
    #[default]
    Start,
    /// POINTed, not read since.
    Pointed(Point),
    /// After this record (in `backward` order); `same_key` records with
    /// its key were given (duplicates through a path).
    After {
        key: Vec<u8>,
        address: u64,
        access: Access,
        backward: bool,
        same_key: u32,
    },
}

/// Records to pass over: the first `count` with `key`, and any before it
/// in the browse's order.
#[derive(Clone)]
struct Skip {
    key: Vec<u8>,
    backward: bool,
    count: u32,
}

/// What to do before a sequential GET on a string whose dataset moved.
pub(crate) enum Reposition {
    /// Nothing: the string was at the start or is in place.
    None,
    /// Send this POINT first; `exact` if it names the record the string
    /// was at (a backward browse), which must still be there.
    Point { point: Point, exact: bool },
}

impl Strings {
    fn string(&mut self, number: u16) -> &mut StringState {
        self.by_number.entry(number).or_default()
    }

    /// The dataset was opened again on another server, after `why`.
    pub(crate) fn moved(&mut self, why: &str) {
        for state in self.by_number.values_mut() {
            if std::mem::take(&mut state.held) {
                state.hold_lost = Some(format!(
                    "the record this string held for update was let go when {why}; read it again for update (GET UPD): another program may have changed it"
                ));
            }
            state.moved = !matches!(state.position, Position::Start);
            state.skip = None;
        }
    }

    /// Refuses a PUT UPD or ERASE whose GET UPD's hold went with a lost
    /// server.
    pub(crate) fn check_hold(
        &mut self,
        number: u16,
        dataset: &str,
        request: &'static str,
    ) -> Result<(), ClientError> {
        match self.string(number).hold_lost.take() {
            Some(detail) => Err(ClientError::ServerLost {
                dataset: dataset.to_string(),
                request,
                detail,
            }),
            None => Ok(()),
        }
    }

    /// The POINT that sets the string where it was, before a sequential
    /// GET, if its dataset moved.
    pub(crate) fn reposition(
        &mut self,
        number: u16,
        target: StringRef,
        spec: &DatasetSpec,
    ) -> Reposition {
        let state = self.string(number);
        if !std::mem::take(&mut state.moved) {
            return Reposition::None;
        }
        match &state.position {
            Position::Start => Reposition::None,
            Position::Pointed(point) => Reposition::Point {
                point: Point {
                    target,
                    ..point.clone()
                },
                exact: false,
            },
            Position::After {
                key,
                address,
                access,
                backward,
                same_key,
            } => {
                let options = RplOptions {
                    access: *access,
                    processing: Processing::Sequential,
                    backward: *backward,
                    // Backward processing takes KEQ only.
                    greater_or_equal: !*backward,
                    ..RplOptions::default()
                };
                state.skip = Some(Skip {
                    key: key.clone(),
                    backward: *backward,
                    count: *same_key,
                });
                let keyed = spec.key_length > 0 || spec.organization == Organization::Ksds;
                Reposition::Point {
                    point: Point {
                        target,
                        options: options.to_bits(),
                        key: if keyed { key.clone() } else { Vec::new() },
                        generic_length: 0,
                        address: *address,
                    },
                    exact: *backward,
                }
            }
        }
    }

    /// Takes a GET's answer: passes over records given before the move,
    /// and notes where the string now stands. Returns how many it passed
    /// over.
    pub(crate) fn got(
        &mut self,
        number: u16,
        options: RplOptions,
        records: &mut Vec<Record>,
    ) -> usize {
        let state = self.string(number);
        if options.processing == Processing::Direct {
            // A direct GET sets the position itself.
            state.moved = false;
        }
        let passed = if let Some(skip) = &mut state.skip {
            let before = |record: &Record, skip: &Skip| match skip.backward {
                false => record.key < skip.key,
                true => record.key > skip.key,
            };
            let mut passed = 0;
            for record in records.iter() {
                if before(record, skip) {
                    passed += 1;
                } else if record.key == skip.key && skip.count > 0 {
                    skip.count -= 1;
                    passed += 1;
                } else {
                    break;
                }
            }
            if passed < records.len() {
                state.skip = None;
            }
            records.drain(..passed);
            passed
        } else {
            0
        };
        state.held = options.intent == Intent::Update && !records.is_empty();
        let sequential = options.processing != Processing::Direct;
        for record in records.iter() {
            match &mut state.position {
                Position::After { key, same_key, .. } if sequential && *key == record.key => {
                    *same_key += 1;
                }
                position => {
                    *position = Position::After {
                        key: record.key.clone(),
                        address: record.address,
                        access: options.access,
                        backward: options.backward,
                        same_key: 1,
                    }
                }
            }
        }
        passed
    }

    /// A POINT succeeded.
    pub(crate) fn pointed(&mut self, number: u16, point: &Point) {
        let state = self.string(number);
        state.position = Position::Pointed(point.clone());
        state.held = false;
        state.moved = false;
        state.skip = None;
    }

    /// The string let its record go (PUT UPD, ERASE) or dropped its
    /// position too (ENDREQ).
    pub(crate) fn released(&mut self, number: u16, position_too: bool) {
        let state = self.string(number);
        state.held = false;
        state.hold_lost = None;
        if position_too {
            state.position = Position::Start;
            state.moved = false;
            state.skip = None;
        }
    }
}
