//! One COBOL file mapped to a dataset: the statements a program runs on it,
//! turned into VSAM requests, and the FILE STATUS each one ends with.
//!
//! String 0 of the open dataset carries the file's position (READ NEXT,
//! READ PREVIOUS, START); string 1 serves REWRITE and DELETE, which take the
//! record under exclusive control by key, so they never move the position.

use crate::alternate;
use crate::config::FileMapping;
use crate::fcd::{AccessMode, CloseOption, Fcd, FileOrg, KeyDef, open_mode};
use crate::glue::{self, Delivery};
use crate::link::{Failure, Link};
use crate::position::{BROWSE, Bound, Condition, Search};
use crate::status::{self, FileStatus};
use std::collections::VecDeque;
use vsam_client::{ChainedRecord, ClientError, Dataset, Record};
use vsam_protocol::{
    DatasetSpec, OpenIntent, Organization, Processing, RplOptions, access, fdbk, open_error,
};

mod deferred;
mod lifecycle;
mod locks;
mod reading;
mod writing;

use deferred::{DEFERRED_BYTES, DEFERRED_RECORDS, DeferredChange};

/// The string REWRITE and DELETE use.
const UPDATE: u16 = 1;

/// What one statement ended with: the status, and why if it is not a
/// routine one.
pub type Outcome = Result<FileStatus, Problem>;

/// A status with the explanation the program's operator sees on stderr.
#[derive(Debug)]
pub struct Problem {
    /// FILE STATUS.
    pub status: FileStatus,
    /// What happened and what to do.
    pub message: String,
}

/// A mapped file: its dataset while open, and its COBOL position state.
pub struct MappedFile {
    assign: String,
    mapping: FileMapping,
    org: FileOrg,
    access_mode: AccessMode,
    keys: Vec<KeyDef>,
    /// The open mode (one of [`open_mode`]); `None` while closed.
    mode: Option<u8>,
    /// The open dataset; `None` while closed or for an OPTIONAL file that
    /// was missing at OPEN INPUT.
    dataset: Option<Dataset>,
    /// The paths of the alternate keys, open for reading (see `alternate`).
    paths: Vec<Dataset>,
    /// The key of reference: 0 the prime key, n the n-th alternate key.
    reference: usize,
    /// READ answers 02 when the next record has the same alternate key
    /// (else 00, as GnuCOBOL's own handler).
    duplicate_read_status: FileStatus,
    /// The last READ NEXT/PREVIOUS hit the end: the next one is status 46.
    at_end: bool,
    /// The key (or RBA/RRN as 8 bytes) of the record the last statement
    /// read, for a sequential-access REWRITE or DELETE.
    last_read: Option<Vec<u8>>,
    /// The length of the record the last READ delivered (an ESDS record
    /// keeps it on REWRITE).
    last_read_length: usize,
    /// The key (or RRN) last written in sequential access.
    last_written: Option<Vec<u8>>,
    /// What the last READ or WRITE returns to the program (see `glue`).
    delivery: Option<Delivery>,
    /// The key (or RBA/RRN) of the record the program's position is at:
    /// the last one READ delivered.
    position: Option<Vec<u8>>,
    /// Records a batched GET fetched ahead for the next READ NEXTs.
    read_ahead: VecDeque<Record>,
    /// How many records one batched GET asks for (1: no read-ahead).
    read_ahead_size: u32,
    /// A WRITE dropped the read-ahead: the next READ NEXT first puts the
    /// server's position back after this key.
    resume_after: Option<Vec<u8>>,
    /// The missing-glue warning was given.
    warned: bool,
    /// Closed WITH LOCK: OPEN answers 38 until a CLOSE lets it go.
    closed_with_lock: bool,
    /// The relative record delivered last, to read again (status 14).
    last_slot: Option<Record>,
    /// The program runs in `commit` durability: opens for output, I-O and
    /// extend ask for it.
    wants_unit: bool,
    /// This open is in `commit` durability: its changes join the unit.
    in_unit: bool,
    /// Records of a load in `commit` durability not yet sent: written as
    /// one PUT CHAIN at the next commit point, CLOSE, or when enough have
    /// gathered (see [`MappedFile::defers_writes`]).
    deferred: Vec<ChainedRecord>,
    /// Bytes of the records in `deferred`.
    deferred_bytes: usize,
    /// REWRITEs and DELETEs of an I-O open in `commit` durability not yet
    /// sent: sent together, pipelined, before the file's next request to
    /// the server (see [`MappedFile::defers_changes`]).
    deferred_changes: Vec<DeferredChange>,
    /// The server refused a change this file gathered: the program's unit
    /// of work lacks it and the changes sent after it, which the program
    /// was told were made, so the bridge rolls the unit back.
    refused_deferred: bool,
    /// The record a READ locked (held for update on the update string),
    /// until UNLOCK, the next locking READ, its REWRITE or DELETE, CLOSE,
    /// or the end of the unit of work.
    locked: Option<Vec<u8>>,
}

impl MappedFile {
    /// A mapped file, closed.
    pub fn new(
        assign: String,
        mapping: FileMapping,
        read_ahead_size: u32,
        duplicate_read_status: FileStatus,
        wants_unit: bool,
        fcd: &Fcd,
    ) -> Result<Self, Problem> {
        let org = fcd.organization().ok_or_else(|| Problem {
            status: status::OPEN_NOT_ALLOWED,
            message: format!("file {assign}: organization code unknown to the bridge"),
        })?;
        if org == FileOrg::LineSequential {
            return Err(Problem {
                status: status::OPEN_NOT_ALLOWED,
                message: format!(
                    "file {assign}: a LINE SEQUENTIAL file is text, not a VSAM dataset; remove its mapping ({})",
                    mapping.dataset
                ),
            });
        }
        let keys = fcd.keys().map_err(|n| Problem {
            status: status::OPEN_NOT_ALLOWED,
            message: format!(
                "file {assign}: key {n} is made of several fields (SOURCE IS); a VSAM key is one field"
            ),
        })?;
        Ok(Self {
            assign,
            mapping,
            org,
            access_mode: fcd.access_mode(),
            keys: if org == FileOrg::Indexed {
                keys
            } else {
                Vec::new()
            },
            mode: None,
            dataset: None,
            paths: Vec::new(),
            reference: 0,
            duplicate_read_status,
            at_end: false,
            last_read: None,
            last_read_length: 0,
            last_written: None,
            delivery: None,
            warned: false,
            position: None,
            read_ahead: VecDeque::new(),
            read_ahead_size: read_ahead_size
                .min((crate::config::READ_AHEAD_BYTES / fcd.max_length().max(1)) as u32)
                .max(1),
            resume_after: None,
            closed_with_lock: false,
            last_slot: None,
            wants_unit,
            in_unit: false,
            deferred: Vec::new(),
            deferred_bytes: 0,
            deferred_changes: Vec::new(),
            refused_deferred: false,
            locked: None,
        })
    }

    /// The dataset this file is mapped to.
    pub fn dataset_name(&self) -> &str {
        &self.mapping.dataset
    }

    /// Whether this open's changes join the program's unit of work.
    pub fn in_unit(&self) -> bool {
        self.in_unit
    }

    /// The unit of work ended. After a COMMIT the records read ahead are
    /// still what the program sees; after a ROLLBACK they may hold changes
    /// that are gone, so the next READ NEXT reads again from the record
    /// the program is at (as after a WRITE).
    pub fn unit_ended(&mut self, rolled_back: bool) {
        if rolled_back && !self.read_ahead.is_empty() {
            self.read_ahead.clear();
            self.resume_after = self.position.clone();
        }
    }

    fn problem(
        &self,
        request: &str,
        status: FileStatus,
        detail: impl std::fmt::Display,
    ) -> Problem {
        Problem {
            status,
            message: format!(
                "file {} ({}) {request}: {detail}",
                self.assign, self.mapping.dataset
            ),
        }
    }

    /// A failed request as the statement's outcome.
    fn failed(&self, request: &str, failure: Failure) -> Problem {
        match failure {
            Failure::Vsam(error) => {
                let status = status::of_vsam(error.status.r15, error.status.fdbk);
                self.problem(request, status, error)
            }
            Failure::Lost(reason) => self.problem(
                request,
                status::PERMANENT,
                format!("the connection to vsamrd failed: {reason}"),
            ),
        }
    }

    /// A record's key as messages show it: the key's bytes, or the RRN or
    /// RBA.
    fn describe_key(&self, key: &[u8]) -> String {
        match self.org {
            FileOrg::Indexed => format!("with key '{}'", key.escape_ascii()),
            FileOrg::Relative => format!("at RRN {}", number(key)),
            _ => format!("at RBA {}", number(key)),
        }
    }

    /// The organization of the dataset the file is: a relative file whose
    /// records vary in length (RECORD VARYING, or records of several sizes
    /// in its FD) is a VRRDS.
    fn organization(&self, fcd: &Fcd) -> Organization {
        match self.org {
            FileOrg::Indexed => Organization::Ksds,
            FileOrg::Relative if fcd.min_length() < fcd.max_length() => Organization::Vrrds,
            FileOrg::Relative => Organization::Rrds,
            _ => Organization::Esds,
        }
    }

    fn prime(&self) -> KeyDef {
        self.keys[0]
    }

    /// The prime key field of a record (`None` if it is too short).
    fn prime_key(&self, record: &[u8]) -> Option<Vec<u8>> {
        let prime = self.prime();
        record
            .get(prime.offset..prime.offset + prime.length)
            .map(<[u8]>::to_vec)
    }

    /// Forgets the read-ahead: the server's position is the program's.
    fn drop_read_ahead(&mut self) {
        self.read_ahead.clear();
        self.resume_after = None;
    }

    /// The key a record is stored under: the prime key field, or the RBA or
    /// RRN as 8 bytes.
    fn record_key(&self, record: &Record) -> Vec<u8> {
        match self.org {
            // Through a path the record's key is its alternate key.
            FileOrg::Indexed => self
                .prime_key(&record.data)
                .unwrap_or_else(|| record.key.clone()),
            _ => key_of(self.org, record),
        }
    }

    /// A failure whose status a program handles (INVALID KEY, 46...) is
    /// only a status; others are problems.
    fn routine(&self, request: &str, failure: Failure) -> Outcome {
        let problem = self.failed(request, failure);
        if status::is_routine(problem.status) || problem.status == status::NO_NEXT {
            Ok(problem.status)
        } else {
            Err(problem)
        }
    }

    /// The key field `n` of the record area.
    fn key_field(&self, fcd: &mut Fcd, key: KeyDef) -> Vec<u8> {
        let area = fcd.record();
        area[key.offset..(key.offset + key.length).min(area.len())].to_vec()
    }

    /// The file's state after a lost connection: closed, so the program's
    /// next OPEN starts afresh.
    pub fn forget(&mut self, fcd: &mut Fcd) {
        self.drop_deferred();
        self.locked = None;
        self.dataset = None;
        self.mode = None;
        fcd.set_open_mode(open_mode::CLOSED);
    }
}

/// The key a record is stored under in a file of organization `org`.
fn key_of(org: FileOrg, record: &Record) -> Vec<u8> {
    match org {
        FileOrg::Indexed => record.key.clone(),
        _ => record.address.to_be_bytes().to_vec(),
    }
}

/// An 8-byte big-endian number (an RRN or RBA key).
pub(crate) fn number(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(bytes)
}
