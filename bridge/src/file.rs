//! One COBOL file mapped to a dataset: the statements a program runs on it,
//! turned into VSAM requests, and the FILE STATUS each one ends with.
//!
//! String 0 of the open dataset carries the file's position (READ NEXT,
//! READ PREVIOUS, START); string 1 serves REWRITE and DELETE, which take the
//! record under exclusive control by key, so they never move the position.

use crate::alternate;
use crate::config::FileMapping;
use crate::fcd::{AccessMode, Fcd, FileOrg, KeyDef, open_mode};
use crate::glue::{self, Delivery};
use crate::link::{Failure, Link};
use crate::position::{BROWSE, Bound, Condition, Search};
use crate::status::{self, FileStatus};
use std::collections::VecDeque;
use vsam_client::{ChainedRecord, ClientError, Dataset, Record};
use vsam_protocol::{
    DatasetSpec, OpenIntent, Organization, Processing, RplOptions, access, fdbk, open_error,
};

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
}

/// Records a load sends in one PUT CHAIN, at most.
const DEFERRED_RECORDS: usize = 2_000;
/// Bytes a load sends in one PUT CHAIN, at most.
const DEFERRED_BYTES: usize = 1 << 20;

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
            last_written: None,
            delivery: None,
            warned: false,
            position: None,
            read_ahead: VecDeque::new(),
            read_ahead_size: read_ahead_size.max(1),
            resume_after: None,
            wants_unit,
            in_unit: false,
            deferred: Vec::new(),
            deferred_bytes: 0,
        })
    }

    /// True if WRITEs are gathered and sent in chains: a load (OPEN
    /// OUTPUT, sequential access) of an indexed or relative file in
    /// `commit` durability. As in VSAM's load mode, the sequence and the
    /// length of each record are checked as it is written; the store's
    /// verdict (a key another program stored meanwhile, no space) comes at
    /// the next chain, the commit point or CLOSE, whose status carries it.
    fn defers_writes(&self) -> bool {
        self.in_unit
            && self.mode == Some(open_mode::OUTPUT)
            && self.access_mode == AccessMode::Sequential
            && matches!(self.org, FileOrg::Indexed | FileOrg::Relative)
    }

    /// Sends the WRITEs gathered so far as PUT CHAINs. A record the server
    /// refuses ends the chain: its status is returned (and said on stderr
    /// with the record), and the records after it are not written.
    pub fn send_deferred(&mut self, link: &mut Link) -> Outcome {
        if self.deferred.is_empty() {
            return Ok(status::OK);
        }
        let records = std::mem::take(&mut self.deferred);
        self.deferred_bytes = 0;
        let Some(dataset) = self.dataset.clone() else {
            return Ok(status::OK);
        };
        let count = records.len();
        let chained = link.run(async move {
            dataset
                .put_chain(BROWSE, RplOptions::direct(), records)
                .await
        });
        match chained {
            Ok(outcome) => match outcome.failure {
                None => Ok(status::OK),
                Some(error) => {
                    let written = outcome.written.len();
                    let problem = self.failed("WRITE", Failure::Vsam(error));
                    eprintln!(
                        "vsamextfh: {} (a load's WRITE, sent with {count} others gathered: the {written} before it are written, the ones after it are not)",
                        problem.message
                    );
                    Ok(problem.status)
                }
            },
            Err(failure) => self.routine("WRITE", failure),
        }
    }

    /// Forgets the WRITEs gathered and not sent (a ROLLBACK).
    pub fn drop_deferred(&mut self) {
        self.deferred.clear();
        self.deferred_bytes = 0;
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

    fn organization(&self) -> Organization {
        match self.org {
            FileOrg::Indexed => Organization::Ksds,
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

    /// OPEN in `mode` (one of [`open_mode`]).
    pub fn open(&mut self, link: &mut Link, fcd: &mut Fcd, mode: u8) -> Outcome {
        if self.mode.is_some() {
            return Ok(status::ALREADY_OPEN);
        }
        let connection = link.connection().map_err(|f| self.failed("OPEN", f))?;
        if self.keys.len() > 1 && self.mapping.define && mode != open_mode::INPUT {
            alternate::ensure(link, &connection, self.spec(fcd), &self.keys[1..])
                .map_err(|f| self.failed("OPEN (DEFINE AIX)", f))?;
        }
        let name = self.mapping.dataset.clone();
        let (intent, mut access_bits) = match mode {
            open_mode::INPUT => (OpenIntent::Input, 0),
            open_mode::OUTPUT => (OpenIntent::Output, access::RESET),
            _ => (OpenIntent::Update, 0),
        };
        if self.wants_unit && mode != open_mode::INPUT {
            access_bits |= access::COMMIT;
        }
        let open = |link: &mut Link, access_bits: u8| {
            let connection = connection.clone();
            let name = name.clone();
            link.run(async move {
                Dataset::open_with_access(&connection, &name, intent, access_bits, 2).await
            })
        };
        // A dataset that cannot take part in units (its backend cannot keep
        // them whole, or its alternate indexes are upgraded) runs in sync
        // durability: said once, and the program goes on.
        let open = |link: &mut Link| match open(link, access_bits) {
            Err(Failure::Vsam(refused))
                if access_bits & access::COMMIT != 0
                    && refused.status.message.contains("commit durability") =>
            {
                eprintln!(
                    "vsamextfh: file {} ({}): {}; it runs in sync durability (every change durable at once, ROLLBACK cannot undo it)",
                    self.assign, self.mapping.dataset, refused.status.message
                );
                open(link, access_bits & !access::COMMIT).map(|ds| (ds, false))
            }
            other => other.map(|ds| (ds, access_bits & access::COMMIT != 0)),
        };
        let mut result = status::OK;
        let mut in_unit = false;
        let dataset = match open(link) {
            Ok((dataset, unit)) => {
                in_unit = unit;
                Some(dataset)
            }
            Err(Failure::Vsam(e)) if e.status.fdbk == open_error::NOT_FOUND => {
                let may_define = self.mapping.define && (mode != open_mode::INPUT);
                if mode == open_mode::INPUT && fcd.optional() {
                    result = status::OPTIONAL_MISSING;
                    None
                } else if may_define {
                    let spec = self.spec(fcd);
                    let connection = connection.clone();
                    link.run(async move { vsam_client::define(&connection, spec).await })
                        .map_err(|f| self.failed("OPEN (DEFINE)", f))?;
                    if mode != open_mode::OUTPUT && fcd.optional() {
                        result = status::OPTIONAL_MISSING;
                    }
                    let (dataset, unit) = open(link).map_err(|f| self.failed("OPEN", f))?;
                    in_unit = unit;
                    Some(dataset)
                } else {
                    return Err(self.problem(
                        "OPEN",
                        status::FILE_MISSING,
                        "the dataset is not in vsamrd's catalog; define it (vsamr define) or set define = true in the bridge's mapping",
                    ));
                }
            }
            Err(failure) => return Err(self.failed("OPEN", failure)),
        };
        if let Some(dataset) = &dataset
            && let Err(conflict) = self.check_attributes(dataset.spec(), fcd)
        {
            let dataset = dataset.clone();
            let _ = link.run(async move { dataset.close().await });
            return Err(self.problem("OPEN", status::ATTRIBUTE_CONFLICT, conflict));
        }
        let reads = matches!(mode, open_mode::INPUT | open_mode::IO);
        if let Some(base) = &dataset
            && reads
            && self.keys.len() > 1
        {
            match alternate::open_paths(link, &connection, &self.mapping.dataset, &self.keys[1..]) {
                Ok(paths) => self.paths = paths,
                Err((failure, problem)) => {
                    let base = base.clone();
                    let _ = link.run(async move { base.close().await });
                    return Err(match failure {
                        Some(failure) => self.failed("OPEN", failure),
                        None => self.problem("OPEN", status::FILE_MISSING, problem),
                    });
                }
            }
        }
        self.dataset = dataset;
        self.in_unit = in_unit;
        self.reference = 0;
        self.drop_read_ahead();
        self.position = None;
        self.at_end = false;
        self.last_read = None;
        self.last_written = None;
        if mode == open_mode::EXTEND {
            self.last_written = self.last_key(link)?;
        }
        self.mode = Some(mode);
        fcd.set_open_mode(mode);
        Ok(result)
    }

    /// Forgets the read-ahead: the server's position is the program's.
    fn drop_read_ahead(&mut self) {
        self.read_ahead.clear();
        self.resume_after = None;
    }

    /// The catalog entry a DEFINE makes from the program's description.
    fn spec(&self, fcd: &Fcd) -> DatasetSpec {
        let max = fcd.max_length() as u32;
        let min = if self.org == FileOrg::Relative {
            max
        } else {
            (fcd.min_length() as u32).clamp(1, max)
        };
        let (key_offset, key_length) = match self.keys.first() {
            Some(key) => (key.offset as u32, key.length as u16),
            None => (0, 0),
        };
        DatasetSpec {
            name: self.mapping.dataset.clone(),
            organization: self.organization(),
            key_offset,
            key_length,
            min_record: min,
            max_record: max,
            codepage: "ascii".into(),
            backend: self.mapping.backend.clone(),
            layout: String::new(),
        }
    }

    fn check_attributes(&self, spec: &DatasetSpec, fcd: &Fcd) -> Result<(), String> {
        if spec.organization != self.organization() {
            return Err(format!(
                "the dataset is {} and the program's file is {:?}",
                spec.organization.name().to_uppercase(),
                self.org
            ));
        }
        if let Some(key) = self.keys.first()
            && (key.offset as u32, key.length as u16) != (spec.key_offset, spec.key_length)
        {
            return Err(format!(
                "the dataset's key is {} bytes at offset {}, the program's RECORD KEY {} bytes at {}",
                spec.key_length, spec.key_offset, key.length, key.offset
            ));
        }
        if spec.max_record < fcd.min_length() as u32 {
            return Err(format!(
                "the dataset's records are at most {} bytes, the program's at least {}",
                spec.max_record,
                fcd.min_length()
            ));
        }
        Ok(())
    }

    /// The highest key stored (for OPEN EXTEND), as 8 bytes for an RRDS.
    fn last_key(&self, link: &mut Link) -> Result<Option<Vec<u8>>, Problem> {
        if self.org == FileOrg::Sequential {
            return Ok(None);
        }
        let Some(dataset) = self.dataset.clone() else {
            return Ok(None);
        };
        let options = RplOptions::direct().last_record();
        match link.run(async move { dataset.get(BROWSE, options, &[], 0, 0, 1).await }) {
            Ok(mut records) => Ok(records.pop().map(|r| self.record_key(&r))),
            Err(Failure::Vsam(e))
                if matches!(e.status.feedback(), fdbk::NOT_FOUND | fdbk::END_OF_DATA) =>
            {
                Ok(None)
            }
            Err(failure) => Err(self.failed("OPEN EXTEND", failure)),
        }
    }

    /// CLOSE. The WRITEs a load gathered go first; if the server refuses
    /// one, CLOSE still closes and answers its status.
    pub fn close(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        if self.mode.is_none() {
            return Ok(status::NOT_OPEN);
        }
        let sent = self.send_deferred(link)?;
        self.mode = None;
        self.drop_read_ahead();
        for path in std::mem::take(&mut self.paths) {
            let _ = link.run(async move { path.close().await });
        }
        fcd.set_open_mode(open_mode::CLOSED);
        let closed = match self.dataset.take() {
            Some(dataset) => link
                .run(async move { dataset.close().await })
                .map(|()| status::OK)
                .map_err(|f| self.failed("CLOSE", f)),
            None => Ok(status::OK),
        };
        match (sent, closed) {
            (status::OK, closed) => closed,
            (refused, Ok(_)) => Ok(refused),
            (_, failed) => failed,
        }
    }

    fn readable(&self) -> bool {
        matches!(self.mode, Some(open_mode::INPUT | open_mode::IO))
    }

    /// UNLOCK: the bridge holds a record only from a READ of an I-O file
    /// to its REWRITE or DELETE, within one statement's requests, so there
    /// is nothing held between statements to let go.
    pub fn unlock(&self) -> FileStatus {
        if self.mode.is_some() {
            status::OK
        } else {
            status::NOT_OPEN
        }
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

    /// The handle a browse by the key of reference uses.
    fn browse_dataset(&self) -> Option<Dataset> {
        match self.reference {
            0 => self.dataset.clone(),
            n => self.paths.get(n - 1).cloned(),
        }
    }

    /// The status of a successful READ: 02 if a record with the same
    /// alternate key follows (and so configured).
    fn read_status(&self, status: &vsam_protocol::Status) -> FileStatus {
        if status.r15 == 0 && status.fdbk == fdbk::DUPLICATE_KEY {
            self.duplicate_read_status
        } else {
            status::OK
        }
    }

    /// The status of a successful WRITE or REWRITE: 02 if it made a
    /// duplicate alternate key.
    fn write_status(status: &vsam_protocol::Status) -> FileStatus {
        if status.r15 == 0 && status.fdbk == fdbk::DUPLICATE_KEY {
            status::DUPLICATE_ALTERNATE
        } else {
            status::OK
        }
    }

    /// Makes the key a READ by key or a START names the key of reference;
    /// the key's place (`None` for a relative file, whose key is RELATIVE
    /// KEY). `Err` if the file has no such key.
    fn take_reference(&mut self, fcd: &Fcd) -> Result<Option<KeyDef>, ()> {
        if self.org != FileOrg::Indexed {
            return Ok(None);
        }
        let n = fcd.key_of_reference();
        let key = self.keys.get(n).copied().ok_or(())?;
        if n != self.reference {
            self.drop_read_ahead();
        }
        self.reference = n;
        Ok(Some(key))
    }

    fn deliver(&mut self, fcd: &mut Fcd, record: Record) {
        let area = fcd.record();
        let length = record.data.len().min(area.len());
        area[..length].copy_from_slice(&record.data[..length]);
        fcd.set_current_length(length);
        let rrn = (self.org == FileOrg::Relative).then_some(record.address);
        if let Some(rrn) = rrn {
            fcd.set_relative_key(rrn);
        }
        let variable = fcd.min_length() != fcd.max_length();
        if variable && !glue::interposed() && !self.warned {
            self.warned = true;
            eprintln!(
                "vsamextfh: file {}: GnuCOBOL does not pass the length of a record read to RECORD VARYING ... DEPENDING ON unless libvsamextfh comes before libcob: link with cobc -Q \"-L<dir> -lvsamextfh\"",
                self.assign
            );
        }
        self.delivery = Some(Delivery {
            length: Some(length),
            rrn,
        });
        self.last_read = Some(self.record_key(&record));
        self.position = self.last_read.clone();
    }

    /// What the last READ or WRITE left to put back (once).
    pub fn take_delivery(&mut self) -> Option<Delivery> {
        self.delivery.take()
    }

    fn browse_options(&self) -> RplOptions {
        match self.org {
            FileOrg::Sequential => RplOptions::addressed(Processing::Sequential),
            _ => RplOptions::sequential(),
        }
    }

    /// READ NEXT (or PREVIOUS, `backward`).
    pub fn read_next(&mut self, link: &mut Link, fcd: &mut Fcd, backward: bool) -> Outcome {
        self.last_read = None;
        if !self.readable() {
            return Ok(status::NOT_INPUT);
        }
        if self.dataset.is_none() {
            return Ok(status::AT_END);
        }
        let Some(dataset) = self.browse_dataset() else {
            return Ok(status::AT_END);
        };
        if self.at_end {
            return Ok(status::NO_NEXT);
        }
        let request = if backward {
            "READ PREVIOUS"
        } else {
            "READ NEXT"
        };
        if backward {
            let ahead = !self.read_ahead.is_empty() || self.resume_after.is_some();
            self.drop_read_ahead();
            if ahead && let Some(key) = self.position.clone() {
                let search = self.search(key);
                if let Err(failure) = link.run(search.before(dataset.clone())) {
                    return self.routine(request, failure);
                }
            }
        } else {
            if let Some(key) = self.resume_after.take() {
                let search = self.search(key);
                match link.run(search.after(dataset.clone())) {
                    Ok(Some(next)) => self.read_ahead.push_front(next),
                    Ok(None) => {}
                    Err(failure) => return self.routine(request, failure),
                }
            }
            if let Some(record) = self.read_ahead.pop_front() {
                self.deliver(fcd, record);
                return Ok(status::OK);
            }
        }
        let mut options = self.browse_options();
        // Through a path each READ asks on its own: its status says
        // whether the next record shares the alternate key.
        let batch = if backward || self.reference > 0 {
            if backward {
                options = options.backward();
            }
            1
        } else {
            self.read_ahead_size
        };
        match link.run(async move {
            dataset
                .get_with_status(BROWSE, options, &[], 0, 0, batch)
                .await
        }) {
            Ok((records, answer)) => {
                let mut records = VecDeque::from(records);
                let Some(first) = records.pop_front() else {
                    return Ok(status::AT_END);
                };
                self.read_ahead = records;
                self.deliver(fcd, first);
                Ok(self.read_status(&answer))
            }
            Err(Failure::Vsam(e)) if e.status.fdbk == fdbk::END_OF_DATA => {
                self.at_end = true;
                Ok(status::AT_END)
            }
            Err(failure) => self.routine(request, failure),
        }
    }

    /// A record key as a search argument: a key, or an RBA/RRN.
    fn search(&self, key: Vec<u8>) -> Search {
        match self.org {
            FileOrg::Indexed => Search::Key {
                full: key.len(),
                bytes: key,
            },
            _ => Search::Number(number(&key)),
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

    /// What a READ by key and a START share: the checks, the key of
    /// reference they set (see `take_reference`) and the handle it reads
    /// through; `Err` is the statement's status.
    fn keyed(&mut self, fcd: &Fcd) -> Result<(Option<KeyDef>, Dataset), FileStatus> {
        self.last_read = None;
        if !self.readable() {
            return Err(status::NOT_INPUT);
        }
        if self.dataset.is_none() {
            return Err(status::NOT_FOUND);
        }
        self.drop_read_ahead();
        let reference = self.take_reference(fcd).map_err(|()| status::NOT_FOUND)?;
        let dataset = self.browse_dataset().ok_or(status::NOT_FOUND)?;
        Ok((reference, dataset))
    }

    /// READ by key (RANDOM, or DYNAMIC with KEY): the position moves to the
    /// record, so a READ NEXT continues after it.
    pub fn read_key(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        let (reference, dataset) = match self.keyed(fcd) {
            Ok(keyed) => keyed,
            Err(status) => return Ok(status),
        };
        let options = RplOptions {
            intent: vsam_protocol::Intent::NoUpdateKeepPosition,
            ..RplOptions::direct()
        };
        let (key, address) = match reference {
            Some(reference) => (self.key_field(fcd, reference), 0),
            None => (Vec::new(), fcd.relative_key()),
        };
        match link.run(async move {
            dataset
                .get_with_status(BROWSE, options, &key, 0, address, 1)
                .await
        }) {
            Ok((mut records, answer)) => {
                self.at_end = false;
                if let Some(record) = records.pop() {
                    self.deliver(fcd, record);
                }
                Ok(self.read_status(&answer))
            }
            Err(failure) => self.routine("READ", failure),
        }
    }

    /// START with a condition on the key of reference (or RELATIVE KEY).
    pub fn start(&mut self, link: &mut Link, fcd: &mut Fcd, condition: Condition) -> Outcome {
        let (reference, dataset) = match self.keyed(fcd) {
            Ok(keyed) => keyed,
            Err(status) => return Ok(status),
        };
        self.at_end = false;
        let bound = match reference {
            Some(key) => {
                let effective = fcd.effective_key_length();
                let length = if effective == 0 || effective > key.length {
                    key.length
                } else {
                    effective
                };
                let argument = self.key_field(fcd, key)[..length].to_vec();
                Bound::for_key(condition, argument, key.length)
            }
            _ => Bound::for_number(condition, fcd.relative_key()),
        };
        let Some(bound) = bound else {
            return Ok(status::NOT_FOUND);
        };
        match link.run(bound.position(dataset)) {
            Ok(true) => Ok(status::OK),
            Ok(false) => Ok(status::NOT_FOUND),
            Err(failure) => self.routine("START", failure),
        }
    }

    /// The record to write: the record area cut to its current length.
    fn record_to_write(&self, fcd: &mut Fcd) -> Result<Vec<u8>, FileStatus> {
        let (min, max, current) = (fcd.min_length(), fcd.max_length(), fcd.current_length());
        let length = if current == 0 { max } else { current };
        if length < min.max(1) || length > max {
            return Err(status::RECORD_LENGTH);
        }
        Ok(fcd.record()[..length].to_vec())
    }

    /// WRITE.
    pub fn write(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        self.last_read = None;
        let mode = self.mode.unwrap_or(open_mode::CLOSED);
        let sequential = self.access_mode == AccessMode::Sequential;
        let allowed = match mode {
            open_mode::OUTPUT | open_mode::EXTEND => true,
            open_mode::IO => self.org != FileOrg::Sequential && !sequential,
            _ => false,
        };
        if !allowed {
            return Ok(status::NOT_OUTPUT);
        }
        let record = match self.record_to_write(fcd) {
            Ok(record) => record,
            Err(status) => return Ok(status),
        };
        let Some(dataset) = self.dataset.clone() else {
            return Ok(status::NOT_OUTPUT);
        };
        let (options, address, key) = match self.org {
            FileOrg::Sequential => (RplOptions::addressed(Processing::Sequential), 0, None),
            FileOrg::Indexed => {
                let key = self.prime_key(&record).unwrap_or_default();
                if sequential && self.last_written.as_ref().is_some_and(|last| key <= *last) {
                    return Ok(status::SEQUENCE);
                }
                (RplOptions::direct(), 0, Some(key))
            }
            _ => {
                let rrn = if sequential {
                    let last = self.last_written.as_deref().map_or(0, number);
                    fcd.set_relative_key(last + 1);
                    last + 1
                } else {
                    fcd.relative_key()
                };
                if rrn == 0 {
                    return Ok(status::BOUNDARY);
                }
                (RplOptions::direct(), rrn, Some(rrn.to_be_bytes().to_vec()))
            }
        };
        if self.defers_writes() {
            self.deferred_bytes += record.len();
            self.deferred.push(ChainedRecord { address, record });
            if self.org == FileOrg::Relative {
                self.delivery = Some(Delivery {
                    length: None,
                    rrn: Some(address),
                });
            }
            self.last_written = key;
            if self.deferred.len() >= DEFERRED_RECORDS || self.deferred_bytes >= DEFERRED_BYTES {
                return self.send_deferred(link);
            }
            return Ok(status::OK);
        }
        let written = link.run(async move {
            dataset
                .put_with_status(BROWSE, options, address, record)
                .await
        });
        if written.is_ok() && !self.read_ahead.is_empty() {
            // The new record may belong among those fetched ahead.
            self.read_ahead.clear();
            self.resume_after = self.position.clone();
        }
        match written {
            Ok((_, answer)) => {
                if sequential {
                    if self.org == FileOrg::Relative {
                        self.delivery = Some(Delivery {
                            length: None,
                            rrn: Some(address),
                        });
                    }
                    self.last_written = key;
                }
                Ok(Self::write_status(&answer))
            }
            Err(failure) => self.routine("WRITE", failure),
        }
    }

    /// The record REWRITE and DELETE work on: in sequential access the one
    /// just read (status 43 without one), else the one the key names.
    fn target(&mut self, fcd: &mut Fcd) -> Result<Vec<u8>, FileStatus> {
        let sequential =
            self.access_mode == AccessMode::Sequential || self.org == FileOrg::Sequential;
        let last_read = self.last_read.take();
        if sequential {
            let Some(read) = last_read else {
                return Err(status::NO_READ);
            };
            if self.org == FileOrg::Indexed && self.key_field(fcd, self.prime()) != read {
                return Err(status::SEQUENCE);
            }
            return Ok(read);
        }
        Ok(match self.org {
            FileOrg::Indexed => self.key_field(fcd, self.prime()),
            _ => fcd.relative_key().to_be_bytes().to_vec(),
        })
    }

    /// Takes the record under `key` on the update string.
    async fn hold(dataset: &Dataset, org: FileOrg, key: &[u8]) -> Result<(), ClientError> {
        let (options, key, address) = match org {
            FileOrg::Indexed => (RplOptions::direct().update(), key, 0),
            FileOrg::Relative => (RplOptions::direct().update(), &[][..], number(key)),
            _ => (
                RplOptions::addressed(Processing::Direct).update(),
                &[][..],
                number(key),
            ),
        };
        dataset
            .get(UPDATE, options, key, 0, address, 1)
            .await
            .map(drop)
    }

    /// Takes the record and runs `change` on it in one round trip: both
    /// requests are sent before either answer is read (the server runs a
    /// connection's requests in order). If the record could not be taken,
    /// that is the failure; the change then fails for want of it.
    async fn held_change<F, T>(
        dataset: Dataset,
        org: FileOrg,
        key: Vec<u8>,
        change: F,
    ) -> Result<T, ClientError>
    where
        F: std::future::Future<Output = Result<T, ClientError>>,
    {
        let (held, changed) = tokio::join!(Self::hold(&dataset, org, &key), change);
        held?;
        changed
    }

    /// What REWRITE and DELETE share: the open mode check, the record they
    /// change (see `target`) and the dataset; `Err` is the statement's
    /// status.
    fn changed(&mut self, fcd: &mut Fcd) -> Result<(Vec<u8>, Dataset), FileStatus> {
        if self.mode != Some(open_mode::IO) {
            self.last_read = None;
            return Err(status::NOT_IO);
        }
        let key = self.target(fcd)?;
        let dataset = self.dataset.clone().ok_or(status::NOT_FOUND)?;
        Ok((key, dataset))
    }

    /// REWRITE.
    pub fn rewrite(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        let (key, dataset) = match self.changed(fcd) {
            Ok(changed) => changed,
            Err(status) => return Ok(status),
        };
        let record = match self.record_to_write(fcd) {
            Ok(record) => record,
            Err(status) => return Ok(status),
        };
        let options = match self.org {
            FileOrg::Sequential => RplOptions::addressed(Processing::Direct).update(),
            _ => RplOptions::direct().update(),
        };
        let update = {
            let (dataset, record) = (dataset.clone(), record.clone());
            async move {
                let (_, answer) = dataset.put_with_status(UPDATE, options, 0, record).await?;
                Ok(answer)
            }
        };
        match link.run(Self::held_change(dataset, self.org, key.clone(), update)) {
            Ok(answer) => {
                let org = self.org;
                if let Some(ahead) = self.read_ahead.iter_mut().find(|r| key_of(org, r) == key) {
                    ahead.data = record;
                }
                Ok(Self::write_status(&answer))
            }
            Err(failure) => self.routine("REWRITE", failure),
        }
    }

    /// DELETE.
    pub fn delete(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        let (key, dataset) = match self.changed(fcd) {
            Ok(changed) => changed,
            Err(status) => return Ok(status),
        };
        let erase = {
            let dataset = dataset.clone();
            async move { dataset.erase(UPDATE).await }
        };
        match link.run(Self::held_change(dataset, self.org, key.clone(), erase)) {
            Ok(()) => {
                let org = self.org;
                self.read_ahead.retain(|r| key_of(org, r) != key);
                Ok(status::OK)
            }
            Err(failure) => self.routine("DELETE", failure),
        }
    }

    /// The file's state after a lost connection: closed, so the program's
    /// next OPEN starts afresh.
    pub fn forget(&mut self, fcd: &mut Fcd) {
        self.drop_deferred();
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
