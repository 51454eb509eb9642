//! An open dataset and its requests.

mod failover;
mod resume;

use crate::catalog::expect_ok;
use crate::connection::Connection;
use crate::error::{ClientError, VsamError};
use failover::{Kind, Opened, open_on};
use std::sync::Arc;
use vsam_protocol::{
    Answer, ChainedRecord, DatasetSpec, Get, Intent, Open, OpenIntent, Organization, Point, Put,
    PutChain, Record, Request, RplOptions, Status, StringRef,
};

/// What a PUT CHAIN did: it stops at the first record that fails, so the
/// caller knows exactly which records are stored.
#[derive(Debug)]
pub struct ChainOutcome {
    /// The records written, in order (key and RBA/RRN; all durable).
    pub written: Vec<Record>,
    /// Why the record after them was not written, if the chain stopped.
    pub failure: Option<VsamError>,
}

/// Room left in a frame for the request's own fields.
const FRAME_MARGIN: usize = 1024;

/// A dataset opened on a connection. Requests name a string (0 up to the
/// count given at open); each string keeps its own position. On a
/// connection that fails over, the dataset is opened again on the next
/// server when its own is lost, and its strings go on where they were (see
/// `resume`). Clones share the open dataset.
#[derive(Clone)]
pub struct Dataset {
    conn: Connection,
    spec: DatasetSpec,
    open: Arc<Opened>,
}

impl Dataset {
    /// OPENs a dataset with `strings` strings.
    pub async fn open(
        conn: &Connection,
        name: &str,
        intent: OpenIntent,
        strings: u16,
    ) -> Result<Self, ClientError> {
        Self::open_with_access(conn, name, intent, 0, strings).await
    }

    /// OPENs a dataset with ACB access bits ([`vsam_protocol::access`]):
    /// e.g. `RESET` to empty it as it opens for output, `COMMIT` for
    /// `commit` durability (its changes join the connection's unit of work:
    /// see [`crate::commit`]).
    pub async fn open_with_access(
        conn: &Connection,
        name: &str,
        intent: OpenIntent,
        access: u8,
        strings: u16,
    ) -> Result<Self, ClientError> {
        if access & vsam_protocol::access::COMMIT != 0 {
            crate::unit::check_units(conn, "OPEN")?;
        }
        let request = Open {
            dataset: name.to_string(),
            intent,
            access,
            strings,
        };
        let (link, handle, spec) = open_on(conn, &request).await?;
        Ok(Self {
            conn: conn.clone(),
            spec,
            open: Arc::new(Opened::new(request, link, handle)),
        })
    }

    /// The catalog entry returned by OPEN.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// The handle OPEN returned (on the server in use), for building raw
    /// requests.
    pub fn handle(&self) -> u32 {
        self.open.at().1
    }

    /// The connection it is open on.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    async fn records(
        &self,
        string: u16,
        kind: Kind,
        name: &'static str,
        build: impl FnMut(StringRef) -> Request,
    ) -> Result<Vec<Record>, ClientError> {
        self.records_and_status(string, kind, name, build)
            .await
            .map(|(records, _)| records)
    }

    async fn records_and_status(
        &self,
        string: u16,
        kind: Kind,
        name: &'static str,
        build: impl FnMut(StringRef) -> Request,
    ) -> Result<(Vec<Record>, Status), ClientError> {
        let answer = self.exchange(string, kind, build).await?;
        match expect_ok(answer, &self.spec.name, name)? {
            Answer::Result { records, status } => Ok((records, status)),
            other => Err(ClientError::Unexpected {
                request: name,
                detail: format!("{other:?}"),
            }),
        }
    }

    /// GET with every field given: `key` for KSDS, `address` for an RBA or
    /// RRN, `max_records` > 1 for a batched sequential GET. Most callers
    /// read better with [`Dataset::read`], [`Dataset::next`],
    /// [`Dataset::browse`] or [`Dataset::reading`].
    pub async fn get(
        &self,
        string: u16,
        options: RplOptions,
        key: &[u8],
        generic_length: u16,
        address: u64,
        max_records: u32,
    ) -> Result<Vec<Record>, ClientError> {
        self.get_with_status(string, options, key, generic_length, address, max_records)
            .await
            .map(|(records, _)| records)
    }

    /// A GET to build with named parts: `ds.reading(RplOptions::direct())
    /// .key(b"K001").records()`. Unset parts are string 0, no key, address
    /// 0 and one record.
    pub fn reading(&self, options: RplOptions) -> Read<'_> {
        Read {
            dataset: self,
            string: 0,
            options,
            key: Vec::new(),
            generic_length: 0,
            address: 0,
            max_records: 1,
        }
    }

    /// The record with this key: a direct keyed GET on string 0.
    pub async fn read(&self, key: &[u8]) -> Result<Record, ClientError> {
        self.reading(RplOptions::direct()).key(key).record().await
    }

    /// The record with this key, held for update (GET UPD) on string 0
    /// until a PUT UPD, ERASE or ENDREQ lets it go.
    pub async fn read_for_update(&self, key: &[u8]) -> Result<Record, ClientError> {
        self.reading(RplOptions::direct().update())
            .key(key)
            .record()
            .await
    }

    /// The next record in sequence on string 0 (from the start, or from
    /// where a POINT or an earlier GET left the string).
    pub async fn next(&self) -> Result<Record, ClientError> {
        self.reading(RplOptions::sequential()).record().await
    }

    /// Up to `batch` next records in sequence on string 0, in one request.
    pub async fn browse(&self, batch: u32) -> Result<Vec<Record>, ClientError> {
        self.reading(RplOptions::sequential())
            .batch(batch)
            .records()
            .await
    }

    /// GET, also returning the successful status: FDBK X'08' (R15=0) says
    /// another record with the same alternate key follows (through a path).
    pub async fn get_with_status(
        &self,
        string: u16,
        options: RplOptions,
        key: &[u8],
        generic_length: u16,
        address: u64,
        max_records: u32,
    ) -> Result<(Vec<Record>, Status), ClientError> {
        let get = Get {
            target: StringRef { handle: 0, string },
            options: options.to_bits(),
            key: key.to_vec(),
            generic_length,
            address,
            max_records,
        };
        self.send_get(get).await
    }

    async fn send_get(&self, get: Get) -> Result<(Vec<Record>, Status), ClientError> {
        let kind = match RplOptions::parse(get.options) {
            Ok(options) if options.intent == Intent::Update => Kind::Hold,
            _ => Kind::Look,
        };
        let string = get.target.string;
        self.records_and_status(string, kind, "GET", |target| {
            Request::Get(Get {
                target,
                ..get.clone()
            })
        })
        .await
    }

    /// PUT, also returning the successful status: FDBK X'08' (R15=0) says
    /// the record's alternate key is now held by more than one record.
    pub async fn put_with_status(
        &self,
        string: u16,
        options: RplOptions,
        address: u64,
        record: Vec<u8>,
    ) -> Result<(Record, Status), ClientError> {
        let kind = match options.intent {
            Intent::Update => Kind::ChangeHeld,
            _ => Kind::Change,
        };
        let (mut records, status) = self
            .records_and_status(string, kind, "PUT", {
                // A write is built once: it is never sent again.
                let mut record = Some(record);
                move |target| {
                    Request::Put(Put {
                        target,
                        options: options.to_bits(),
                        address,
                        record: record.take().unwrap_or_default(),
                    })
                }
            })
            .await?;
        Ok((records.pop().unwrap_or_default(), status))
    }

    /// PUT a record: insert, or update after a GET UPD (`options.update()`).
    /// Returns the written record's key and RBA/RRN.
    pub async fn put(
        &self,
        string: u16,
        options: RplOptions,
        address: u64,
        record: Vec<u8>,
    ) -> Result<Record, ClientError> {
        self.put_with_status(string, options, address, record)
            .await
            .map(|(record, _)| record)
    }

    /// PUT CHAIN: inserts `records` in order on one string, each as a PUT
    /// with `options` would, until the first that fails. With UPD in
    /// `options` (protocol 1.4) each record instead replaces the record
    /// under its key (a KSDS record's key field, else the RRN or RBA in
    /// `address`), as a GET UPD then a PUT UPD would. The server runs a
    /// chain as one job with one commit, so loading costs a round trip and
    /// a sync per chain instead of per record. Records are sent in chains
    /// that fit the server's `max_batch` and frame limit; a server speaking
    /// an older protocol gets them as single requests (same outcome,
    /// slower).
    pub async fn put_chain(
        &self,
        string: u16,
        options: RplOptions,
        records: Vec<ChainedRecord>,
    ) -> Result<ChainOutcome, ClientError> {
        let mut outcome = ChainOutcome {
            written: Vec::with_capacity(records.len()),
            failure: None,
        };
        let welcome = self.conn.welcome();
        let one_by_one =
            welcome.minor == 0 || (options.intent == Intent::Update && welcome.minor < 4);
        if one_by_one {
            for chained in records {
                let done = match options.intent {
                    Intent::Update => self.update_one(string, options, chained).await,
                    _ => {
                        self.put(string, options, chained.address, chained.record)
                            .await
                    }
                };
                match done {
                    Ok(record) => outcome.written.push(record),
                    Err(ClientError::Vsam(failure)) => {
                        outcome.failure = Some(failure);
                        break;
                    }
                    Err(other) => return Err(other),
                }
            }
            return Ok(outcome);
        }
        let max_records = welcome.max_batch.max(1) as usize;
        let max_bytes = (welcome.max_frame as usize).saturating_sub(FRAME_MARGIN);
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut chain = Vec::new();
            let mut bytes = 0;
            while let Some(next) = records.peek() {
                let size = 12 + next.record.len();
                if chain.len() == max_records || (!chain.is_empty() && bytes + size > max_bytes) {
                    break;
                }
                bytes += size;
                chain.extend(records.next());
            }
            let (written, failure) = self.send_chain(string, options, chain).await?;
            outcome.written.extend(written);
            if failure.is_some() {
                outcome.failure = failure;
                break;
            }
        }
        Ok(outcome)
    }

    /// One record of an update chain sent as GET UPD of its key and PUT
    /// UPD (for a server older than 1.4).
    async fn update_one(
        &self,
        string: u16,
        options: RplOptions,
        chained: ChainedRecord,
    ) -> Result<Record, ClientError> {
        let key = match self.spec.organization {
            Organization::Ksds => {
                let start = self.spec.key_offset as usize;
                let end = start + usize::from(self.spec.key_length);
                chained.record.get(start..end).unwrap_or_default()
            }
            _ => &[],
        };
        self.get(string, options, key, 0, chained.address, 1)
            .await?;
        self.put(string, options, 0, chained.record).await
    }

    async fn send_chain(
        &self,
        string: u16,
        options: RplOptions,
        records: Vec<ChainedRecord>,
    ) -> Result<(Vec<Record>, Option<VsamError>), ClientError> {
        let answer = self
            .exchange(string, Kind::Change, {
                // A write is built once: it is never sent again.
                let mut records = Some(records);
                move |target| {
                    Request::PutChain(PutChain {
                        target,
                        options: options.to_bits(),
                        records: records.take().unwrap_or_default(),
                    })
                }
            })
            .await?;
        match answer {
            Answer::Result { status, records } => {
                let failure = (!status.is_ok()).then(|| VsamError {
                    dataset: self.spec.name.clone(),
                    request: "PUT CHAIN",
                    status,
                });
                Ok((records, failure))
            }
            Answer::ProtocolError { code, message, .. } => {
                Err(ClientError::Protocol { code, message })
            }
            other => Err(ClientError::Unexpected {
                request: "PUT CHAIN",
                detail: format!("{other:?}"),
            }),
        }
    }

    /// ERASE the record held by the string's GET UPD.
    pub async fn erase(&self, string: u16) -> Result<(), ClientError> {
        self.records(string, Kind::ChangeHeld, "ERASE", |target| Request::Erase {
            target,
            options: 0,
        })
        .await
        .map(drop)
    }

    /// POINT the string at a key, RBA or RRN (or the end, with LRD).
    pub async fn point(
        &self,
        string: u16,
        options: RplOptions,
        key: &[u8],
        generic_length: u16,
        address: u64,
    ) -> Result<(), ClientError> {
        self.records(string, Kind::Look, "POINT", |target| {
            Request::Point(Point {
                target,
                options: options.to_bits(),
                key: key.to_vec(),
                generic_length,
                address,
            })
        })
        .await
        .map(drop)
    }

    /// ENDREQ: drop the string's position and held record.
    pub async fn endreq(&self, string: u16) -> Result<(), ClientError> {
        self.records(string, Kind::Look, "ENDREQ", |target| Request::EndReq {
            target,
        })
        .await
        .map(drop)
    }

    /// CLOSE the dataset. On a server that was lost it is closed already.
    pub async fn close(self) -> Result<(), ClientError> {
        let (link, handle) = self.open.at();
        match link.call(Request::Close { handle }).await {
            Err(ClientError::Closed(_)) if self.conn.fails_over() => Ok(()),
            answer => expect_ok(answer?, &self.spec.name, "CLOSE").map(drop),
        }
    }
}

/// A GET being built ([`Dataset::reading`]): each part named, the rest left
/// at string 0, no key, address 0, one record.
#[must_use = "a GET is sent by records(), record() or with_status()"]
pub struct Read<'a> {
    dataset: &'a Dataset,
    string: u16,
    options: RplOptions,
    key: Vec<u8>,
    generic_length: u16,
    address: u64,
    max_records: u32,
}

impl Read<'_> {
    /// On this string instead of string 0.
    pub fn on(mut self, string: u16) -> Self {
        self.string = string;
        self
    }

    /// The search key (a KSDS, or a path's alternate key).
    pub fn key(mut self, key: &[u8]) -> Self {
        self.key = key.to_vec();
        self
    }

    /// Only the first `length` bytes of the key count (with
    /// `RplOptions::generic()`).
    pub fn generic(mut self, length: u16) -> Self {
        self.generic_length = length;
        self
    }

    /// The RBA (ESDS) or relative record number (RRDS) to read.
    pub fn at(mut self, address: u64) -> Self {
        self.address = address;
        self
    }

    /// Up to `records` records in one answer (sequential GETs).
    pub fn batch(mut self, records: u32) -> Self {
        self.max_records = records;
        self
    }

    /// Sends the GET; the records it answered.
    pub async fn records(self) -> Result<Vec<Record>, ClientError> {
        self.with_status().await.map(|(records, _)| records)
    }

    /// Sends the GET; the one record it answered.
    pub async fn record(self) -> Result<Record, ClientError> {
        self.records()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Unexpected {
                request: "GET",
                detail: "a successful GET answered no record".into(),
            })
    }

    /// Sends the GET; its records and its successful status (FDBK X'08'
    /// through a path says another record with the same alternate key
    /// follows).
    pub async fn with_status(self) -> Result<(Vec<Record>, Status), ClientError> {
        let get = Get {
            target: StringRef {
                handle: 0,
                string: self.string,
            },
            options: self.options.to_bits(),
            key: self.key,
            generic_length: self.generic_length,
            address: self.address,
            max_records: self.max_records,
        };
        self.dataset.send_get(get).await
    }
}
