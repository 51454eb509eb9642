//! Requests and answers, and their payload encodings.
//!
//! Every frame is `length:u32 kind:u8 id:u32 payload`; the kind names one of
//! the messages below. Answers use the request kind with the high bit set,
//! except that any request may be answered by a `Result` (carrying an error
//! status) or a `ProtocolError`. `docs/protocol.md` is the byte-level spec.

use crate::codes::Status;
use crate::wire::{DecodeError, Reader, put_bytes, put_string};
use bytes::{BufMut, BytesMut};

/// Message kind bytes.
pub mod kind {
    /// Handshake request.
    pub const HELLO: u8 = 0x01;
    /// Liveness check.
    pub const PING: u8 = 0x02;
    /// Open a dataset.
    pub const OPEN: u8 = 0x10;
    /// Close an open dataset.
    pub const CLOSE: u8 = 0x11;
    /// Retrieve records.
    pub const GET: u8 = 0x20;
    /// Insert or update a record.
    pub const PUT: u8 = 0x21;
    /// Erase the record held by GET UPD.
    pub const ERASE: u8 = 0x22;
    /// Position a string.
    pub const POINT: u8 = 0x23;
    /// End a request: drop position and exclusive control.
    pub const ENDREQ: u8 = 0x24;
    /// Insert many records on one string (protocol 1.1).
    pub const PUT_CHAIN: u8 = 0x25;
    /// End the connection's unit of work, making it durable (protocol 1.4).
    pub const COMMIT: u8 = 0x26;
    /// Undo the connection's unit of work (protocol 1.4).
    pub const ROLLBACK: u8 = 0x27;
    /// Define a dataset in the catalog.
    pub const DEFINE: u8 = 0x30;
    /// Delete a dataset and its records.
    pub const DELETE: u8 = 0x31;
    /// Describe one dataset.
    pub const INFO: u8 = 0x32;
    /// List datasets matching a pattern.
    pub const LIST: u8 = 0x33;
    /// Define an alternate index over a base cluster (protocol 1.2).
    pub const DEFINE_AIX: u8 = 0x34;
    /// Define a path through an alternate index (protocol 1.2).
    pub const DEFINE_PATH: u8 = 0x35;
    /// Build an alternate index from its base cluster (protocol 1.2).
    pub const BLDINDEX: u8 = 0x36;
    /// List catalog entries with what each is: cluster, alternate index or
    /// path (protocol 1.6).
    pub const LISTCAT: u8 = 0x37;
    /// Give a catalog entry a new name (IDCAMS ALTER NEWNAME, protocol 1.6).
    pub const RENAME: u8 = 0x38;
    /// Handshake answer.
    pub const WELCOME: u8 = 0x81;
    /// Status and records: the answer to data requests and to any failure.
    pub const RESULT: u8 = 0x82;
    /// Successful OPEN.
    pub const OPENED: u8 = 0x83;
    /// Catalog entries (INFO, LIST, DEFINE).
    pub const CATALOG: u8 = 0x84;
    /// Catalog entries with their relations (LISTCAT, protocol 1.6).
    pub const ENTRIES: u8 = 0x85;
    /// The request or the connection failed at the protocol level.
    pub const PROTOCOL_ERROR: u8 = 0xFF;
}

/// Dataset organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Organization {
    /// Key-sequenced.
    Ksds,
    /// Entry-sequenced.
    Esds,
    /// Relative record, fixed-length slots.
    Rrds,
    /// Variable-length relative record (protocol 1.5): records of any
    /// length up to the maximum, addressed by relative record number.
    Vrrds,
}

impl Organization {
    /// Wire value.
    pub fn code(self) -> u8 {
        match self {
            Organization::Ksds => 1,
            Organization::Esds => 2,
            Organization::Rrds => 3,
            Organization::Vrrds => 4,
        }
    }

    /// From the wire value.
    pub fn from_code(code: u8) -> Result<Self, DecodeError> {
        match code {
            1 => Ok(Organization::Ksds),
            2 => Ok(Organization::Esds),
            3 => Ok(Organization::Rrds),
            4 => Ok(Organization::Vrrds),
            other => Err(DecodeError::BadValue {
                field: "organization",
                problem: format!("{other} is not 1 (KSDS), 2 (ESDS), 3 (RRDS) or 4 (VRRDS)"),
            }),
        }
    }

    /// `ksds`, `esds`, `rrds` or `vrrds`.
    pub fn name(self) -> &'static str {
        match self {
            Organization::Ksds => "ksds",
            Organization::Esds => "esds",
            Organization::Rrds => "rrds",
            Organization::Vrrds => "vrrds",
        }
    }

    /// Addressed by relative record number (RRDS and VRRDS).
    pub fn relative(self) -> bool {
        matches!(self, Organization::Rrds | Organization::Vrrds)
    }

    /// The protocol minor version a client needs to see this organization.
    pub fn minor(self) -> u16 {
        match self {
            Organization::Vrrds => 5,
            _ => 0,
        }
    }
}

impl std::str::FromStr for Organization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ksds" | "indexed" => Ok(Organization::Ksds),
            "esds" | "nonindexed" => Ok(Organization::Esds),
            "rrds" | "numbered" => Ok(Organization::Rrds),
            "vrrds" => Ok(Organization::Vrrds),
            _ => Err(format!(
                "unknown organization {s:?}: use ksds, esds, rrds or vrrds"
            )),
        }
    }
}

/// What an OPEN allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenIntent {
    /// Read only: GET and POINT.
    Input,
    /// Load: PUT-insert only.
    Output,
    /// Everything: GET, PUT (insert and update), ERASE, POINT.
    Update,
}

impl OpenIntent {
    /// Wire value.
    pub fn code(self) -> u8 {
        match self {
            OpenIntent::Input => 0,
            OpenIntent::Output => 1,
            OpenIntent::Update => 2,
        }
    }

    /// From the wire value.
    pub fn from_code(code: u8) -> Result<Self, DecodeError> {
        match code {
            0 => Ok(OpenIntent::Input),
            1 => Ok(OpenIntent::Output),
            2 => Ok(OpenIntent::Update),
            other => Err(DecodeError::BadValue {
                field: "intent",
                problem: format!("{other} is not 0 (input), 1 (output) or 2 (update)"),
            }),
        }
    }
}

/// ACB access option bits of an OPEN (MACRF); zero allows every access.
pub mod access {
    /// Keyed access allowed.
    pub const KEY: u8 = 1 << 0;
    /// Addressed access allowed.
    pub const ADR: u8 = 1 << 1;
    /// Direct processing allowed.
    pub const DIR: u8 = 1 << 2;
    /// Sequential processing allowed.
    pub const SEQ: u8 = 1 << 3;
    /// Skip-sequential processing allowed.
    pub const SKP: u8 = 1 << 4;
    /// MACRF=RST: empty the dataset as it is opened (OPEN OUTPUT of a
    /// reusable dataset; a COBOL OPEN OUTPUT). Needs intent output and no
    /// other open of the dataset.
    pub const RESET: u8 = 1 << 5;
    /// `commit` durability (protocol 1.4): the open's changes join the
    /// connection's unit of work, acknowledged once applied and durable at
    /// the commit point (COMMIT, CLOSE), not one sync per write. Without
    /// it, `sync`: every change is durable before it is acknowledged.
    pub const COMMIT: u8 = 1 << 6;
    /// Every bit this version defines: an OPEN with another is refused
    /// (open error X'A0').
    pub const DEFINED: u8 = KEY | ADR | DIR | SEQ | SKP | RESET | COMMIT;
}

/// A catalog entry: what DEFINE creates and INFO/LIST report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Dataset name, e.g. `PROD.CUST.MASTER`.
    pub name: String,
    /// KSDS, ESDS or RRDS.
    pub organization: Organization,
    /// Offset of the prime key in a KSDS record.
    pub key_offset: u32,
    /// Length of the prime key (KSDS); 0 otherwise.
    pub key_length: u16,
    /// Smallest record length.
    pub min_record: u32,
    /// Largest record length (the slot size of an RRDS).
    pub max_record: u32,
    /// Code page of the record text.
    pub codepage: String,
    /// Backend holding the records; empty in DEFINE means "by route".
    pub backend: String,
    /// Record layout: the text of a COBOL copybook, or empty.
    pub layout: String,
}

impl DatasetSpec {
    /// The bytes this entry takes in a CATALOG answer (or an OPENED one):
    /// what a server filling a page of a LIST counts.
    pub fn encoded_len(&self) -> usize {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.len()
    }

    fn encode(&self, out: &mut BytesMut) {
        put_string(out, &self.name);
        out.put_u8(self.organization.code());
        out.put_u32(self.key_offset);
        out.put_u16(self.key_length);
        out.put_u32(self.min_record);
        out.put_u32(self.max_record);
        put_string(out, &self.codepage);
        put_string(out, &self.backend);
        put_bytes(out, self.layout.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            name: r.string("name")?,
            organization: Organization::from_code(r.u8("organization")?)?,
            key_offset: r.u32("key_offset")?,
            key_length: r.u16("key_length")?,
            min_record: r.u32("min_record")?,
            max_record: r.u32("max_record")?,
            codepage: r.string("codepage")?,
            backend: r.string("backend")?,
            layout: String::from_utf8(r.bytes("layout")?)
                .map_err(|_| DecodeError::NotUtf8("layout"))?,
        })
    }
}

/// DEFINE ALTERNATEINDEX: an index over another field of a KSDS or ESDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AixSpec {
    /// The alternate index's name.
    pub name: String,
    /// RELATE: the base cluster.
    pub base: String,
    /// Offset of the alternate key in the base record.
    pub key_offset: u32,
    /// Length of the alternate key.
    pub key_length: u16,
    /// UNIQUEKEY (true) or NONUNIQUEKEY.
    pub unique: bool,
    /// UPGRADE: base writes keep the index in step (NOUPGRADE: only
    /// BLDINDEX fills it).
    pub upgrade: bool,
}

impl AixSpec {
    fn encode(&self, out: &mut BytesMut) {
        put_string(out, &self.name);
        put_string(out, &self.base);
        out.put_u32(self.key_offset);
        out.put_u16(self.key_length);
        out.put_u8(u8::from(self.unique));
        out.put_u8(u8::from(self.upgrade));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            name: r.string("name")?,
            base: r.string("base")?,
            key_offset: r.u32("key_offset")?,
            key_length: r.u16("key_length")?,
            unique: r.u8("unique")? != 0,
            upgrade: r.u8("upgrade")? != 0,
        })
    }
}

/// DEFINE PATH: a name that opens a base cluster through an alternate
/// index, so that keyed requests use the alternate key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSpec {
    /// The path's name.
    pub name: String,
    /// PATHENTRY: the alternate index.
    pub aix: String,
}

/// What a catalog entry is (protocol 1.6): IDCAMS's LISTCAT shows an
/// alternate index's base and a path's index, and its DELETE picks entries
/// by type (CLUSTER, ALTERNATEINDEX, PATH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryType {
    /// A cluster: a KSDS, ESDS, RRDS or VRRDS holding records.
    Cluster,
    /// An alternate index over `base`.
    Aix {
        /// RELATE: the base cluster.
        base: String,
        /// UNIQUEKEY (true) or NONUNIQUEKEY.
        unique: bool,
        /// UPGRADE (true) or NOUPGRADE.
        upgrade: bool,
    },
    /// A path through the alternate index `aix`.
    Path {
        /// PATHENTRY: the alternate index.
        aix: String,
    },
}

/// One entry of a LISTCAT answer: the catalog entry and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The entry's attributes, as INFO gives them.
    pub spec: DatasetSpec,
    /// Cluster, alternate index or path.
    pub entry_type: EntryType,
}

impl CatalogEntry {
    /// The bytes this entry takes in an ENTRIES answer: what a server
    /// filling a page of a LISTCAT counts.
    pub fn encoded_len(&self) -> usize {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.len()
    }

    fn encode(&self, out: &mut BytesMut) {
        self.spec.encode(out);
        match &self.entry_type {
            EntryType::Cluster => out.put_u8(0),
            EntryType::Aix {
                base,
                unique,
                upgrade,
            } => {
                out.put_u8(1);
                put_string(out, base);
                out.put_u8(u8::from(*unique));
                out.put_u8(u8::from(*upgrade));
            }
            EntryType::Path { aix } => {
                out.put_u8(2);
                put_string(out, aix);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let spec = DatasetSpec::decode(r)?;
        let entry_type = match r.u8("entry_type")? {
            0 => EntryType::Cluster,
            1 => EntryType::Aix {
                base: r.string("base")?,
                unique: r.u8("unique")? != 0,
                upgrade: r.u8("upgrade")? != 0,
            },
            2 => EntryType::Path {
                aix: r.string("aix")?,
            },
            other => {
                return Err(DecodeError::BadValue {
                    field: "entry_type",
                    problem: format!("{other} is not 0 (cluster), 1 (alternate index) or 2 (path)"),
                });
            }
        };
        Ok(Self { spec, entry_type })
    }
}

/// Handshake, sent first by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol major version the client speaks.
    pub major: u16,
    /// Protocol minor version.
    pub minor: u16,
    /// Largest frame the client accepts.
    pub max_frame: u32,
    /// Client name and version, for the server's log.
    pub client: String,
    /// A token naming the client to the server's access rules (protocol
    /// 1.3): sent only when the client has one, so a 1.2 server still
    /// understands a HELLO without it.
    pub token: Option<String>,
}

/// Handshake answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// Protocol major version of the server.
    pub major: u16,
    /// Protocol minor version of the server.
    pub minor: u16,
    /// Largest frame the server accepts.
    pub max_frame: u32,
    /// Most records one batched GET returns.
    pub max_batch: u32,
    /// Largest record any dataset may define.
    pub max_record: u32,
    /// Server name and version.
    pub server: String,
}

/// Names one string (RPL position) of an open dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StringRef {
    /// Handle from OPENED.
    pub handle: u32,
    /// String number, below the count given at OPEN.
    pub string: u16,
}

/// Open a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Dataset name.
    pub dataset: String,
    /// Input, output or update.
    pub intent: OpenIntent,
    /// ACB access bits (see [`access`]); 0 allows all.
    pub access: u8,
    /// Number of strings (STRNO); 0 means 1.
    pub strings: u16,
}

/// GET: retrieve one record, or up to `max_records` in sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// The string.
    pub target: StringRef,
    /// RPL options word.
    pub options: u32,
    /// Key search argument (KSDS).
    pub key: Vec<u8>,
    /// Generic key length with GEN.
    pub generic_length: u16,
    /// RBA (ESDS, ADR) or RRN (RRDS, KEY).
    pub address: u64,
    /// Batch size for sequential GET; 0 or 1 means one record.
    pub max_records: u32,
}

/// PUT: insert, or update the record held by GET UPD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    /// The string.
    pub target: StringRef,
    /// RPL options word.
    pub options: u32,
    /// RRN for a direct RRDS insert.
    pub address: u64,
    /// The record.
    pub record: Vec<u8>,
}

/// PUT CHAIN (protocol 1.1): a chain of inserts on one string, like a
/// chain of RPLs (NXTRPL) under one request. It exists so that loading a
/// dataset costs one round trip and one commit per chain, not per record.
/// The records are inserted in order as PUTs with the same options; the
/// chain stops at the first that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutChain {
    /// The string.
    pub target: StringRef,
    /// RPL options word (insert options: UPD is refused).
    pub options: u32,
    /// The records, each with its RRN for a direct RRDS insert (else 0).
    pub records: Vec<ChainedRecord>,
}

/// One record of a [`PutChain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedRecord {
    /// RRN for a direct RRDS insert; 0 otherwise.
    pub address: u64,
    /// The record.
    pub record: Vec<u8>,
}

/// POINT: position a string for sequential processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// The string.
    pub target: StringRef,
    /// RPL options word.
    pub options: u32,
    /// Key search argument (KSDS).
    pub key: Vec<u8>,
    /// Generic key length with GEN.
    pub generic_length: u16,
    /// RBA (ESDS) or RRN (RRDS).
    pub address: u64,
}

/// Everything a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Handshake.
    Hello(Hello),
    /// Liveness check.
    Ping,
    /// Open a dataset.
    Open(Open),
    /// Close a handle.
    Close {
        /// The handle OPEN answered.
        handle: u32,
    },
    /// Retrieve.
    Get(Get),
    /// Insert or update.
    Put(Put),
    /// Insert a chain of records (protocol 1.1).
    PutChain(PutChain),
    /// Erase the held record.
    Erase {
        /// The handle and the string holding the record.
        target: StringRef,
        /// RPL option bits (see [`RplOptions`](crate::RplOptions)).
        options: u32,
    },
    /// Position.
    Point(Point),
    /// End request.
    EndReq {
        /// The handle and the string whose position and hold end.
        target: StringRef,
    },
    /// Catalog: define.
    Define(DatasetSpec),
    /// Catalog: delete.
    Delete {
        /// The entry's name.
        name: String,
    },
    /// Catalog: describe.
    Info {
        /// The entry's name.
        name: String,
    },
    /// Catalog: list by pattern (`*` matches within a qualifier, `**` across).
    List {
        /// The names to list.
        pattern: String,
        /// Asks for one page of the list (protocol 1.7): the entries whose
        /// names sort after this one (`""`: from the first), as many as fit
        /// the client's frame. Without it, every match in one answer, which
        /// a large catalog may not fit.
        after: Option<String>,
    },
    /// Catalog: define an alternate index (protocol 1.2).
    DefineAix(AixSpec),
    /// Catalog: define a path (protocol 1.2).
    DefinePath(PathSpec),
    /// Rebuild an alternate index from its base (protocol 1.2).
    BldIndex {
        /// The alternate index's name.
        aix: String,
    },
    /// Catalog: list by pattern, saying what each entry is (protocol 1.6).
    Listcat {
        /// The names to list.
        pattern: String,
        /// One page, as [`Request::List`]'s `after` (protocol 1.7).
        after: Option<String>,
    },
    /// Catalog: rename an entry, its records going with it (IDCAMS ALTER
    /// NEWNAME, protocol 1.6).
    Rename {
        /// The entry's name now.
        name: String,
        /// The name it takes.
        new_name: String,
    },
    /// Make the connection's unit of work durable and end it (protocol 1.4).
    Commit,
    /// Undo the connection's unit of work and end it (protocol 1.4).
    Rollback,
}

/// One record in a result: its RBA/RRN (0 for KSDS), key and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// RBA (ESDS) or RRN (RRDS); 0 for KSDS.
    pub address: u64,
    /// The record's key (KSDS prime key; 8-byte RBA/RRN otherwise).
    pub key: Vec<u8>,
    /// The record bytes (empty in PUT answers).
    pub data: Vec<u8>,
}

/// Everything a server may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Handshake answer.
    Welcome(Welcome),
    /// Status and records.
    Result {
        /// R15, FDBK and the server's message.
        status: Status,
        /// The records a GET or PUT answers (none for other requests).
        records: Vec<Record>,
    },
    /// OPEN succeeded.
    Opened {
        /// What later requests name the open dataset by.
        handle: u32,
        /// The dataset's definition.
        dataset: DatasetSpec,
    },
    /// Catalog entries.
    Catalog {
        /// The entries, in name order.
        datasets: Vec<DatasetSpec>,
    },
    /// Catalog entries with what each is (LISTCAT, protocol 1.6).
    Entries {
        /// The entries, in name order.
        entries: Vec<CatalogEntry>,
    },
    /// Protocol failure; `fatal` means the server closes the connection.
    ProtocolError {
        /// One of [`protocol_error`]'s codes.
        code: u16,
        /// The server closes the connection after this answer.
        fatal: bool,
        /// What was wrong, for a person.
        message: String,
    },
}

/// Protocol error codes.
pub mod protocol_error {
    /// The first frame was not a HELLO with the right magic.
    pub const NOT_A_CLIENT: u16 = 1;
    /// No common protocol version.
    pub const VERSION: u16 = 2;
    /// Frame longer than the negotiated maximum.
    pub const FRAME_TOO_LARGE: u16 = 3;
    /// The payload did not decode.
    pub const MALFORMED: u16 = 4;
    /// Unknown message kind.
    pub const UNKNOWN_KIND: u16 = 5;
    /// The server is shutting down.
    pub const SHUTTING_DOWN: u16 = 6;
    /// A request came before the handshake.
    pub const HANDSHAKE_REQUIRED: u16 = 7;
    /// The client is not authenticated: its token matches no client, or the
    /// server takes no anonymous clients (protocol 1.3).
    pub const NOT_AUTHENTICATED: u16 = 8;
    /// A limit of the server refused the connection: too many connections
    /// in all or from the client's address (protocol 1.3).
    pub const LIMIT: u16 = 9;
    /// The connection stayed idle, or a request did not arrive whole, within
    /// the server's time limit (protocol 1.3).
    pub const TIMEOUT: u16 = 10;
    /// An operator ended the connection (`vsamr admin disconnect`): its
    /// unit of work is rolled back and its records released.
    pub const DISCONNECTED: u16 = 11;
}

/// The smallest `max_frame` a client may announce in its HELLO: every
/// answer but a record batch fits it. A HELLO announcing less is refused
/// (`protocol_error::LIMIT`).
pub const MIN_CLIENT_FRAME: u32 = 64 * 1024;

/// The 4 bytes that open every HELLO payload.
pub const MAGIC: &[u8; 4] = b"VSAM";

/// Encoding of a message's payload, shared by both directions.
pub trait Message: Sized {
    /// The kind byte.
    fn kind(&self) -> u8;
    /// Appends the payload.
    fn encode_payload(&self, out: &mut BytesMut);
    /// Decodes a payload of the given kind.
    fn decode_payload(kind: u8, payload: &[u8]) -> Result<Self, DecodeError>;
}

fn put_target(out: &mut BytesMut, target: StringRef) {
    out.put_u32(target.handle);
    out.put_u16(target.string);
}

/// The optional `after` that ends a LIST or LISTCAT asking for a page
/// (protocol 1.7; absent before).
fn read_after(r: &mut Reader<'_>) -> Result<Option<String>, DecodeError> {
    match r.is_empty() {
        true => Ok(None),
        false => Ok(Some(r.string("after")?)),
    }
}

fn read_target(r: &mut Reader<'_>) -> Result<StringRef, DecodeError> {
    Ok(StringRef {
        handle: r.u32("handle")?,
        string: r.u16("string")?,
    })
}

impl Message for Request {
    fn kind(&self) -> u8 {
        match self {
            Request::Hello(_) => kind::HELLO,
            Request::Ping => kind::PING,
            Request::Open(_) => kind::OPEN,
            Request::Close { .. } => kind::CLOSE,
            Request::Get(_) => kind::GET,
            Request::Put(_) => kind::PUT,
            Request::PutChain(_) => kind::PUT_CHAIN,
            Request::Erase { .. } => kind::ERASE,
            Request::Point(_) => kind::POINT,
            Request::EndReq { .. } => kind::ENDREQ,
            Request::Define(_) => kind::DEFINE,
            Request::Delete { .. } => kind::DELETE,
            Request::Info { .. } => kind::INFO,
            Request::List { .. } => kind::LIST,
            Request::DefineAix(_) => kind::DEFINE_AIX,
            Request::DefinePath(_) => kind::DEFINE_PATH,
            Request::BldIndex { .. } => kind::BLDINDEX,
            Request::Listcat { .. } => kind::LISTCAT,
            Request::Rename { .. } => kind::RENAME,
            Request::Commit => kind::COMMIT,
            Request::Rollback => kind::ROLLBACK,
        }
    }

    fn encode_payload(&self, out: &mut BytesMut) {
        match self {
            Request::Hello(h) => {
                out.put_slice(MAGIC);
                out.put_u16(h.major);
                out.put_u16(h.minor);
                out.put_u32(h.max_frame);
                put_string(out, &h.client);
                if let Some(token) = &h.token {
                    put_string(out, token);
                }
            }
            Request::Ping | Request::Commit | Request::Rollback => {}
            Request::Open(o) => {
                put_string(out, &o.dataset);
                out.put_u8(o.intent.code());
                out.put_u8(o.access);
                out.put_u16(o.strings);
            }
            Request::Close { handle } => out.put_u32(*handle),
            Request::Get(g) => {
                put_target(out, g.target);
                out.put_u32(g.options);
                put_bytes(out, &g.key);
                out.put_u16(g.generic_length);
                out.put_u64(g.address);
                out.put_u32(g.max_records);
            }
            Request::Put(p) => {
                put_target(out, p.target);
                out.put_u32(p.options);
                out.put_u64(p.address);
                put_bytes(out, &p.record);
            }
            Request::PutChain(chain) => {
                put_target(out, chain.target);
                out.put_u32(chain.options);
                out.put_u32(chain.records.len() as u32);
                for record in &chain.records {
                    out.put_u64(record.address);
                    put_bytes(out, &record.record);
                }
            }
            Request::Erase { target, options } => {
                put_target(out, *target);
                out.put_u32(*options);
            }
            Request::Point(p) => {
                put_target(out, p.target);
                out.put_u32(p.options);
                put_bytes(out, &p.key);
                out.put_u16(p.generic_length);
                out.put_u64(p.address);
            }
            Request::EndReq { target } => put_target(out, *target),
            Request::Define(spec) => spec.encode(out),
            Request::Delete { name } | Request::Info { name } => put_string(out, name),
            Request::List { pattern, after } | Request::Listcat { pattern, after } => {
                put_string(out, pattern);
                if let Some(after) = after {
                    put_string(out, after);
                }
            }
            Request::Rename { name, new_name } => {
                put_string(out, name);
                put_string(out, new_name);
            }
            Request::DefineAix(spec) => spec.encode(out),
            Request::DefinePath(spec) => {
                put_string(out, &spec.name);
                put_string(out, &spec.aix);
            }
            Request::BldIndex { aix } => put_string(out, aix),
        }
    }

    fn decode_payload(kind: u8, payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let (request, name) = match kind {
            kind::HELLO => {
                let magic = r.raw("magic", 4)?;
                if magic != MAGIC {
                    return Err(DecodeError::BadValue {
                        field: "magic",
                        problem: format!(
                            "expected 0x5653414D (\"VSAM\"), got 0x{} ({:?})",
                            magic.iter().map(|b| format!("{b:02X}")).collect::<String>(),
                            magic
                                .iter()
                                .map(|&b| if b.is_ascii_graphic() || b == b' ' {
                                    char::from(b)
                                } else {
                                    '.'
                                })
                                .collect::<String>()
                        ),
                    });
                }
                let hello = Hello {
                    major: r.u16("major")?,
                    minor: r.u16("minor")?,
                    max_frame: r.u32("max_frame")?,
                    client: r.string("client")?,
                    token: match r.is_empty() {
                        true => None,
                        false => Some(r.string("token")?),
                    },
                };
                (Request::Hello(hello), "HELLO")
            }
            kind::PING => (Request::Ping, "PING"),
            kind::COMMIT => (Request::Commit, "COMMIT"),
            kind::ROLLBACK => (Request::Rollback, "ROLLBACK"),
            kind::OPEN => {
                let open = Open {
                    dataset: r.string("dataset")?,
                    intent: OpenIntent::from_code(r.u8("intent")?)?,
                    access: r.u8("access")?,
                    strings: r.u16("strings")?,
                };
                (Request::Open(open), "OPEN")
            }
            kind::CLOSE => (
                Request::Close {
                    handle: r.u32("handle")?,
                },
                "CLOSE",
            ),
            kind::GET => {
                let get = Get {
                    target: read_target(&mut r)?,
                    options: r.u32("options")?,
                    key: r.bytes("key")?,
                    generic_length: r.u16("generic_length")?,
                    address: r.u64("address")?,
                    max_records: r.u32("max_records")?,
                };
                (Request::Get(get), "GET")
            }
            kind::PUT => {
                let put = Put {
                    target: read_target(&mut r)?,
                    options: r.u32("options")?,
                    address: r.u64("address")?,
                    record: r.bytes("record")?,
                };
                (Request::Put(put), "PUT")
            }
            kind::PUT_CHAIN => {
                let target = read_target(&mut r)?;
                let options = r.u32("options")?;
                let records = r.list(12, |r| {
                    Ok(ChainedRecord {
                        address: r.u64("address")?,
                        record: r.bytes("record")?,
                    })
                })?;
                (
                    Request::PutChain(PutChain {
                        target,
                        options,
                        records,
                    }),
                    "PUT CHAIN",
                )
            }
            kind::ERASE => {
                let target = read_target(&mut r)?;
                (
                    Request::Erase {
                        target,
                        options: r.u32("options")?,
                    },
                    "ERASE",
                )
            }
            kind::POINT => {
                let point = Point {
                    target: read_target(&mut r)?,
                    options: r.u32("options")?,
                    key: r.bytes("key")?,
                    generic_length: r.u16("generic_length")?,
                    address: r.u64("address")?,
                };
                (Request::Point(point), "POINT")
            }
            kind::ENDREQ => (
                Request::EndReq {
                    target: read_target(&mut r)?,
                },
                "ENDREQ",
            ),
            kind::DEFINE => (Request::Define(DatasetSpec::decode(&mut r)?), "DEFINE"),
            kind::DELETE => (
                Request::Delete {
                    name: r.string("name")?,
                },
                "DELETE",
            ),
            kind::INFO => (
                Request::Info {
                    name: r.string("name")?,
                },
                "INFO",
            ),
            kind::LIST => (
                Request::List {
                    pattern: r.string("pattern")?,
                    after: read_after(&mut r)?,
                },
                "LIST",
            ),
            kind::LISTCAT => (
                Request::Listcat {
                    pattern: r.string("pattern")?,
                    after: read_after(&mut r)?,
                },
                "LISTCAT",
            ),
            kind::RENAME => (
                Request::Rename {
                    name: r.string("name")?,
                    new_name: r.string("new_name")?,
                },
                "RENAME",
            ),
            kind::DEFINE_AIX => (Request::DefineAix(AixSpec::decode(&mut r)?), "DEFINE AIX"),
            kind::DEFINE_PATH => (
                Request::DefinePath(PathSpec {
                    name: r.string("name")?,
                    aix: r.string("aix")?,
                }),
                "DEFINE PATH",
            ),
            kind::BLDINDEX => (
                Request::BldIndex {
                    aix: r.string("aix")?,
                },
                "BLDINDEX",
            ),
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish(name)?;
        Ok(request)
    }
}

/// What a request asks for, as a value: the server routes on it and names
/// it in every message, so that no code compares request names as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// [`Request::Hello`].
    Hello,
    /// [`Request::Ping`].
    Ping,
    /// [`Request::Open`].
    Open,
    /// [`Request::Close`].
    Close,
    /// [`Request::Get`].
    Get,
    /// [`Request::Put`].
    Put,
    /// [`Request::PutChain`].
    PutChain,
    /// [`Request::Erase`].
    Erase,
    /// [`Request::Point`].
    Point,
    /// [`Request::EndReq`].
    EndReq,
    /// [`Request::Define`].
    Define,
    /// [`Request::Delete`].
    Delete,
    /// [`Request::Info`].
    Info,
    /// [`Request::List`].
    List,
    /// [`Request::DefineAix`].
    DefineAix,
    /// [`Request::DefinePath`].
    DefinePath,
    /// [`Request::BldIndex`].
    BldIndex,
    /// [`Request::Listcat`].
    Listcat,
    /// [`Request::Rename`].
    Rename,
    /// [`Request::Commit`].
    Commit,
    /// [`Request::Rollback`].
    Rollback,
}

impl Verb {
    /// The verb of a request kind byte; `None` for a kind this version
    /// does not know.
    pub fn of_kind(kind_byte: u8) -> Option<Self> {
        Some(match kind_byte {
            kind::HELLO => Self::Hello,
            kind::PING => Self::Ping,
            kind::OPEN => Self::Open,
            kind::CLOSE => Self::Close,
            kind::GET => Self::Get,
            kind::PUT => Self::Put,
            kind::PUT_CHAIN => Self::PutChain,
            kind::ERASE => Self::Erase,
            kind::POINT => Self::Point,
            kind::ENDREQ => Self::EndReq,
            kind::DEFINE => Self::Define,
            kind::DELETE => Self::Delete,
            kind::INFO => Self::Info,
            kind::LIST => Self::List,
            kind::DEFINE_AIX => Self::DefineAix,
            kind::DEFINE_PATH => Self::DefinePath,
            kind::BLDINDEX => Self::BldIndex,
            kind::LISTCAT => Self::Listcat,
            kind::RENAME => Self::Rename,
            kind::COMMIT => Self::Commit,
            kind::ROLLBACK => Self::Rollback,
            _ => return None,
        })
    }

    /// The name VSAM and IDCAMS users know the request by (`GET`,
    /// `PUT CHAIN`, `DEFINE AIX`...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hello => "HELLO",
            Self::Ping => "PING",
            Self::Open => "OPEN",
            Self::Close => "CLOSE",
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::PutChain => "PUT CHAIN",
            Self::Erase => "ERASE",
            Self::Point => "POINT",
            Self::EndReq => "ENDREQ",
            Self::Define => "DEFINE",
            Self::Delete => "DELETE",
            Self::Info => "INFO",
            Self::List => "LIST",
            Self::DefineAix => "DEFINE AIX",
            Self::DefinePath => "DEFINE PATH",
            Self::BldIndex => "BLDINDEX",
            Self::Listcat => "LISTCAT",
            Self::Rename => "ALTER",
            Self::Commit => "COMMIT",
            Self::Rollback => "ROLLBACK",
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Request {
    /// What the request asks for.
    pub fn verb(&self) -> Verb {
        match self {
            Request::Hello(_) => Verb::Hello,
            Request::Ping => Verb::Ping,
            Request::Open(_) => Verb::Open,
            Request::Close { .. } => Verb::Close,
            Request::Get(_) => Verb::Get,
            Request::Put(_) => Verb::Put,
            Request::PutChain(_) => Verb::PutChain,
            Request::Erase { .. } => Verb::Erase,
            Request::Point(_) => Verb::Point,
            Request::EndReq { .. } => Verb::EndReq,
            Request::Define(_) => Verb::Define,
            Request::Delete { .. } => Verb::Delete,
            Request::Info { .. } => Verb::Info,
            Request::List { .. } => Verb::List,
            Request::DefineAix(_) => Verb::DefineAix,
            Request::DefinePath(_) => Verb::DefinePath,
            Request::BldIndex { .. } => Verb::BldIndex,
            Request::Listcat { .. } => Verb::Listcat,
            Request::Rename { .. } => Verb::Rename,
            Request::Commit => Verb::Commit,
            Request::Rollback => Verb::Rollback,
        }
    }

    /// The request's name as VSAM and IDCAMS users know it (`GET`, `DEFINE`...).
    pub fn name(&self) -> &'static str {
        self.verb().name()
    }
}

/// The name of a request kind, for messages (`UNKNOWN` for a kind this
/// version does not know).
pub fn request_name(kind_byte: u8) -> &'static str {
    Verb::of_kind(kind_byte).map_or("UNKNOWN", Verb::name)
}

fn put_status(out: &mut BytesMut, status: &Status) {
    out.put_u8(status.r15);
    out.put_u8(status.fdbk);
    out.put_u8(status.component);
    put_string(out, &status.message);
}

fn read_status(r: &mut Reader<'_>) -> Result<Status, DecodeError> {
    Ok(Status {
        r15: r.u8("r15")?,
        fdbk: r.u8("fdbk")?,
        component: r.u8("component")?,
        message: r.string("message")?,
    })
}

impl Message for Answer {
    fn kind(&self) -> u8 {
        match self {
            Answer::Welcome(_) => kind::WELCOME,
            Answer::Result { .. } => kind::RESULT,
            Answer::Opened { .. } => kind::OPENED,
            Answer::Catalog { .. } => kind::CATALOG,
            Answer::Entries { .. } => kind::ENTRIES,
            Answer::ProtocolError { .. } => kind::PROTOCOL_ERROR,
        }
    }

    fn encode_payload(&self, out: &mut BytesMut) {
        match self {
            Answer::Welcome(w) => {
                out.put_u16(w.major);
                out.put_u16(w.minor);
                out.put_u32(w.max_frame);
                out.put_u32(w.max_batch);
                out.put_u32(w.max_record);
                put_string(out, &w.server);
            }
            Answer::Result { status, records } => {
                put_status(out, status);
                out.put_u32(records.len() as u32);
                for record in records {
                    out.put_u64(record.address);
                    put_bytes(out, &record.key);
                    put_bytes(out, &record.data);
                }
            }
            Answer::Opened { handle, dataset } => {
                out.put_u32(*handle);
                dataset.encode(out);
            }
            Answer::Catalog { datasets } => {
                out.put_u32(datasets.len() as u32);
                for dataset in datasets {
                    dataset.encode(out);
                }
            }
            Answer::Entries { entries } => {
                out.put_u32(entries.len() as u32);
                for entry in entries {
                    entry.encode(out);
                }
            }
            Answer::ProtocolError {
                code,
                fatal,
                message,
            } => {
                out.put_u16(*code);
                out.put_u8(u8::from(*fatal));
                put_string(out, message);
            }
        }
    }

    fn decode_payload(kind: u8, payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let (answer, name) = match kind {
            kind::WELCOME => {
                let welcome = Welcome {
                    major: r.u16("major")?,
                    minor: r.u16("minor")?,
                    max_frame: r.u32("max_frame")?,
                    max_batch: r.u32("max_batch")?,
                    max_record: r.u32("max_record")?,
                    server: r.string("server")?,
                };
                (Answer::Welcome(welcome), "WELCOME")
            }
            kind::RESULT => {
                let status = read_status(&mut r)?;
                let records = r.list(16, |r| {
                    Ok(Record {
                        address: r.u64("address")?,
                        key: r.bytes("key")?,
                        data: r.bytes("record")?,
                    })
                })?;
                (Answer::Result { status, records }, "RESULT")
            }
            kind::OPENED => {
                let handle = r.u32("handle")?;
                let dataset = DatasetSpec::decode(&mut r)?;
                (Answer::Opened { handle, dataset }, "OPENED")
            }
            kind::CATALOG => {
                let datasets = r.list(24, DatasetSpec::decode)?;
                (Answer::Catalog { datasets }, "CATALOG")
            }
            kind::ENTRIES => {
                let entries = r.list(25, CatalogEntry::decode)?;
                (Answer::Entries { entries }, "ENTRIES")
            }
            kind::PROTOCOL_ERROR => {
                let code = r.u16("code")?;
                let fatal = r.u8("fatal")? != 0;
                let message = r.string("message")?;
                (
                    Answer::ProtocolError {
                        code,
                        fatal,
                        message,
                    },
                    "PROTOCOL_ERROR",
                )
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish(name)?;
        Ok(answer)
    }
}
