//! The session state machine: sequences of requests (catalog, OPEN,
//! GET/PUT/ERASE/POINT in every option combination, closes, raw payloads)
//! run by one session over the in-memory store. Nothing may panic, and with
//! a store that never fails no request may end in a physical error (R15=12)
//! or an R15 VSAM does not have.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use vsam_host::config::Config;
use vsam_host::runtime::call::{Call, CallResult, NativeStore, RecordStore, Reply};
use vsam_host::runtime::{BackendHandle, VersionInfo};
use vsam_host::security::Identity;
use vsam_host::vsam::{Client, Session, Shared};
use vsam_plugin_sdk::Backend;
use vsam_protocol::options::bits::*;
use vsam_protocol::{
    AixSpec, Answer, ChainedRecord, DatasetSpec, Get, Message, Open, OpenIntent, Organization,
    PathSpec, Point, Put, PutChain, Request, StringRef,
};

const NAMES: [&str; 6] = ["F.A", "F.B", "F.C", "F.AIX", "F.PATH", "F.A.X"];
const PATTERNS: [&str; 4] = ["**", "F.*", "F.A%", "*"];

fn name(index: u8) -> String {
    NAMES[usize::from(index) % NAMES.len()].to_string()
}

/// An RPL option word: an access, a processing mode and flags.
fn options(access: u8, processing: u8, flags: u8) -> u32 {
    let access = [KEY, ADR, KEY, CNV][usize::from(access % 4)];
    let processing = [DIR, SEQ, SKP, DIR][usize::from(processing % 4)];
    let flags = [BWD, LRD, UPD, NSP, KGE, GEN, FKS, ARD]
        .iter()
        .enumerate()
        .filter(|(bit, _)| flags & (1 << bit) != 0)
        .fold(0, |word, (_, flag)| word | flag);
    access | processing | flags
}

#[derive(Arbitrary, Debug)]
enum Op {
    Define {
        name: u8,
        org: u8,
        key_offset: u8,
        key_length: u8,
        min: u8,
        max: u8,
        backend: bool,
    },
    DefineAix {
        name: u8,
        base: u8,
        key_offset: u8,
        key_length: u8,
        unique: bool,
        upgrade: bool,
    },
    DefinePath {
        name: u8,
        aix: u8,
    },
    BldIndex {
        aix: u8,
    },
    Delete {
        name: u8,
    },
    Info {
        name: u8,
    },
    List {
        pattern: u8,
        /// A page after one of the names, or the whole list.
        after: Option<u8>,
    },
    Open {
        name: u8,
        intent: u8,
        access: u8,
        strings: u8,
    },
    Close {
        handle: u8,
    },
    Get {
        handle: u8,
        string: u8,
        access: u8,
        processing: u8,
        flags: u8,
        key: Vec<u8>,
        generic: u8,
        address: u8,
        max_records: u8,
    },
    Put {
        handle: u8,
        string: u8,
        access: u8,
        processing: u8,
        flags: u8,
        address: u8,
        record: Vec<u8>,
    },
    PutChain {
        handle: u8,
        string: u8,
        access: u8,
        processing: u8,
        flags: u8,
        records: Vec<(u8, Vec<u8>)>,
    },
    Erase {
        handle: u8,
        string: u8,
        access: u8,
        processing: u8,
        flags: u8,
    },
    Point {
        handle: u8,
        string: u8,
        access: u8,
        processing: u8,
        flags: u8,
        key: Vec<u8>,
        generic: u8,
        address: u8,
    },
    EndReq {
        handle: u8,
        string: u8,
    },
    Commit,
    Rollback,
    Raw {
        kind: u8,
        payload: Vec<u8>,
    },
}

fn target(handle: u8, string: u8) -> StringRef {
    StringRef {
        handle: u32::from(handle % 8),
        string: u16::from(string % 3),
    }
}

fn request(op: Op) -> Option<Request> {
    Some(match op {
        Op::Define {
            name: n,
            org,
            key_offset,
            key_length,
            min,
            max,
            backend,
        } => Request::Define(DatasetSpec {
            name: name(n),
            organization: [
                Organization::Ksds,
                Organization::Esds,
                Organization::Rrds,
                Organization::Vrrds,
            ][usize::from(org % 4)],
            key_offset: u32::from(key_offset % 16),
            key_length: u16::from(key_length % 12),
            min_record: u32::from(min % 8),
            max_record: u32::from(max % 80),
            codepage: ["cp037", "ascii", "cp1047"][usize::from(org / 3 % 3)].into(),
            backend: if backend { "b".into() } else { String::new() },
            layout: String::new(),
        }),
        Op::DefineAix {
            name: n,
            base,
            key_offset,
            key_length,
            unique,
            upgrade,
        } => Request::DefineAix(AixSpec {
            name: name(n),
            base: name(base),
            key_offset: u32::from(key_offset % 16),
            key_length: u16::from(key_length % 12),
            unique,
            upgrade,
        }),
        Op::DefinePath { name: n, aix } => Request::DefinePath(PathSpec {
            name: name(n),
            aix: name(aix),
        }),
        Op::BldIndex { aix } => Request::BldIndex { aix: name(aix) },
        Op::Delete { name: n } => Request::Delete { name: name(n) },
        Op::Info { name: n } => Request::Info { name: name(n) },
        Op::List { pattern, after } => Request::List {
            pattern: PATTERNS[usize::from(pattern) % PATTERNS.len()].into(),
            after: after.map(name),
        },
        Op::Open {
            name: n,
            intent,
            access,
            strings,
        } => Request::Open(Open {
            dataset: name(n),
            intent: [OpenIntent::Input, OpenIntent::Output, OpenIntent::Update]
                [usize::from(intent % 3)],
            access: access & 0x7F,
            strings: u16::from(strings % 4),
        }),
        Op::Close { handle } => Request::Close {
            handle: u32::from(handle % 8),
        },
        Op::Get {
            handle,
            string,
            access,
            processing,
            flags,
            key,
            generic,
            address,
            max_records,
        } => Request::Get(Get {
            target: target(handle, string),
            options: options(access, processing, flags),
            key,
            generic_length: u16::from(generic % 12),
            address: u64::from(address),
            max_records: u32::from(max_records % 6),
        }),
        Op::Put {
            handle,
            string,
            access,
            processing,
            flags,
            address,
            record,
        } => Request::Put(Put {
            target: target(handle, string),
            options: options(access, processing, flags),
            address: u64::from(address),
            record,
        }),
        Op::PutChain {
            handle,
            string,
            access,
            processing,
            flags,
            records,
        } => Request::PutChain(PutChain {
            target: target(handle, string),
            options: options(access, processing, flags),
            records: records
                .into_iter()
                .take(8)
                .map(|(address, record)| ChainedRecord {
                    address: u64::from(address),
                    record,
                })
                .collect(),
        }),
        Op::Erase {
            handle,
            string,
            access,
            processing,
            flags,
        } => Request::Erase {
            target: target(handle, string),
            options: options(access, processing, flags),
        },
        Op::Point {
            handle,
            string,
            access,
            processing,
            flags,
            key,
            generic,
            address,
        } => Request::Point(Point {
            target: target(handle, string),
            options: options(access, processing, flags),
            key,
            generic_length: u16::from(generic % 12),
            address: u64::from(address),
        }),
        Op::EndReq { handle, string } => Request::EndReq {
            target: target(handle, string),
        },
        Op::Commit => Request::Commit,
        Op::Rollback => Request::Rollback,
        Op::Raw { kind, payload } => Request::decode_payload(kind, &payload).ok()?,
    })
}

/// The in-memory store, taken as keeping units of work whole (it never
/// fails a write here), so that opens in commit durability are fuzzed too.
struct Whole(NativeStore<vsam_example_memory::MemoryStore>);

impl RecordStore for Whole {
    fn call(&mut self, call: Call) -> CallResult {
        match call {
            Call::WholeUnits => Ok(Reply::Whole(true)),
            other => self.0.call(other),
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\ndata_dir = \"{}\"\nmax_batch = 20\n",
        dir.path().display()
    );
    let config = Config::parse(&text, "<fuzz>", Path::new(".")).unwrap();
    let catalog = vsam_host::catalog::Catalog::open(dir.path(), &[]).unwrap();
    let store = vsam_example_memory::MemoryStore::init(&[]).unwrap();
    let backend = BackendHandle::spawn(
        "b",
        VersionInfo::native("memory"),
        Box::new(Whole(NativeStore(store))),
        Vec::new(),
    )
    .unwrap();
    let shared = Arc::new(Shared::new(
        &config,
        catalog,
        BTreeMap::from([("b".to_string(), backend)]),
    ));
    let from = Client {
        address: "127.0.0.1:1".parse().unwrap(),
        program: "fuzz".into(),
    };
    let mut session = Session::new(shared, 1 << 20, Identity::anonymous(), from);
    for op in ops.into_iter().take(64) {
        let Some(request) = request(op) else { continue };
        if let Answer::Result { status, .. } = session.handle(request).await {
            assert!(
                matches!(status.r15, 0 | 8),
                "R15={} FDBK=X'{:02X}': {}",
                status.r15,
                status.fdbk,
                status.message
            );
            assert!(
                status.r15 != 0 || matches!(status.fdbk, 0 | 8),
                "{status:?}"
            );
        }
    }
    session.close_all().await;
}

fuzz_target!(|ops: Vec<Op>| {
    runtime().block_on(run(ops));
});
